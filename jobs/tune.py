"""Ray Tune sweeps: every trial is a real Ray Train run of the job with other hyperparameters.

Tune and Train compose the way Ray documents for Train V2 (Ray >= 2.43, "Hyperparameter Tuning
with Ray Tune" in the Ray Train guide): the Tuner runs a function trainable (`_trial`) that acts
as the Ray Train driver of its trial. It starts a TorchTrainer through jobs.train.train (the
same per-worker loop as a single run) with `ray.tune.integration.ray_train.TuneReportCallback`
as a Ray Train callback, which forwards what the workers report to Tune, where the scheduler
and the search algorithm see it. The deprecated `Tuner(trainer)` form is not used.

Storage: <run>/tune/ is Tune's experiment folder (what Tuner.restore reads after the driver
died); <run>/tune/<trial id>/ is Tune's trial folder and a run folder of its own (spec.json,
metrics.jsonl, checkpoints/, model/, and summary.json once the trial completed). The sweep then
writes tune/trials.json, tune/best.json, the best trial's model to model/, and plots/.

Scheduler pbt trains each trial in segments and reports between them, without
TuneReportCallback: see jobs.pbt.
"""

from __future__ import annotations

import json

from jobs import failure, pbt
from jobs.export import plot_sweep, read_metrics, write_summary
from jobs.storage import RunStorage
from launcher.contract import (
    BEST,
    CHECKPOINTS,
    MODEL,
    SPEC,
    SUMMARY,
    TRIALS,
    TUNE,
    RunLayout,
    TrainingSummary,
    log_line,
)
from launcher.spec.models import JobSpec
from launcher.spec.tune import TuneSpec


def sweep(spec: JobSpec, storage: RunStorage) -> dict:
    """Run (or, when the run's tune/ folder holds a sweep, resume) the sweep; return its summary."""
    import ray.tune

    experiment = storage.path(TUNE)
    trainable = ray.tune.with_parameters(_trial, job=spec.model_dump(mode="json"),
                                         run=storage.layout.root)
    # A trial only drives its Ray Train run; the workers hold the CPUs and GPUs. Like Ray's own
    # controllers, it asks for a sliver of the head node: the safe node Ray's guide recommends
    # for Train drivers, and no CPU taken from the workers.
    from jobs.ray_internals import HEAD_NODE_RESOURCE_NAME

    trainable = ray.tune.with_resources(trainable, {HEAD_NODE_RESOURCE_NAME: 0.001})
    if ray.tune.Tuner.can_restore(experiment, storage_filesystem=storage.filesystem):
        print(log_line(f"resuming the sweep in {storage.layout.uri(TUNE)}"), flush=True)
        # Finished and failed trials keep their results; unfinished ones start again, and each
        # one's Ray Train run picks up from its own latest checkpoint.
        tuner = ray.tune.Tuner.restore(experiment, trainable, resume_unfinished=True,
                                       storage_filesystem=storage.filesystem)
    else:
        tuner = ray.tune.Tuner(
            trainable, param_space=param_space(spec.tune),
            tune_config=_tune_config(spec), run_config=ray.tune.RunConfig(
                name=TUNE, storage_path=storage.root, storage_filesystem=storage.filesystem,
                stop=pbt.stop(spec) if spec.tune.pbt else None,
                # A crashing trial is FAILED, and the sweep goes on. Ray Train has already
                # retried its workers training.max_failures times.
                failure_config=ray.tune.FailureConfig(max_failures=0, fail_fast=False)))
    return _record(spec, storage, _trials(spec.tune, storage, tuner.fit()))


def param_space(tune: TuneSpec) -> dict:
    """The `tune.space` section as Ray Tune's search space, nested like the spec."""
    import ray.tune

    make = {"choice": ray.tune.choice, "grid": ray.tune.grid_search}
    ranges = {"uniform": ray.tune.uniform, "loguniform": ray.tune.loguniform,
              "randint": ray.tune.randint}
    return {section: {name: make[p.kind](p.args) if p.kind in make else ranges[p.kind](*p.args)
                      for name, p in fields.items()}
            for section, fields in tune.space.items()}


