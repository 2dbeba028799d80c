"""The contract between launcher and jobs, besides the spec (launcher/spec/): the storage
layout of a run, its status.json and summary.json, and the `[launch]` lines a job prints that
the launcher reads.

    <storage.uri>/<job name>/<run id>/
      spec.json  status.json  metrics.jsonl  summary.json
      logs/driver.log  checkpoints/  model/  plots/
      tune/            a sweep's trials (each trial folder laid out like a run) and best.json

A run's root is a local path or an s3:// URI. The run's folder is the one that holds its
spec.json, so `python -m jobs.run --spec <root>/spec.json` tells the job everything: what to
run and where its results go. No heavy imports and no I/O here: each half reads and writes
with its own client (boto3 in the launcher, pyarrow on the cluster).

Every line a job prints for the launcher goes through `log_line` (progress through
`progress_line`), and the launcher reads progress with `parse_progress`: one format, one place.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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


class RunStatus(BaseModel):
    """status.json: the run's last known state, written by both halves (merged_status)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
    updated_at: float
    run_id: str | None = None
    attempt: int | None = None
    ray_job_id: str | None = None
    target: str | None = None  # the target's kind
    address: str | None = None  # where the target is, in words (settings.where)
    image: str | None = None  # the job image, for targets that run from one
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None  # the one-line reason of a FAILED run


def merged_status(current: dict, state: str, **fields) -> dict:
    """status.json after a transition; both halves write it through this."""
    status = {**current, **fields, "state": state, "updated_at": time.time()}
    if state != "FAILED":
        status.pop("error", None)  # a resumed run is no longer failed
    return RunStatus.model_validate(status).model_dump(exclude_none=True)


class ExportedModel(BaseModel):
    """summary.json `exported`: what the run's model/ holds."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["adapter", "merged", "full-model"]
    method: str  # method.type it was trained with
    uri: str  # the run's model/
    base_model: str | None = None  # an adapter's base model
    from_trial: str | None = None  # a sweep's: the best trial's folder it was copied from


class TrainingSummary(BaseModel):
    """What one Ray Train run ends with (rank 0's numbers): a sweep trial's summary.json, and
    the core of a run's."""

    model_config = ConfigDict(extra="forbid")

    eval_loss_before: float  # the first evaluation (step 0), every run's baseline
    eval_loss_after: float  # the last step's
    eval_before: dict[str, Any]  # eval_* metrics of the task (accuracy, f1, rouge…)
    eval_after: dict[str, Any]
    test: dict[str, Any]  # test_* metrics, once at the end; {} without a test split
    labels: list[str] | None  # a classification task's label names
    exported: ExportedModel | None
    samples: list[dict[str, Any]]  # generations on validation prompts
    sample_metrics: dict[str, Any]  # ROUGE / BLEU of the samples
    global_step: int
    epochs: float
    train_samples: int
    eval_samples: int
    tokens_seen: int
    trainable_params: int
    total_params: int
    data: dict[str, Any]  # rows read and dropped by each cleaning rule, per split
    stopped_early: bool
    checkpoints: int  # registered checkpoints kept in checkpoints/
    checkpoint: str | None  # the last one


class RunSummary(TrainingSummary):
    """summary.json of a run: its training's numbers with the run's own, or for a sweep the
    best trial's numbers with the sweep's."""

    state: Literal["SUCCEEDED"]
    wall_time_s: float
    # a training run's
    final_train_loss: float | None = None
    tokens_per_s: float | None = None
    num_workers: int | None = None
    zero_stage: int | None = None
    # a sweep's
    best_trial: str | None = None
    metric: str | None = None
    best_value: float | None = None
    best_config: dict[str, Any] | None = None
    trials: int | None = None
    trials_completed: int | None = None
    trials_stopped: int | None = None
    trials_failed: int | None = None
    total_steps: int | None = None
    search: str | None = None
    scheduler: str | None = None


# The lines a job prints for the launcher (and the user) to read in its driver log.
LOG_PREFIX = "[launch]"
PROGRESS_FIELDS = (("loss", "loss"), ("eval_loss", "eval_loss"),
                   ("train_loss", "mean train loss"), ("learning_rate", "lr"),
                   ("tokens_per_s", "tokens/s"))
PROGRESS_LINE = re.compile(rf"{re.escape(LOG_PREFIX)} step (?P<step>\d+)/(?P<total>\d+)\b"
                           r"(?P<rest>.*)")
NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf)"
PARSED = {"loss": re.compile(rf"(?<!\w)(?<!train )loss {NUMBER}"),
          "eval_loss": re.compile(rf"\beval_loss {NUMBER}"),
          "tokens_per_s": re.compile(rf"\btokens/s {NUMBER}")}


def log_line(message: str) -> str:
    """`[launch] message`: how a job tells the user something in its driver log."""
    return f"{LOG_PREFIX} {message}"


def progress_line(record: dict, max_steps: int) -> str:
    """`[launch] step 10/85 epoch 0.12 loss 5.386 lr 0.003 tokens/s 9852` from a metrics
    record (metrics.jsonl's fields)."""
    parts = [f"step {record['step']}/{max_steps}", f"epoch {record.get('epoch') or 0:.2f}"]
    for key, label in PROGRESS_FIELDS:
        if key in record:
            value = record[key]
            shown = f"{value:.0f}" if key == "tokens_per_s" else f"{value:.4g}"
            parts.append(f"{label} {shown}")
    return log_line(" ".join(parts))


@dataclass
class StepReport:
    step: int
    total: int
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_s: float | None = None


def parse_progress(line: str) -> StepReport | None:
    """The numbers of one progress line (progress_line's); None for any other log line."""
    match = PROGRESS_LINE.search(line)
    if match is None:
        return None
    found = {name: pattern.search(match["rest"]) for name, pattern in PARSED.items()}
    return StepReport(step=int(match["step"]), total=int(match["total"]),
                      **{name: float(m[1]) for name, m in found.items() if m})
