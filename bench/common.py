"""What the Ray benches share: a private Ray head, the tiny model, job files, the launch CLI,
and the one throughput statistic every mode is judged by."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
CACHE = Path(os.environ.get("LAUNCH_BENCH_CACHE", "~/.cache/launch-bench")).expanduser()
LAUNCH = [sys.executable, "-m", "launcher"]
BUCKET = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def ray_head(num_cpus: int = 2):
    """A Ray head of our own (own LAUNCH_HOME, free ports, token auth), stopped by PID."""
    home = Path(tempfile.mkdtemp(prefix="lb-", dir="/tmp"))  # short: Ray's socket paths
    os.environ["LAUNCH_HOME"] = str(home)
    from launcher import local_head

    address = f"http://127.0.0.1:{free_port()}"
    os.environ["LAUNCH_RAY_ADDRESS"] = address
    state = local_head.start(address, num_cpus=num_cpus, gcs_port=free_port())
    try:
        yield state
    finally:
        local_head.stop()
        shutil.rmtree(home, ignore_errors=True)


def tiny_model() -> Path:
    """The quickstart's tiny GPT-2: the demo's copy, else one built once into the cache."""
    for folder in (EXAMPLES / "models" / "tiny-gpt2", CACHE / "tiny-gpt2"):
        if (folder / "config.json").is_file():
            return folder
    subprocess.run([sys.executable, str(EXAMPLES / "build_tiny_model.py"), "--out",
                    str(CACHE / "tiny-gpt2"), "--pretrain-steps", "50"], check=True,
                   capture_output=True)
    return CACHE / "tiny-gpt2"


def write_job(folder: Path, name: str, overrides: dict) -> Path:
    """The quickstart with the tiny model, local storage in `folder`, and `overrides`."""
    job = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    job.update(name=name)
    job["model"]["name_or_path"] = str(tiny_model())
    job["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
    job["storage"]["uri"] = str(folder / "runs")
    if "LAUNCH_RAY_ADDRESS" in os.environ:  # set by ray_head()
        job["target"]["address"] = os.environ["LAUNCH_RAY_ADDRESS"]
    for section, values in overrides.items():
        job.setdefault(section, {}).update(values)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def launch(*args: str, check: bool = True) -> dict:
    """Run the launch CLI with --output json; its JSON document."""
    result = subprocess.run([*LAUNCH, *args, "--output", "json"], capture_output=True,
                            text=True, cwd=ROOT)
    if check and result.returncode != 0:
        raise SystemExit(f"launch {' '.join(args)} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def steady_tokens_per_s(metrics: Path) -> float:
    """Tokens/s over the logging intervals after the first (which holds start-up and the
    evaluation before training), from a run's metrics.jsonl: same code, same statistic, in
    every mode."""
    speeds = [record["tokens_per_s"] for record in map(json.loads, metrics.read_text().splitlines())
              if "tokens_per_s" in record]
    if len(speeds) < 2:
        raise SystemExit(f"{metrics}: fewer than 2 logging intervals; raise max_steps")
    steady = speeds[1:]
    return sum(steady) / len(steady)


def emit(result: dict) -> None:
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value
                      for key, value in result.items()}), flush=True)


@contextmanager
def seaweedfs(folder: Path, cpus: set[int] | None = None):
    """SeaweedFS on 127.0.0.1 (flags of ../shared/ENVIRONMENT.md) with one identity, exported
    as AWS_* variables, on `cpus` (None: any); its S3 endpoint URL. Stopped by PID."""
    import boto3

    from tests.support.seaweedfs import weed_command, weed_ports  # the tests' store

    access, secret = secrets.token_hex(8), secrets.token_hex(16)
    (folder / "data").mkdir()
    ports = weed_ports()  # all free: weed's unix sockets in /tmp are named after them
    weed = subprocess.Popen(weed_command(folder / "data", access, secret, "127.0.0.1", ports),
                            preexec_fn=cpus and (lambda: os.sched_setaffinity(0, cpus)),
                            stdout=(folder / "weed.log").open("w"), stderr=subprocess.STDOUT)
    os.environ.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        deadline = time.time() + 120
        while True:  # ready means it stores an object, not only that it answers
            try:
                if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
                    s3.create_bucket(Bucket=BUCKET)
                s3.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
                break
            except Exception:
                if time.time() > deadline or weed.poll() is not None:
                    raise SystemExit(f"SeaweedFS never took a write; see {folder}/weed.log")
                time.sleep(0.5)
        yield endpoint
    finally:
        weed.terminate()
        weed.wait(timeout=30)
