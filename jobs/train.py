"""Ray Train: a TorchTrainer whose workers each run a Hugging Face Trainer with DeepSpeed ZeRO.

Ray Train starts the workers and the torch process group (gloo on CPU, NCCL on GPU) and keeps
checkpoints in the run's storage; the Hugging Face Trainer runs the loop, DeepSpeed shards it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.imports import importing
from jobs.pbt import Segment
from jobs.storage import RunStorage
from launcher.contract import CHECKPOINTS, METRICS, MODEL, RunLayout, log_line
from launcher.spec.models import JobSpec

if TYPE_CHECKING:  # types only: a worker imports these when it builds its Trainer
    from transformers import PreTrainedTokenizerBase, Trainer

    from jobs.data import Splits
    from jobs.tasks import Task

SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's record of complete checkpoints


def train(spec: JobSpec, storage: RunStorage, report: str | None = None,
          callbacks: list | None = None, segment: Segment | None = None) -> dict:
    """Run the training on the Ray cluster; return rank 0's final numbers.

    A sweep's trial (jobs.tune) passes `report`, a metric name: every log record holding it
    also goes to `ray.train.report`, where `callbacks` (Ray Train callbacks, e.g. Tune's
    TuneReportCallback) see it while the trial runs. A PBT trial trains `segment` by segment;
    a segment that stops before the end returns only its step (and checkpoint).
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    from jobs import failure

    # Ray Train turns print() in workers into log records, which duplicates lines and spills
    # the output libraries capture (datasets' hashing disassembles code through print).
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    scale = spec.scale
    settings = dict(
        train_loop_per_worker=train_worker,
        train_loop_config={"spec": spec.model_dump(mode="json"), "run": storage.layout.root,
                           "report": report, "segment": segment and dataclasses.asdict(segment)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=scale.num_workers,
            use_gpu=scale.gpus_per_worker > 0,
            resources_per_worker={"CPU": scale.cpus_per_worker, "GPU": scale.gpus_per_worker},
            placement_strategy=scale.placement_strategy,
        ),
        # Checkpoints land in <run>/checkpoints/checkpoint_*/ (Ray's storage_path/name layout),
        # or a segment's in <run>/checkpoints/<segment>/checkpoint_*/, through the run's own
        # filesystem: S3 with a custom endpoint works the same way.
        run_config=ray.train.RunConfig(
            storage_path=storage.root if segment is None else storage.path(CHECKPOINTS),
            name=CHECKPOINTS if segment is None else segment.name,
            storage_filesystem=storage.filesystem,
            # Retries are decided here, below: Ray Train would retry every failure alike.
            failure_config=ray.train.FailureConfig(max_failures=0),
            callbacks=callbacks),
    )
    retries, allowed = 0, spec.training.max_failures
    while True:
        try:
            result = TorchTrainer(**settings).fit()
            break
        except ray.train.WorkerGroupError as err:
            # Only a worker that died is worth a retry; an exception of the job's own code
            # (a model or data that cannot be loaded, out of memory) would come back each time.
            if not failure.retryable(err) or retries == allowed:
                raise
            retries += 1
            # The same run again: Ray Train restores its checkpoints from storage, and
            # train_worker resumes from the latest one it registered.
            print(log_line(f"a worker failed ({failure.one_line(err)}); restarting the workers "
                           f"from the last checkpoint (retry {retries} of "
                           f"{'unlimited' if allowed < 0 else allowed})"), flush=True)
    kept = _prune_unregistered_checkpoints(
        storage, CHECKPOINTS if segment is None else f"{CHECKPOINTS}/{segment.name}")
    return dict(result.return_value or {}, checkpoints=kept,
                checkpoint=result.checkpoint and result.checkpoint.path)


