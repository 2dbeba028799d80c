"""Bench: how soon an ASHA sweep reaches the best metric of the full grid, as a share of the
grid's wall time. Same space (the grid's learning rates), same steps per trial, same
concurrency, measured in one run on one private Ray head. Goal: ratio <= 0.33.

    ratio = (first moment an ASHA trial's eval_loss <= best-of-grid eval_loss, from the
             sweep's start) / (wall time of the grid sweep with every trial run to the end)

Prints one JSON line. `--trials 4 --max-steps 8` proves it works in a few minutes; the
defaults (8 trials, 40 steps) say more and take longer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import yaml

from common import EXAMPLES, ray_head, tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="grid points (learning rates)")
    parser.add_argument("--max-steps", type=int, default=40, help="steps of a full trial")
    parser.add_argument("--concurrent", type=int, default=2, help="trials at once")
    args = parser.parse_args()
    rates = [float(f"{3e-4 * (30 ** (i / max(args.trials - 1, 1))):.3g}")
             for i in range(args.trials)]  # 3e-4 .. 9e-3, log-spaced
    eval_steps = max(args.max_steps // 5, 1)

    work = Path(tempfile.mkdtemp(prefix="tb-", dir="/tmp"))
    model = tiny_model()
    with ray_head() as head:
        from launcher import api

        shared = {"metric": "eval_loss", "max_concurrent_trials": args.concurrent,
                  "space": {"training": {"learning_rate": {"grid": rates}}}}
        grid = _sweep(api, work, "grid", model, head.address, args.max_steps, eval_steps,
                      {**shared, "search": "grid"})
        asha = _sweep(api, work, "asha", model, head.address, args.max_steps, eval_steps,
                      {**shared, "scheduler": "asha",
                       "asha": {"grace_period": eval_steps, "reduction_factor": 2}})
    best = min(t["eval_loss"] for t in grid["trials"] if t["eval_loss"] is not None)
    reached = [time for time, value in asha["points"] if value <= best * (1 + 1e-3)]
    asha_reach = min(reached) - asha["started"] if reached else None
    grid_time = grid["ended"] - grid["started"]
    print(json.dumps({
        "bench": "tune_asha_vs_grid",
        "ratio": round(asha_reach / grid_time, 3) if asha_reach is not None else None,
        "asha_reach_best_s": asha_reach and round(asha_reach, 1),
        "grid_s": round(grid_time, 1), "asha_s": round(asha["ended"] - asha["started"], 1),
        "best_of_grid_eval_loss": best, "trials": args.trials, "max_steps": args.max_steps,
        "concurrent": args.concurrent,
        "asha_steps": sum(t["steps"] for t in asha["trials"]),
        "grid_steps": sum(t["steps"] for t in grid["trials"])}))
    shutil.rmtree(work, ignore_errors=True)


def _sweep(api, work: Path, name: str, model: Path, address: str, max_steps: int,
           eval_steps: int, tune: dict) -> dict:
    """Run one sweep to the end; its start/end times, trials and every (time, eval_loss)."""
    job = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    job.update(name=f"bench-{name}", tune=tune)
    job["model"]["name_or_path"] = str(model)
    job["data"].update(path=str(EXAMPLES / "data" / "debian_describe.jsonl"),
                       validation_fraction=0.05, max_length=64)
    job["training"].update(max_steps=max_steps, eval_steps=eval_steps, save_steps=max_steps,
                           logging_steps=eval_steps, batch_size_per_worker=4, max_failures=0)
    job["scale"]["num_workers"] = 1
    job["storage"]["uri"] = str(work / "runs")
    job["target"]["address"] = address
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    run = api.submit(path)
    info = api.wait(run)
    folder = Path(run.run_dir)
    if info.state != "SUCCEEDED":
        raise SystemExit(f"{name} sweep ended {info.state}; see {folder}/logs/driver.log")
    status = json.loads((folder / "status.json").read_text())
    trials = json.loads((folder / "tune" / "trials.json").read_text())
    points = [(record["time"], record["eval_loss"])
              for trial in trials
              for line in (folder / "tune" / trial["trial_id"] / "metrics.jsonl")
              .read_text().splitlines()
              for record in [json.loads(line)] if "eval_loss" in record]
    return {"started": status["started_at"], "ended": status["ended_at"], "trials": trials,
            "points": points}


if __name__ == "__main__":
    main()
