"""Hugging Face Trainer callbacks: metrics to storage, a checkpoint at the final step, the
metric a sweep's scheduler watches, and PBT's segments and learning-rate changes."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from jobs.checkpoint_upload import upload_checkpoint
from jobs.storage import RunStorage
from launcher.contract import METRICS, log_line, progress_line


class MetricsFileCallback(TrainerCallback):
    """Appends {step, epoch, time, tokens_per_s, <Trainer logs>} to metrics.jsonl.

    The lines accumulate in a local file that is uploaded whole after each log: object stores
    have no append, and the file stays small.
    """

    def __init__(self, storage: RunStorage, local: Path, is_rank_zero: bool):
        self.storage = storage
        self.path = local
        self.is_rank_zero = is_rank_zero
        self._last = (time.time(), 0)

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed run keeps the records up to its checkpoint and notes the restart."""
        self._last = (time.time(), state.num_input_tokens_seen)
        if not self.is_rank_zero or state.global_step == 0:
            return
        kept = [line for line in (self.storage.read_text(METRICS) or "").splitlines()
                if line and json.loads(line).get("step", 0) <= state.global_step]
        kept.append(json.dumps({"step": state.global_step, "epoch": state.epoch,
                                "time": time.time(), "event": "resumed"}))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self.storage.upload_file(self.path, METRICS)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.is_rank_zero or not logs:
            return
        now, tokens = time.time(), state.num_input_tokens_seen
        last_time, last_tokens = self._last
        record = {"step": state.global_step, "epoch": state.epoch, "time": now, **logs}
        if "loss" in logs and tokens > last_tokens:
            record["tokens_per_s"] = (tokens - last_tokens) / max(now - last_time, 1e-9)
            self._last = (now, tokens)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.storage.upload_file(self.path, METRICS)
        print(progress_line(record, state.max_steps), flush=True)



class AlreadyTrained(Exception):
    """The run resumed from a checkpoint of its last step: nothing is left to train."""


class TrainUntil(TrainerCallback):
    """Train to `last_step` (None: the run's max_steps), checkpoint it, and never step past it.

    Every finished run (and every PBT segment, which ends where Tune may perturb the trial)
    leaves a resumable checkpoint of its last step. The Hugging Face Trainer checks max_steps
    only after each optimizer step, so resumed from a checkpoint of the last step (a worker
    lost after the final save) it would train one step more than planned: this raises
    AlreadyTrained before that step, once the checkpoint's weights are loaded, and evaluation
    and export go on from them. A segment keeps training.max_steps as the Trainer's horizon,
    so the learning-rate schedule spans the whole run and each segment continues it.
    """

    def __init__(self, last_step: int | None = None):
        self.last_step = last_step

    def _reached(self, state) -> bool:
        return state.global_step >= (self.last_step or state.max_steps)

    def on_step_begin(self, args, state, control, **kwargs):
        if self._reached(state):
            raise AlreadyTrained()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._reached(state):
            control.should_training_stop = True
            control.should_save = True
        return control


class ReportMetric(TrainerCallback):
    """In a sweep's trial: every log record holding the metric goes to `ray.train.report`.

    Every rank logs the same (gathered) values at the same steps, so every rank reports: Ray
    Train's report is a barrier. The checkpoints go through ReportCheckpoint.
    """

    def __init__(self, metric: str):
        self.metric = metric

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and self.metric in logs:
            import ray.train

            ray.train.report({**logs, "step": state.global_step, "epoch": state.epoch})


class EarlyStopping(TrainerCallback):
    """Stop when the watched metric has not improved for `patience` evaluations.

    Hugging Face's EarlyStoppingCallback needs load_best_model_at_end, which reloads weights
    outside Ray Train's checkpoints; this one only stops, and saves the step it stops at so
    the run ends with a checkpoint like any other. Every rank sees the same gathered metrics,
    so every rank stops at the same step.
    """

    def __init__(self, spec):
        self.spec = spec
        self.best: float | None = None
        self.waited = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.spec.metric)
        if value is None:
            raise ValueError(f"early stopping watches {self.spec.metric}, which the evaluation "
                             f"does not report; it reports {', '.join(sorted(metrics or {}))}")
        sign = -1 if self.spec.lower_is_better else 1
        if self.best is None or sign * (value - self.best) > self.spec.min_delta:
            self.best, self.waited = value, 0
            return control
        self.waited += 1
        if self.waited >= self.spec.patience and state.global_step < state.max_steps:
            print(log_line(f"early stopping at step {state.global_step}: {self.spec.metric} "
                  f"has not improved on {self.best:.4g} for {self.waited} evaluations"),
                  flush=True)
            control.should_training_stop = True
            control.should_save = True
        return control


class ReportCheckpoint(TrainerCallback):
    """Hand each checkpoint the Trainer saves to Ray Train, which keeps it in the run's storage
    as checkpoints/checkpoint_*/checkpoint/ (the layout of Ray's RayTrainReportCallback).

    `async` uploads in the background (Ray Train's CheckpointUploadMode.ASYNC) at the lowest CPU
    priority (jobs.checkpoint_upload): training goes on while the bytes travel, and Ray still
    registers checkpoints in order and flushes the last one before the run ends. The Trainer's
    folder is copied first, so the upload never reads files the Trainer is rewriting; Ray
    deletes the copy once it is stored.
    """

    CHECKPOINT_NAME = "checkpoint"

    def __init__(self, upload: str):
        self.upload = upload

    def on_save(self, args, state, control, **kwargs):
        import ray.train
        from transformers.trainer_utils import get_last_checkpoint

        metrics: dict = {}
        for log in state.log_history:
            metrics.update(log)
        staging = Path(tempfile.mkdtemp(prefix="launch-checkpoint-"))
        shutil.copytree(get_last_checkpoint(args.output_dir), staging / self.CHECKPOINT_NAME)
        checkpoint = ray.train.Checkpoint.from_directory(staging)
        if self.upload == "async":  # upload_checkpoint runs in Ray's upload thread and nices it
            ray.train.report(metrics, checkpoint=checkpoint,
                             checkpoint_upload_mode=ray.train.CheckpointUploadMode.ASYNC,
                             checkpoint_upload_fn=upload_checkpoint,
                             delete_local_checkpoint_after_upload=True)
        else:
            ray.train.report(metrics, checkpoint=checkpoint,
                             delete_local_checkpoint_after_upload=True)


class ApplyLearningRate(TrainerCallback):
    """After resuming from a checkpoint trained with learning rate `trained_with` (a PBT trial
    that copied another one), train at this run's learning rate.

    Resuming restores the optimizer's parameter groups and the scheduler's base rates from the
    checkpoint, so the run would silently keep the old rate. Scaling every group by the same
    ratio keeps each group's multiplier (jobs.trainer) and the schedule's position."""

    def __init__(self, trained_with: float):
        self.trained_with = trained_with

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        ratio = args.learning_rate / self.trained_with
        if ratio == 1:
            return
        # The scheduler drives the optimizer it holds (under DeepSpeed, the one ZeRO wraps).
        lr_scheduler.base_lrs = [lr * ratio for lr in lr_scheduler.base_lrs]
        for group in lr_scheduler.optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
        print(log_line(f"learning rate {self.trained_with:.4g} -> {args.learning_rate:.4g} "
              f"from step {state.global_step}"), flush=True)