def _prune_unregistered_checkpoints(storage: RunStorage, folder: str) -> int:
    """Delete checkpoint folders of the Ray Train run in `folder` that Ray never registered.

    Ray Train lists the checkpoints it committed in its snapshot. Anything else under
    checkpoints/ was cut short by a dying worker, or reported just before a failure and never
    committed; either would only mislead a user looking for a checkpoint to load.
    """
    import pyarrow.fs

    snapshot = json.loads(storage.read_text(f"{folder}/{SNAPSHOT}") or "{}")
    registered = {c["checkpoint_dir_name"] for c in snapshot.get("checkpoint_results", [])}
    selector = pyarrow.fs.FileSelector(storage.path(folder), allow_not_found=True)
    for info in storage.filesystem.get_file_info(selector):
        if info.type == pyarrow.fs.FileType.Directory and info.base_name not in registered:
            storage.filesystem.delete_dir(info.path)
            print(log_line(f"removed the incomplete checkpoint {info.base_name}"), flush=True)
    return len(registered)


@dataclass
class Fit:
    """Everything a worker trains with: the task, its tokenizer and data, and the Trainer."""

    task: Task
    tokenizer: PreTrainedTokenizerBase
    splits: Splits
    labels: list[str] | None  # a classification task's label names
    trainer: Trainer


def build(spec: JobSpec, output_dir: Path, callbacks: list, eval_on_start: bool = True,
          deepspeed: bool = True) -> Fit:
    """The task's data, model (with its method) and Hugging Face Trainer for `spec`: what a
    Ray Train worker runs, and what bench/hf_loop.py runs without Ray (`deepspeed=False`: no
    DeepSpeed either)."""
    from transformers import PrinterCallback, set_seed

    from jobs.data import load_splits
    from jobs.metrics import EvalMetrics
    from jobs.model import load_model, load_tokenizer
    from jobs.tasks import encode, label_names, task_for
    from jobs.trainer import trainer_class

    task = task_for(spec.task)
    tokenizer = load_tokenizer(spec.model, spec.data)
    splits = load_splits(spec.data, spec.task, spec.training.seed)
    labels = label_names(task, splits.train, spec.data)
    train_set, _ = encode(task, splits.train, tokenizer, spec.data, labels)
    eval_set, eval_slices = encode(task, splits.validation, tokenizer, spec.data, labels)
    # The arguments carry the DeepSpeed config: create them before loading the model, so ZeRO-3
    # partitions the weights as they load instead of materialising them on every worker.
    args = task.arguments(training_arguments(spec, output_dir, eval_on_start), spec.data)
    if not deepspeed:
        args = dataclasses.replace(args, deepspeed=None)
    # The Trainer seeds only after the model exists: seed first, so the new weights (LoRA's
    # matrices, a classifier head) start the same for the same training.seed.
    set_seed(spec.training.seed)
    model = load_model(spec.model, spec.method, task, tokenizer, labels)
    # per-parameter learning rates (jobs.methods) on the task's Trainer
    trainer = trainer_class(task.trainer_base())(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=task.collator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=EvalMetrics(task.metrics(tokenizer, labels), eval_slices,
                                    spec.data.slice_field),
        preprocess_logits_for_metrics=task.reduce_logits,
        callbacks=callbacks,
    )
    trainer.model_accepts_loss_kwargs = task.loss_takes_token_count
    trainer.remove_callback(PrinterCallback)  # MetricsFileCallback prints one line per log
    return Fit(task, tokenizer, splits, labels, trainer)


@dataclass
class Worker:
    """What one Ray Train worker trains with, once set up."""

    spec: JobSpec
    storage: RunStorage
    rank: int
    scratch: Path  # this worker's own folder; removed when it ends
    segment: Segment | None  # a PBT trial trains one segment per Ray Train run
    start: str | None  # the Trainer checkpoint folder it resumes from; None: from step 0
    fit: Fit


@dataclass
class Evaluation:
    before: dict  # the first evaluation's log record (step 0, or restored with a checkpoint)
    after: dict  # the last step's
    test: dict  # the test split's metrics, evaluated once at the end; {} without a test split


@dataclass
class Export:
    model: dict | None  # what export_model wrote, with its uri (rank 0 only)
    samples: list[dict]  # generations on validation prompts
    sample_metrics: dict  # ROUGE / BLEU of the samples


