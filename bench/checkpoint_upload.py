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
import tempfile
from pathlib import Path

from common import BUCKET, emit, launch, ray_head, seaweedfs, steady_tokens_per_s, write_job


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