def trial_spec(job: dict, config: dict) -> JobSpec:
    """The single-run spec of one trial: the job with the trial's values, no tune section."""
    merged = {**job, "tune": None}
    for section, values in config.items():
        merged[section] = {**job[section], **values}
    return JobSpec.model_validate(merged)


def _tune_config(spec: JobSpec):
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    tune, concurrency = spec.tune, _concurrency(spec)
    if tune.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search = OptunaSearch(seed=spec.training.seed)  # TPE, Optuna's default sampler
    else:  # random and grid: Tune's variant generator enumerates grid_search dimensions.
        # It limits concurrency itself: Tune ignores max_concurrent_trials for it.
        search = BasicVariantGenerator(random_state=spec.training.seed,
                                       max_concurrent=concurrency)
    scheduler = FIFOScheduler()
    if tune.asha is not None:
        # Rungs count optimizer steps: every report carries the trial's global step. ASHA
        # stops a trial that reaches max_t at once, before it can save its model: one step
        # more lets a trial that survives every rung finish its own run.
        scheduler = ASHAScheduler(time_attr="step", max_t=tune.asha.max_t + 1,
                                  grace_period=tune.asha.grace_period,
                                  reduction_factor=tune.asha.reduction_factor)
    if tune.pbt is not None:
        # The variant generator would hold back trials while the first ones are paused, and
        # PBT would then compare separate waves of trials.
        if tune.trial_count() > concurrency:
            raise ValueError(f"scheduler pbt trains its whole population at once, but the "
                             f"cluster holds {concurrency} of its {tune.trial_count()} trials: "
                             f"lower tune.num_samples or add workers")
        scheduler = pbt.scheduler(tune, param_space(tune))
    return ray.tune.TuneConfig(
        metric=tune.metric, mode=tune.mode, search_alg=search, scheduler=scheduler,
        num_samples=tune.num_samples,
        max_concurrent_trials=concurrency if tune.search == "optuna" else None,
        trial_dirname_creator=_trial_dirname)


def _concurrency(spec: JobSpec) -> int:
    """max_concurrent_trials, or how many trials' workers the cluster holds at once."""
    import ray

    if spec.tune.max_concurrent_trials:
        return spec.tune.max_concurrent_trials
    scale, total = spec.scale, ray.cluster_resources()
    need = {"CPU": scale.num_workers * scale.cpus_per_worker,
            "GPU": scale.num_workers * scale.gpus_per_worker}
    return max(1, int(min(total.get(name, 0) // amount for name, amount in need.items()
                          if amount)))


def _trial_dirname(trial) -> str:
    return trial.trial_id