def train_worker(config: dict) -> dict:
    """One Ray Train worker: set up, train, evaluate, export, summarise; its folder removed
    however it ends."""
    with importing():
        worker = set_up(config)
    try:
        trainer = worker.fit.trainer
        resume_training(trainer, worker.start, worker.segment and worker.segment.stop_at)
        if worker.segment is not None and trainer.state.global_step < trainer.state.max_steps:
            return {"global_step": trainer.state.global_step}  # PBT reads metrics.jsonl
        evaluation = evaluate(worker)
        return summarise(worker, evaluation, export(worker))
    finally:
        shutil.rmtree(worker.scratch, ignore_errors=True)


def set_up(config: dict) -> Worker:
    """The worker's spec, storage, checkpoint to resume from, and its Trainer with every
    callback a run needs."""
    import ray.train

    from jobs.callbacks import (
        ApplyLearningRate,
        EarlyStopping,
        MetricsFileCallback,
        ReportCheckpoint,
        ReportMetric,
    )

    spec = JobSpec.model_validate(config["spec"])
    storage = RunStorage(RunLayout(config["run"]))
    rank = ray.train.get_context().get_world_rank()
    scratch = Path(tempfile.mkdtemp(prefix=f"launch-{storage.layout.run_id}-rank{rank}-"))
    segment = config["segment"] and Segment(**config["segment"])
    start = _latest_checkpoint(scratch)
    # A segment's run starts from the checkpoint its trial continues (until it has its own).
    continues_segment = start is None and segment is not None and segment.resume_from
    if continues_segment:
        start = _fetch_checkpoint(ray.train.Checkpoint(segment.resume_from, storage.filesystem),
                                  scratch)
    fit = build(spec, scratch, eval_on_start=start is None, callbacks=[
        MetricsFileCallback(storage, scratch / METRICS, rank == 0),
        ReportCheckpoint(spec.training.checkpoint_upload)])
    if config["report"]:
        fit.trainer.add_callback(ReportMetric(config["report"]))
    if spec.training.early_stopping is not None:
        fit.trainer.add_callback(EarlyStopping(spec.training.early_stopping))
    if continues_segment:
        fit.trainer.add_callback(ApplyLearningRate(segment.trained_lr))
    return Worker(spec, storage, rank, scratch, segment, start, fit)


def evaluate(worker: Worker) -> Evaluation:
    """The evaluations before and after training (the last step evaluated if it was not yet),
    and the held-out test split, evaluated once."""
    from jobs.metrics import EvalMetrics
    from jobs.tasks import encode

    fit, trainer = worker.fit, worker.fit.trainer
    evals = [log for log in trainer.state.log_history if "eval_loss" in log]
    if evals[-1]["step"] != trainer.state.global_step:
        evals.append(trainer.evaluate())
    tested = {}
    if fit.splits.test is not None:
        test_set, test_slices = encode(fit.task, fit.splits.test, fit.tokenizer,
                                       worker.spec.data, fit.labels)
        trainer.compute_metrics = EvalMetrics(fit.task.metrics(fit.tokenizer, fit.labels),
                                              test_slices, worker.spec.data.slice_field)
        tested = trainer.evaluate(test_set, metric_key_prefix="test")
    return Evaluation(evals[0], evals[-1], tested)


def export(worker: Worker) -> Export:
    """Save the trained model (every rank: ZeRO-3 gathers it), then on rank 0 export it to
    the run's model/ and sample generations from it."""
    from jobs.export import export_model, sample_generations

    fit, spec = worker.fit, worker.spec
    fit.trainer.save_model(str(worker.scratch / MODEL))  # adapter + tokenizer
    if worker.rank != 0:
        return Export(None, [], {})
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    # Training and its collective save are over. Under ZeRO-3 the Trainer's DeepSpeed config
    # would make from_pretrained partition the model to export across ranks (zero.Init),
    # waiting for ranks that have moved on: rank 0 loads it whole, alone.
    unset_hf_deepspeed_config()
    exported_model, exported = export_model(worker.scratch / MODEL, worker.scratch / "export",
                                            spec, fit.task, fit.tokenizer, fit.labels)
    worker.storage.upload_dir(Path(exported.pop("path")), MODEL)
    exported["uri"] = worker.storage.layout.uri(MODEL)
    samples, sample_metrics = [], {}
    if fit.task.prompt is not None:
        samples, sample_metrics = sample_generations(
            exported_model, fit.tokenizer, fit.task, fit.splits.validation, spec.data,
            spec.export.sample_generations, spec.export.max_new_tokens)
    return Export(exported, samples, sample_metrics)


