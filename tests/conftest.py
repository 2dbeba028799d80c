"""Session fixtures: one real Ray head (started and stopped through launch itself), one tiny
model built by the example script, and helpers to write job files and run the CLI."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from launcher.spec.load import merge_overrides

ROOT = Path(__file__).resolve().parents[1]
# Tests talk only to servers on 127.0.0.1: no AWS SDK may probe cloud instance metadata.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
EXAMPLES = ROOT / "examples"
pytest_plugins = ["image_fixtures", "task_models"]
LAUNCH = [sys.executable, "-m", "launcher"]


# The suite's time budget (README: Tests): a test over BUDGET_S carries @pytest.mark.long and its
# docstring says why it needs the time; the summary lists every test over it.
BUDGET_S = 120
_seconds: dict[str, float] = {}  # set-up (its fixtures' share), call and teardown
_marked_long: set[str] = set()


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
    if "long" in report.keywords:
        _marked_long.add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    over = sorted(((s, n) for n, s in _seconds.items() if s > BUDGET_S), reverse=True)
    if not over:
        return
    terminalreporter.section(f"tests over the {BUDGET_S} s budget")
    for seconds, nodeid in over:
        note = ("marked long" if nodeid in _marked_long
                else "NOT marked long: mark it and say why, or make it cheaper")
        terminalreporter.line(f"{seconds:6.0f} s  {nodeid}  ({note})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def launch_home():
    """A private LAUNCH_HOME for the session; short, since Ray's socket paths live under it."""
    home = Path(tempfile.mkdtemp(prefix="lh-", dir="/tmp"))
    old = os.environ.get("LAUNCH_HOME")
    os.environ["LAUNCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LAUNCH_HOME", None)
    else:
        os.environ["LAUNCH_HOME"] = old
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head(launch_home):
    """The session's Ray head, on free ports, with token auth; stopped by PID at the end."""
    from launcher import local_head

    address = f"http://127.0.0.1:{free_port()}"
    os.environ["LAUNCH_RAY_ADDRESS"] = address
    state = local_head.start(address, num_cpus=2, gcs_port=free_port())
    yield state
    local_head.stop()
    os.environ.pop("LAUNCH_RAY_ADDRESS", None)


def weed_ports() -> dict[str, int]:
    """Distinct free ports for every weed service and its gRPC twin.

    weed names its unix sockets after the ports, in /tmp whatever the network namespace
    (/tmp/seaweedfs-master-grpc-19333.sock, ...): two stores on the default ports take over
    each other's sockets, and one's filer then writes to the other's volumes.
    """
    names = [f"{service}.port{grpc}" for service in ("master", "volume", "filer", "s3", "admin")
             for grpc in ("", ".grpc")]
    ports: set[int] = set()
    while len(ports) < len(names):
        ports.add(free_port())
    return dict(zip(names, sorted(ports)))


def weed_command(data_dir: Path, access_key: str, secret_key: str, ip: str,
                 ports: dict[str, int]) -> list[str]:
    """`weed mini` with the flags of ../shared/ENVIRONMENT.md on `ports` (weed_ports()), bound
    to `ip` only, accepting one identity (its s3.json is written beside `data_dir`)."""
    config = data_dir.parent / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "test", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    return [str(Path(sys.executable).with_name("weed")), "mini", f"-dir={data_dir}",
            f"-ip={ip}", f"-ip.bind={ip}", "-master.telemetry=false", f"-s3.config={config}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items())]


def submitted_run_id(result: subprocess.CompletedProcess) -> str:
    """The run id `launch submit` printed."""
    match = re.search(r"^submitted (\S+)", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return match.group(1)


@dataclass
class SeaweedFS:
    """A real SeaweedFS S3 server on 127.0.0.1 (flags from ../shared/ENVIRONMENT.md)."""

    data_dir: Path
    access_key: str
    secret_key: str
    ports: dict[str, int] = field(default_factory=weed_ports)  # kept across restarts
    bucket: str = "launch-test"
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> None:
        log = (self.data_dir.parent / "weed.log").open("a")
        self.process = subprocess.Popen(
            weed_command(self.data_dir, self.access_key, self.secret_key, "127.0.0.1",
                         self.ports),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client, deadline = self.client(), time.time() + 60
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()  # never leave a half-started server behind
                    pytest.fail("SeaweedFS did not answer within 60 s; see weed.log")
                time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server we started, by its process group."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory):
    """One SeaweedFS per session, with a bucket and credentials exported as AWS_* variables."""
    root = tmp_path_factory.mktemp("seaweedfs")
    store = SeaweedFS(data_dir=root / "data", access_key=secrets.token_hex(8),
                      secret_key=secrets.token_hex(16))
    store.data_dir.mkdir()
    store.start()
    store.client().create_bucket(Bucket=store.bucket)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=store.access_key, AWS_SECRET_ACCESS_KEY=store.secret_key)
    yield store
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    store.stop()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The quickstart's tiny GPT-2, built by the same script users run (shorter pretraining)."""
    out = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    subprocess.run([sys.executable, str(EXAMPLES / "build_tiny_model.py"), "--out", str(out),
                    "--pretrain-steps", "100"], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture
def write_job(tmp_path):
    """Write a job file: the quickstart with `overrides` merged in (nested dicts merge)."""

    def write(overrides: dict | None = None, base: Path = EXAMPLES / "quickstart.yaml",
              name: str = "job.yaml") -> Path:
        job = yaml.safe_load(base.read_text())
        job["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
        job["storage"]["uri"] = str(tmp_path / "runs")
        merge_overrides(job, overrides or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(job, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def cli():
    """Run the real `launch` CLI in a subprocess, as a user would."""

    def run(*args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*LAUNCH, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})

    return run
