"""Population Based Training over trials that are Ray Train runs (Train V2, "Tune launches Train").

PBT copies a trial that is ahead into one that is behind: Tune restarts the trial behind with the
other's config, perturbed, and the other's latest Tune checkpoint. With Train V2 the Tune trial
is only the driver of its TorchTrainer, and TuneReportCallback hands Tune metrics alone, so Tune
would hold no checkpoint to copy. So a PBT trial trains in segments of perturbation_interval
steps, each a Ray Train run of its own (Segment), and at the end of each it reports
the metric to Tune with a small Tune checkpoint: pointer.json, naming the Train checkpoint it
stopped at and the values that trained it. A pointer, not the checkpoint itself:
a Train checkpoint carries the optimizer state (for a full fine-tune, twice the model or more)
and Tune would copy it again at every perturbation; Train checkpoints stay where Ray Train wrote
them, and nothing deletes one during the sweep, so every pointer stays valid.

A trial that starts with a pointer (`ray.tune.get_checkpoint()`) continues from its Train
checkpoint: its own after Tune paused it, another trial's after PBT copied that one into it. Then
the next segment resumes the Hugging Face Trainer there, and ApplyLearningRate makes a perturbed
learning rate apply to the restored optimizer. Each copy is recorded in the trial's
perturbations.json. The report after the last segment meets the sweep's stop criterion (`stop`),
so Tune ends the trial there instead of letting PBT replace a trial that has finished.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobs.export import read_metrics, write_summary
from jobs.storage import RunStorage
from launcher.contract import TrainingSummary, log_line
from launcher.spec.models import JobSpec
from launcher.spec.tune import PBT_MUTABLE, TuneSpec

POINTER = "pointer.json"  # in a Tune checkpoint: where the trial's Train checkpoint is
PERTURBATIONS = "perturbations.json"  # in a trial's folder: every copy into this trial


@dataclass
class Segment:
    """A stretch of a PBT trial: train up to step `stop_at` in a Ray Train run of
    its own, checkpoints/<name>/, starting from the Train checkpoint `resume_from` (this
    trial's or another's) that was trained with learning rate `trained_lr`."""

    name: str
    stop_at: int
    resume_from: str | None = None
    trained_lr: float | None = None


def stop(spec: JobSpec) -> dict:
    """The sweep's stop criterion under PBT: a trial ends at its last step."""
    return {"step": spec.training.max_steps}


def scheduler(tune: TuneSpec, space: dict):
    """Tune's PopulationBasedTraining for `tune.pbt`; `space` is the sweep's Tune search space."""
    from ray.tune.schedulers import PopulationBasedTraining

    mutations: dict = {}
    for key in tune.pbt.hyperparam_mutations:
        section, name = key.split(".")
        mutations.setdefault(section, {})[name] = space[section][name]
    # Synchronous: every trial stops at each segment's end anyway, so waiting for the others
    # costs only their spread, and each perturbation then ranks the whole population at the
    # same step, with the checkpoints of the trials ahead already saved.
    return PopulationBasedTraining(
        time_attr="step", perturbation_interval=tune.pbt.perturbation_interval,
        hyperparam_mutations=mutations, quantile_fraction=tune.pbt.quantile_fraction,
        resample_probability=tune.pbt.resample_probability, synch=True,
        custom_explore_fn=functools.partial(_within_space, tune))


def _within_space(tune: TuneSpec, config: dict) -> dict:
    """A perturbed value (x0.8, x1.2) stays inside its swept range, where the spec was
    validated."""
    for key in tune.pbt.hyperparam_mutations:
        section, name = key.split(".")
        low, high = tune.fields()[key].args
        config[section][name] = min(max(config[section][name], low), high)
    return config


def train_in_segments(spec: JobSpec, storage: RunStorage, tune: TuneSpec, trial_id: str) -> None:
    """Train the trial segment by segment, reporting to Tune at each segment's end; write the
    trial's summary.json after the last."""
    import ray.tune

    from jobs.train import train

    start = _read_pointer(ray.tune.get_checkpoint())
    if start is not None and start["trial_id"] != trial_id:
        _record_copy(storage, start, spec)
    step = start["step"] if start else 0
    while True:
        stop_at = min(step + tune.pbt.perturbation_interval, spec.training.max_steps)
        source = start and start["checkpoint"]
        result = train(spec, storage, segment=Segment(
            name=_segment_name(step, source), stop_at=stop_at, resume_from=source,
            trained_lr=start and start["values"]["training.learning_rate"]))
        step = result["global_step"]
        metrics = {"step": step, tune.metric: _latest(storage, tune.metric)}
        if step >= spec.training.max_steps:
            # Before the report: Tune stops the trial at its last step (sweep's stop criterion),
            # which keeps PBT from replacing it, and Tune's last result is the trial's own.
            write_summary(storage, TrainingSummary.model_validate(result))
            shutil.rmtree(_pointer_folder(trial_id), ignore_errors=True)
            ray.tune.report(metrics)
            return
        start = {"trial_id": trial_id, "step": step, "checkpoint": result["checkpoint"],
                 "values": _mutable_values(spec)}
        # One folder per trial, rewritten, removed at the trial's end: a paused trial never
        # returns from report to clean up.
        folder = _pointer_folder(trial_id)
        folder.mkdir(exist_ok=True)
        (folder / POINTER).write_text(json.dumps(start))
        # Tune stores the pointer in the trial's folder before report returns; PBT then lets
        # the trial go on, pauses it, or replaces it with a copy of a better one.
        ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(folder))


def _pointer_folder(trial_id: str) -> Path:
    return Path(tempfile.gettempdir(), f"launch-pbt-{trial_id}")


def _latest(storage: RunStorage, metric: str) -> float:
    """The metric as the segment's last evaluation or log wrote it to metrics.jsonl."""
    return [r[metric] for r in read_metrics(storage) if metric in r][-1]


def _segment_name(step: int, source: str | None) -> str:
    """The Ray Train run of a segment: named by where it starts, so a segment started again
    (a restored sweep) finds its own run and checkpoints, and one started from another
    checkpoint at the same step does not."""
    if source is None:
        return f"from_step_{step:06d}"
    return f"from_step_{step:06d}_{hashlib.sha1(source.encode()).hexdigest()[:8]}"


def _read_pointer(checkpoint) -> dict | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return json.loads((Path(folder) / POINTER).read_text())


def _mutable_values(spec: JobSpec) -> dict:
    values = {}
    for key in PBT_MUTABLE:
        section, name = key.split(".")
        values[key] = getattr(getattr(spec, section), name)
    return values


def _record_copy(storage: RunStorage, source: dict, spec: JobSpec) -> None:
    """Append the copy to perturbations.json, once (a restored sweep may start it again)."""
    copies = json.loads(storage.read_text(PERTURBATIONS) or "[]")
    copy = {"step": source["step"], "from_trial": source["trial_id"],
            "from_values": source["values"], "values": _mutable_values(spec)}
    if copy not in copies:
        storage.write_text(PERTURBATIONS, json.dumps(copies + [copy], indent=2))
    print(log_line(f"PBT: continuing trial {source['trial_id']} from step {source['step']} "
          f"with {json.dumps(copy['values'])}"), flush=True)