def summarise(worker: Worker, evaluation: Evaluation, exported: Export) -> dict:
    """The worker's part of summary.json."""
    from jobs.methods import parameter_counts

    fit, trainer = worker.fit, worker.fit.trainer
    return {
        "eval_loss_before": evaluation.before["eval_loss"],
        "eval_loss_after": evaluation.after["eval_loss"],
        "eval_before": _metrics_only(evaluation.before),
        "eval_after": _metrics_only(evaluation.after),
        "test": _metrics_only(evaluation.test, "test_"),
        "labels": fit.labels,
        "exported": exported.model,
        "samples": exported.samples,
        "sample_metrics": exported.sample_metrics,
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_samples": len(trainer.train_dataset),
        "eval_samples": len(trainer.eval_dataset),
        "tokens_seen": trainer.state.num_input_tokens_seen,
        **parameter_counts(trainer.model),  # trainable_params, total_params
        "data": fit.splits.report,  # rows read, dropped by each cleaning rule, per split
        "stopped_early": trainer.state.global_step < trainer.state.max_steps,
    }


def resume_training(trainer, checkpoint: str | None, last_step: int | None = None) -> None:
    """trainer.train from `checkpoint` (None: from the start) to `last_step` (None: max_steps)
    and never past it; the last step is checkpointed."""
    from jobs.callbacks import AlreadyTrained, TrainUntil

    trainer.add_callback(TrainUntil(last_step))
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except AlreadyTrained:
        print(log_line(f"{checkpoint} is of the last step ({trainer.state.global_step}): "
              "nothing left to train"), flush=True)


def _metrics_only(record: dict, prefix: str = "eval_") -> dict:
    """An evaluation's metrics, without its timings."""
    timings = {prefix + name for name in ("runtime", "samples_per_second", "steps_per_second")}
    return {k: v for k, v in record.items() if k.startswith(prefix) and k not in timings}


def _latest_checkpoint(scratch: Path) -> str | None:
    """The Trainer folder of the run's latest checkpoint, fetched locally, if there is one."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    return None if checkpoint is None else _fetch_checkpoint(checkpoint, scratch)


def _fetch_checkpoint(checkpoint, scratch: Path) -> str:
    """The Trainer folder of a Ray Train checkpoint, fetched locally."""
    from jobs.callbacks import ReportCheckpoint

    local = Path(checkpoint.to_directory(str(scratch / "resume")))
    print(log_line(f"resuming from {checkpoint.path}"), flush=True)
    return str(local / ReportCheckpoint.CHECKPOINT_NAME)


def training_arguments(spec: JobSpec, output_dir: Path, eval_on_start: bool = True):
    from transformers import TrainingArguments

    from jobs.deepspeed_config import deepspeed_config, skip_inference_collectives

    t, zero = spec.training, deepspeed_config(spec.scale)
    if zero is not None:  # before DeepSpeed joins the process group, as the arguments make it
        skip_inference_collectives()
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=t.batch_size_per_worker,
        per_device_eval_batch_size=t.batch_size_per_worker,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        # A value below 1 is a ratio of the total steps.
        warmup_steps=t.warmup_steps if t.warmup_steps is not None else t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if t.eval_steps else "no",
        eval_steps=t.eval_steps,
        eval_on_start=eval_on_start,  # the "before" number every run is judged against
        save_strategy="steps",
        save_steps=t.save_steps,
        seed=t.seed,
        bf16=spec.scale.precision == "bf16",
        fp16=spec.scale.precision == "fp16",
        deepspeed=zero,
        # Without it accelerate sees no GPU, assumes one process and breaks the gloo collectives.
        use_cpu=spec.scale.gpus_per_worker == 0,
        include_num_input_tokens_seen=True,
        report_to="none",
        disable_tqdm=True,
    )