def _trial(config: dict, job: dict, run: str) -> None:
    """One trial, in its Tune actor: drive a Ray Train run of the job with `config`."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from jobs.train import train

    spec = trial_spec(job, config)
    trial_id = ray.tune.get_context().get_trial_id()
    storage = RunStorage(RunLayout(f"{run}/{TUNE}/{trial_id}"))
    storage.write_text(SPEC, spec.model_dump_json(indent=2))
    print(log_line(f"trial {trial_id}: {json.dumps(_flat(config))}"), flush=True)
    tune = TuneSpec.model_validate(job["tune"])
    # Only a trial that ran to its end has a summary.json.
    if tune.pbt is not None:
        pbt.train_in_segments(spec, storage, tune, trial_id)
    else:
        result = train(spec, storage, report=tune.metric, callbacks=[TuneReportCallback()])
        write_summary(storage, TrainingSummary.model_validate(result))


def _flat(config: dict) -> dict:
    return {f"{section}.{name}": value for section, values in config.items()
            for name, value in values.items()}


def _swept_values(tune: TuneSpec, trial: RunStorage) -> dict:
    """A trial's values of the swept fields, from the spec it ran with: a restored sweep's
    failed trials come back from Tune without their config."""
    spec = json.loads(trial.read_text(SPEC) or "{}")
    return {f"{section}.{name}": spec.get(section, {}).get(name)
            for section, fields in tune.space.items() for name in fields}


def _trials(tune: TuneSpec, storage: RunStorage, grid) -> list[dict]:
    """One row per trial, best first, from Tune's results and each trial's folder."""
    rows = []
    for result in grid:
        # Each trial keeps its run under tune/<trial id>/ (_trial). Tune's own folder for it
        # has that name too, unless a restored sweep found the name taken and added a suffix.
        trial_id = result.metrics.get("trial_id") or result.path.rstrip("/").rsplit("/", 1)[1]
        trial = RunStorage(RunLayout(storage.layout.uri(f"{TUNE}/{trial_id}")))
        records = read_metrics(trial)
        values = [r[tune.metric] for r in records if tune.metric in r]
        summary = json.loads(trial.read_text(SUMMARY) or "{}")
        state = "FAILED" if result.error else "COMPLETED" if summary else "STOPPED"
        rows.append({
            "trial_id": trial_id, "state": state,
            "config": _flat(result.config) if result.config else _swept_values(tune, trial),
            tune.metric: values[-1] if values else None,
            "steps": max((r["step"] for r in records), default=0),
            # checkpoints/checkpoint_*, or checkpoints/<segment>/checkpoint_* under PBT
            "checkpoint": summary.get("checkpoint") and trial.layout.uri(
                CHECKPOINTS + "/" + summary["checkpoint"].rsplit(f"/{CHECKPOINTS}/", 1)[1]),
            "error": result.error and failure.one_line(result.error),
            **({"perturbations": json.loads(trial.read_text(pbt.PERTURBATIONS) or "[]")}
               if tune.pbt else {}),
            "curve": [(r["step"], r[tune.metric]) for r in records if tune.metric in r],
            "summary": summary})
    sign = 1 if tune.mode == "min" else -1
    return sorted(rows, key=lambda r: (r[tune.metric] is None, sign * (r[tune.metric] or 0)))


def _record(spec: JobSpec, storage: RunStorage, trials: list[dict]) -> dict:
    """trials.json, best.json, the best trial's model as the run's model, plots; the summary."""
    import pyarrow.fs

    tune = spec.tune
    internal = ("curve", "summary")  # for the plots and the best trial's numbers below
    storage.write_text(TRIALS, json.dumps([{k: v for k, v in t.items() if k not in internal}
                                           for t in trials], indent=2))
    completed = [t for t in trials if t["state"] == "COMPLETED"]
    if not completed:
        raise RuntimeError(f"no trial of the sweep completed; see {storage.layout.uri(TRIALS)}")
    best = completed[0]
    trial = storage.layout.uri(f"{TUNE}/{best['trial_id']}")
    storage.write_text(BEST, json.dumps({
        "trial_id": best["trial_id"], "config": best["config"], "metric": tune.metric,
        "mode": tune.mode, "value": best[tune.metric], "checkpoint": best["checkpoint"],
        "model": storage.layout.uri(MODEL)}, indent=2))
    storage.filesystem.create_dir(storage.path(MODEL))  # a local copy needs the folder
    pyarrow.fs.copy_files(f"{storage.root}/{TUNE}/{best['trial_id']}/{MODEL}",
                          storage.path(MODEL), source_filesystem=storage.filesystem,
                          destination_filesystem=storage.filesystem)
    main_param = next(iter(tune.params())).removeprefix("tune.space.")
    plot_sweep(storage, tune.metric, trials, main_param)
    counts = {state: sum(t["state"] == state for t in trials)
              for state in ("COMPLETED", "STOPPED", "FAILED")}
    return {
        **best["summary"], "state": "SUCCEEDED", "best_trial": best["trial_id"],
        "metric": tune.metric, "best_value": best[tune.metric], "best_config": best["config"],
        "trials": len(trials), **{f"trials_{s.lower()}": n for s, n in counts.items()},
        "total_steps": sum(t["steps"] for t in trials), "search": tune.search,
        "scheduler": tune.scheduler,
        # What the best trial exported, now at the run's own model/.
        "exported": {**(best["summary"].get("exported") or {}), "uri": storage.layout.uri(MODEL),
                     "from_trial": trial}}
