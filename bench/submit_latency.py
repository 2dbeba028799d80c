"""Bench: what `launch submit` adds to getting a job going, against `ray job submit` of the
same entrypoint (`python -m jobs.run --spec <run>/spec.json`, same runtime env) on the same
running cluster: seconds from starting the command to the Ray job RUNNING, and to its first
training step (the first record in the run's metrics.jsonl). Ratio launch ÷ ray, goal ≤ 1.10.

Starts its own Ray head (2 CPUs); one warm-up job first (Ray caches the shipped code), then
the two submitters alternate. Each job is stopped at its first step. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from launcher import ray_auth
from launcher.contract import SPEC, RunLayout
from launcher.settings import JOB_PACKAGES

from common import ROOT, emit, launch, ray_head, write_job

POLL_S = 0.1
TIMEOUT_S = 300


def client():
    from ray.job_submission import JobSubmissionClient

    address = os.environ["LAUNCH_RAY_ADDRESS"]
    return JobSubmissionClient(address, headers=ray_auth.headers_for(address))


def timed(started: float, submit_id: str, run_dir: Path) -> tuple[float, float]:
    """Seconds from `started` to RUNNING and to the first metrics record; stops the job."""
    jobs, running = client(), None
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        if running is None and str(jobs.get_job_status(submit_id).value) == "RUNNING":
            running = time.time() - started
        if metrics.is_file() and metrics.read_text().strip():
            first_step = time.time() - started
            jobs.stop_job(submit_id)
            _wait_ended(jobs, submit_id)
            return running or first_step, first_step
        time.sleep(POLL_S)
    raise SystemExit(f"{submit_id}: no training step within {TIMEOUT_S} s")


def _wait_ended(jobs, submit_id: str) -> None:
    while str(jobs.get_job_status(submit_id).value) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(0.5)


def with_launch(job: Path) -> tuple[float, float]:
    started = time.time()
    run = launch("submit", str(job))
    return timed(started, run["ray_job_id"], Path(run["results"]))


def with_ray(spec_text: str, storage: Path, name: str, index: int) -> tuple[float, float]:
    """`ray job submit` of launch's entrypoint on a spec.json written where launch would."""
    submit_id = f"{name}-ray-{index}"
    layout = RunLayout.for_run(str(storage), name, submit_id)
    Path(layout.uri(SPEC)).parent.mkdir(parents=True)
    Path(layout.uri(SPEC)).write_text(spec_text)
    address = os.environ["LAUNCH_RAY_ADDRESS"]
    runtime_env = {"py_modules": [str(p) for p in JOB_PACKAGES],
                   "excludes": ["__pycache__", "*.pyc"], "env_vars": {}}
    env = {**os.environ, "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": ray_auth.token_for(address) or "",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    command = [str(Path(sys.executable).with_name("ray")), "job", "submit", "--address",
               address, "--submission-id", submit_id, "--no-wait", "--runtime-env-json",
               json.dumps(runtime_env), "--", "python", "-m", "jobs.run", "--spec",
               shlex.quote(layout.uri(SPEC))]
    started = time.time()
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
    return timed(started, submit_id, Path(layout.root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="jobs per submitter")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp, ray_head():
        folder = Path(tmp)
        job = write_job(folder, "latency", {
            "training": {"max_steps": 100000, "logging_steps": 1, "eval_steps": None,
                         "save_steps": 100000},
            "data": {"validation_fraction": 0.01},  # a short evaluation before step 1
            "scale": {"num_workers": 1, "deepspeed": {"stage": 0}}})
        warm = launch("submit", str(job))  # ships the code once; both submitters reuse it
        timed(time.time(), warm["ray_job_id"], Path(warm["results"]))
        spec_text = (Path(warm["results"]) / SPEC).read_text()
        ours, theirs = [], []
        for index in range(args.repeat):
            ours.append(with_launch(job))
            theirs.append(with_ray(spec_text, folder / "runs", "latency", index))

    def median(samples, which):
        return statistics.median(sample[which] for sample in samples)

    result = {"launch_to_running_s": median(ours, 0), "ray_to_running_s": median(theirs, 0),
              "launch_to_first_step_s": median(ours, 1), "ray_to_first_step_s": median(theirs, 1)}
    emit({"bench": "submit_latency", "repeat": args.repeat,
          "ratio_to_running": result["launch_to_running_s"] / result["ray_to_running_s"],
          "ratio_to_first_step": result["launch_to_first_step_s"] / result["ray_to_first_step_s"],
          "goal_ratio_max": 1.10, **result})


if __name__ == "__main__":
    main()
