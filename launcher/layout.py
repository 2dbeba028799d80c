"""The storage layout of one run: the second half of the contract between launcher and jobs.

    <storage.uri>/<job name>/<run id>/
      spec.json  status.json  metrics.jsonl  summary.json
      logs/driver.log  checkpoints/  model/  plots/
      tune/            a sweep's trials (each trial folder laid out like a run) and best.json

A run's root is a local path or an s3:// URI. The run's folder is the one that holds its
spec.json, so `python -m jobs.run --spec <root>/spec.json` tells the job everything: what to
run and where its results go. No heavy imports and no I/O here: each half reads and writes
with its own client (boto3 in the launcher, pyarrow on the cluster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

SPEC = "spec.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
DRIVER_LOG = "logs/driver.log"
CHECKPOINTS = "checkpoints"
MODEL = "model"
PLOTS = "plots"
TUNE = "tune"  # a sweep: Ray Tune's experiment folder; tune/<trial id>/ is laid out like a run
TRIALS = f"{TUNE}/trials.json"  # every trial: id, state, config, final metric, steps
BEST = f"{TUNE}/best.json"  # the best trial: id, config, metric, checkpoint
# How a job reaches S3 besides the standard AWS variables: "true" for path-style addressing.
S3_PATH_STYLE_ENV = "LAUNCH_S3_PATH_STYLE"
ARTIFACTS = {"spec": SPEC, "status": STATUS, "metrics": METRICS, "summary": SUMMARY,
             "driver log": DRIVER_LOG, "checkpoints": CHECKPOINTS, "model": MODEL,
             "plots": PLOTS, "sweep trials": TRIALS, "best trial": BEST}


@dataclass(frozen=True)
class RunLayout:
    root: str

    @classmethod
    def for_run(cls, storage_uri: str, job_name: str, run_id: str) -> RunLayout:
        return cls(f"{storage_uri.rstrip('/')}/{job_name}/{run_id}")

    @classmethod
    def from_spec_uri(cls, spec_uri: str) -> RunLayout:
        root, name = spec_uri.rstrip("/").rsplit("/", 1)
        assert name == SPEC, f"the spec of a run is its {SPEC}, not {name}"
        return cls(root)

    @property
    def run_id(self) -> str:
        return self.root.rsplit("/", 1)[1]

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"


def merged_status(current: dict, state: str, **fields) -> dict:
    """status.json after a transition; both halves write it through this."""
    status = {**current, **fields, "state": state, "updated_at": time.time()}
    if state != "FAILED":
        status.pop("error", None)  # a resumed run is no longer failed
    return status
