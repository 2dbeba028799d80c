"""The only way into a job: `python -m jobs.run --spec <run folder>/spec.json`.

Reads the resolved spec, trains on the Ray cluster this process was submitted to, and leaves
every result under the run's folder (see launcher.layout).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from launcher.layout import RunLayout
from launcher.spec.models import JobSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.run", description=__doc__)
    parser.add_argument("--spec", required=True, help="path of the run's resolved spec.json")
    args = parser.parse_args(argv)

    layout = RunLayout.from_spec_path(args.spec)
    spec = JobSpec.model_validate_json(Path(args.spec).read_text())
    started = time.time()
    layout.write_status("RUNNING", started_at=started)
    try:
        summary = run(spec, layout)
    except Exception as err:  # report every failure in status.json, then fail the Ray job
        traceback.print_exc()
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        print(f"[launch] FAILED: {message}", file=sys.stderr, flush=True)
        layout.write_status("FAILED", error=message, ended_at=time.time())
        return 1
    summary["wall_time_s"] = time.time() - started
    from jobs.export import write_summary

    write_summary(layout, summary)
    layout.write_status("SUCCEEDED", ended_at=time.time())
    print(f"[launch] SUCCEEDED: results in {layout.root}", flush=True)
    return 0


def run(spec: JobSpec, layout: RunLayout) -> dict:
    import ray

    from jobs.data import load_splits
    from jobs.export import plot_losses, read_metrics
    from jobs.train import train

    # Read the data once here first: a bad file fails the job in seconds with a clear reason,
    # before any worker starts.
    train_rows, eval_rows = load_splits(spec.data, spec.training.seed)
    print(f"[launch] data: {len(train_rows)} train rows, {len(eval_rows)} validation rows",
          flush=True)

    ray.init()
    result = train(spec, layout)
    records = read_metrics(layout)
    plot_losses(layout, records)
    train_losses = [r["loss"] for r in records if "loss" in r]
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return {
        **result,
        "state": "SUCCEEDED",
        "final_train_loss": train_losses[-1] if train_losses else None,
        "tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
        "num_workers": spec.scale.num_workers,
        "zero_stage": spec.scale.deepspeed.stage,
        "exported": {"kind": "lora-adapter", "path": str(layout.model)},
        "artifacts": {
            "spec": str(layout.spec),
            "metrics": str(layout.metrics),
            "checkpoints": str(layout.checkpoints),
            "model": str(layout.model),
            "plots": str(layout.plots),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
