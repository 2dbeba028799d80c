"""Bench: how much checkpoint uploads to S3 stall training. The same tiny job, storage on a
SeaweedFS of its own, 2 Ray Train workers with ZeRO-2 (every rank writes a shard):

  (a) a checkpoint only at the last step                     → the baseline
  (b) a checkpoint every logging interval, uploaded in sync  → ratio b/a of steady tokens/s
  (c) the same checkpoints, uploaded asynchronously           → ratio c/a

Steady tokens/s is the same statistic as bench/training_overhead.py (the logging intervals
after the first); a save falls inside the interval after it, so its stall counts. Starts its
own Ray head and SeaweedFS and stops them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common import emit, free_port, launch, ray_head, steady_tokens_per_s, write_job

BUCKET = "bench"


@contextmanager
def seaweedfs(folder: Path):
    """SeaweedFS on 127.0.0.1 (flags of ../shared/ENVIRONMENT.md) with one identity, exported
    as AWS_* variables; its S3 endpoint URL. Stopped by PID."""
    import boto3

    access, secret = secrets.token_hex(8), secrets.token_hex(16)
    (folder / "data").mkdir()
    (folder / "s3.json").write_text(json.dumps({"identities": [{
        "name": "bench", "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    port = free_port()
    weed = subprocess.Popen(
        [str(Path(sys.executable).with_name("weed")), "mini", f"-dir={folder / 'data'}",
         "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
         f"-s3.config={folder / 's3.json'}", f"-s3.port={port}", "-webdav=false",
         "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"],
        stdout=(folder / "weed.log").open("w"), stderr=subprocess.STDOUT)
    os.environ.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
    endpoint = f"http://127.0.0.1:{port}"
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


def run(folder: Path, endpoint: str, name: str, steps: int, save_steps: int,
        upload: str) -> Path:
    job = write_job(folder, name, {
        "training": {"max_steps": steps, "logging_steps": max(steps // 6, 1), "eval_steps": None,
                     "save_steps": save_steps, "batch_size_per_worker": 8,
                     "checkpoint_upload": upload},
        "data": {"validation_fraction": 0.01},
        "scale": {"num_workers": 2, "deepspeed": {"stage": 2}},
        "storage": {"uri": f"s3://{BUCKET}/runs", "endpoint_url": endpoint}})
    done = launch("submit", str(job), "--follow")
    if done["state"] != "SUCCEEDED":
        raise SystemExit(f"{name}: {done['state']}; see launch logs {done['run_id']}")
    return download_metrics(endpoint, done["results"], folder / name)


def download_metrics(endpoint: str, results: str, into: Path) -> Path:
    import boto3

    bucket, key = results.removeprefix("s3://").split("/", 1)
    into.mkdir(parents=True, exist_ok=True)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").download_file(
        bucket, f"{key}/metrics.jsonl", str(into / "metrics.jsonl"))
    return into / "metrics.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    args = parser.parse_args()
    interval = max(args.steps // 6, 1)

    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp, ray_head():
        folder = Path(tmp)
        with seaweedfs(folder) as endpoint:
            final_only = run(folder, endpoint, "ckpt-final", args.steps, 10 * args.steps, "sync")
            sync = run(folder, endpoint, "ckpt-sync", args.steps, interval, "sync")
            background = run(folder, endpoint, "ckpt-async", args.steps, interval, "async")
            speeds = {name: steady_tokens_per_s(path) for name, path in
                      (("final_only", final_only), ("sync", sync), ("async", background))}
    emit({"bench": "checkpoint_upload", "steps": args.steps, "checkpoint_every": interval,
          "ratio_sync_vs_final_only": speeds["sync"] / speeds["final_only"],
          "ratio_async_vs_final_only": speeds["async"] / speeds["final_only"],
          **{f"{name}_tokens_per_s": value for name, value in speeds.items()}})


if __name__ == "__main__":
    main()
