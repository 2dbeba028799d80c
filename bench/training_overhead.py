"""Bench: what launch costs a training run in throughput. The same tiny model, data, batch
and steps, measured with the same metrics callback and statistic (steady tokens/s, after the
first logging interval):

  (a) a bare Hugging Face loop in one process: no Ray, no DeepSpeed  (bench/hf_loop.py --bare)
  (b) `launch submit` with 1 Ray Train worker (ZeRO stage 0)        → ratio b/a, goal ≥ 0.97
  (a') (b)'s DeepSpeed script in 1 process under torchrun, no Ray    → ratio b/a' (Ray's share)
  (c) the same DeepSpeed script (ZeRO-2) on 2 processes under torchrun, no Ray
  (d) `launch submit` with 2 Ray Train workers, ZeRO-2              → ratio d/c, goal ≥ 0.97

Starts its own Ray head (2 CPUs) and stops it. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, emit, launch, ray_head, steady_tokens_per_s, write_job

HF_LOOP = ROOT / "bench" / "hf_loop.py"


def launched(folder: Path, name: str, steps: int, workers: int, stage: int) -> Path:
    """Run a job through launch to the end; its run folder. The workers share the head's 2
    CPUs: Ray gives each worker as many torch threads as CPUs (OMP_NUM_THREADS), so 1 worker
    gets both, as the bare loop and a single torchrun process use both."""
    job = write_job(folder, name, {
        "training": {"max_steps": steps, "logging_steps": max(steps // 6, 1), "eval_steps": None,
                     "save_steps": 10 * steps, "batch_size_per_worker": 8},
        "data": {"validation_fraction": 0.01},  # the evaluations are not what is measured
        "scale": {"num_workers": workers, "cpus_per_worker": 2 // workers,
                  "deepspeed": {"stage": stage}}})
    run = launch("submit", str(job), "--follow")
    if run["state"] != "SUCCEEDED":
        raise SystemExit(f"{name}: {run['state']}; see launch logs {run['run_id']}")
    return Path(run["results"])


def without_ray(launcher: list[str], spec: Path, out: Path, *flags: str) -> Path:
    """Run bench/hf_loop.py on the run's own resolved spec; its metrics.jsonl."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*launcher, str(HF_LOOP), "--spec", str(spec), "--out", str(out),
                           *flags], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(launcher)} hf_loop.py failed: {done.stderr[-3000:]}")
    return out / "metrics.jsonl"


def torchrun(processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(processes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp, ray_head():
        folder = Path(tmp)
        one = launched(folder, "overhead-1w", args.steps, workers=1, stage=0)
        bare = without_ray([sys.executable], one / "spec.json", folder / "bare", "--bare")
        single = without_ray(torchrun(1), one / "spec.json", folder / "torchrun-1")
        two = launched(folder, "overhead-2w", args.steps, workers=2, stage=2)
        double = without_ray(torchrun(2), two / "spec.json", folder / "torchrun-2")
        result = {
            "bare_tokens_per_s": steady_tokens_per_s(bare),
            "torchrun_1w_tokens_per_s": steady_tokens_per_s(single),
            "launch_1w_tokens_per_s": steady_tokens_per_s(one / "metrics.jsonl"),
            "torchrun_2w_tokens_per_s": steady_tokens_per_s(double),
            "launch_2w_tokens_per_s": steady_tokens_per_s(two / "metrics.jsonl"),
        }
    emit({"bench": "training_overhead", "steps": args.steps,
          "ratio_launch_1w_vs_bare": result["launch_1w_tokens_per_s"]
          / result["bare_tokens_per_s"],
          "ratio_launch_1w_vs_torchrun_1w": result["launch_1w_tokens_per_s"]
          / result["torchrun_1w_tokens_per_s"],
          "ratio_launch_2w_vs_torchrun_2w": result["launch_2w_tokens_per_s"]
          / result["torchrun_2w_tokens_per_s"],
          "goal_ratio_min": 0.97, **result})


if __name__ == "__main__":
    main()
