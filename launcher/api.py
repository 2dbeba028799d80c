"""What the CLI does, as functions: submit a job, follow it, read its results.

The CLI only parses arguments and prints; every decision is here, usable from Python too.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from launcher import contract as files
from launcher import ray_auth, runs
from launcher.contract import RunLayout, merged_status
from launcher.errors import LaunchError
from launcher.runs import RunRecord
from launcher.spec.load import load_spec
from launcher.spec.models import JobSpec, StorageSpec
from launcher.storage import Storage, job_environment, storage_for
from launcher.targets import Target, make_target, target_settings
from launcher.targets.base import TERMINAL_STATES, JobInfo

if TYPE_CHECKING:
    from launcher.image.build import BuiltImage, Feedback


def submit(job_file: str | Path, resume: str | None = None,
           feedback: Feedback | None = None, overrides: dict | None = None) -> RunRecord:
    """Validate, check storage, write the run's spec.json, and submit; return the run's record.

    With `resume`, the job goes on in that run's folder from its latest checkpoint instead of
    starting a new run. Every check that can fail runs before the Ray job exists; a failed
    submission of a new run leaves nothing behind in storage.
    """
    if address := (overrides or {}).get("target", {}).get("address"):
        ray_auth.name(address)
    spec = load_spec(job_file, overrides)
    target = make_target(spec.target)
    if target.capabilities.trains_here and importlib.util.find_spec("torch") is None:
        raise LaunchError(f"the Ray head at {spec.target.where} trains on this machine, which "
                          "lacks the training stack: pip install 'launch[train]'")
    storage = storage_for(spec.storage)
    storage.check(spec.storage.uri)
    _check_remote_data(spec, storage)
    if resume:
        previous = runs.load(resume)
        _check_resumable(previous, spec)
        run = replace(previous, attempt=previous.attempt + 1, submitted_at=time.time())
    else:
        run_id = runs.new_run_id(spec.name)
        run = RunRecord(run_id=run_id, job_name=spec.name,
                        target=spec.target.model_dump(mode="json"),
                        run_dir=RunLayout.for_run(spec.storage.uri, spec.name, run_id).root,
                        storage=spec.storage.model_dump(mode="json"), submitted_at=time.time())
    layout = RunLayout(run.run_dir)
    env = job_environment(spec.storage, storage, target.capabilities.shares_this_machine)
    target.prepare()
    image = None
    if target.capabilities.runs_from_image:
        spec, image = _job_image(spec, Path(job_file).resolve().parent, target, feedback)
    try:
        storage.write_text(layout.uri(files.SPEC), spec.model_dump_json(indent=2))
        current = {} if not resume else storage.read_json(layout.uri(files.STATUS), {})
        status = merged_status(current, "PENDING", run_id=run.run_id, attempt=run.attempt,
                               ray_job_id=run.ray_job_id, target=spec.target.kind,
                               address=spec.target.where, submitted_at=run.submitted_at,
                               image=image)
        storage.write_text(layout.uri(files.STATUS), json.dumps(status, indent=2))
        target.submit(spec, layout, run.ray_job_id, env, image)
    except Exception as err:
        if not resume:
            storage.delete_tree(layout.root)
        if isinstance(err, LaunchError):
            raise
        raise LaunchError(f"could not submit to {spec.target.where}: {err}") from err
    runs.save(run)
    return run


def _job_image(spec: JobSpec, job_dir: Path, target: Target,
               feedback: Feedback | None) -> tuple[JobSpec, str]:
    """The spec as the job reads it inside its image, and the image's reference: built and
    pushed, or (where the nodes were given the image beforehand) only named, with no registry
    asked."""
    if target.capabilities.pulls_image:
        from launcher.image.build import build_image

        built = build_image(spec, job_dir, feedback=feedback)
        return built.spec, built.reference
    spec, image = _planned_image(spec, job_dir)
    if feedback is not None:
        feedback.log(f"not building or pushing {image}: the nodes must have it "
                     "(image_pull_policy Never; `launch build --no-push`, then `launch kind "
                     "load`)")
    return spec, image


def _planned_image(spec: JobSpec, job_dir: Path) -> tuple[JobSpec, str]:
    """The spec as the job reads it inside its image, and the tag a build would push; no
    registry is asked."""
    import tempfile

    from launcher.image.build import plan_image

    with tempfile.TemporaryDirectory(prefix="launch-plan-") as folder:
        plan = plan_image(spec, job_dir, Path(folder))
    return plan.layer.spec, plan.reference


def dry_run(job_file: str | Path, overrides: dict | None = None) -> str:
    """What `submit` would create, without creating, building or pushing anything: for
    targets that run from an image, with the tag the build would push."""
    spec = load_spec(job_file, overrides)
    target = make_target(spec.target)
    run_id = runs.new_run_id(spec.name)
    layout = RunLayout.for_run(spec.storage.uri, spec.name, run_id)
    image = None
    if target.capabilities.runs_from_image:
        spec, image = _planned_image(spec, Path(job_file).resolve().parent)
    return target.describe(spec, layout, run_id, image)


def build(job_file: str | Path, builder: str | None = None,
          feedback: Feedback | None = None, push: bool = True) -> BuiltImage:
    """Build and push the job's image (nothing when the registry has it), or with `push`
    False only build it here; see launcher.image."""
    from launcher.image.build import build_image

    spec = load_spec(job_file)
    if spec.image is None:
        raise LaunchError(f"{job_file}: add an `image:` section (at least `repository:`) to "
                          "build an image")
    return build_image(spec, Path(job_file).resolve().parent, builder, feedback, push)


def run_image(job_file: str | Path, results_dir: Path,
              feedback: Feedback | None = None) -> tuple[BuiltImage, RunLayout]:
    """Build the job's image, then run it here on tiny settings; see launcher.image.smoke."""
    from launcher.image.build import Feedback
    from launcher.image.smoke import run_image as run_smoke

    feedback = feedback or Feedback()
    image = build(job_file, feedback=feedback)
    return image, run_smoke(image.reference, image.spec, results_dir, image.insecure,
                            feedback.log)


def _check_remote_data(spec: JobSpec, storage: Storage) -> None:
    """s3:// data exists (local data was checked at validation): a typo fails here, not after
    the cluster has started the job."""
    path = spec.data.path
    if path.startswith("s3://") and not storage.exists(path):
        raise LaunchError(f"data.path {path}: no such object or folder at "
                          f"{spec.storage.endpoint_url or 'AWS S3'}")


def _check_resumable(run: RunRecord, spec: JobSpec) -> None:
    if run.job_name != spec.name or run.storage != spec.storage.model_dump(mode="json"):
        raise LaunchError(f"run {run.run_id} belongs to job `{run.job_name}` in "
                          f"{run.storage['uri']}; resume it with that job's file")
    try:  # the cluster knows best; status() reads status.json when the cluster is gone
        state = status(run).state
    except LaunchError:
        state = None
    if state not in ("FAILED", "STOPPED"):
        raise LaunchError(f"run {run.run_id} is {state or 'unknown'}; only a FAILED or "
                          "STOPPED run can be resumed")


def record(run_id: str | None, address: str | None = None) -> RunRecord:
    """The run named, or the latest one submitted from this machine; `address` (--address)
    reaches its Ray cluster elsewhere than the record says (another name, a port-forward)."""
    run = runs.load(run_id) if run_id else runs.latest()
    if address is None:
        return run
    ray_auth.name(address)
    target = {**run.target, "address": address}
    target_settings(target)  # a clear error for a bad address, or a kind that has none
    return replace(run, target=target)


def target_of(run: RunRecord) -> Target:
    return make_target(target_settings(run.target))


def storage_of(run: RunRecord) -> Storage:
    return storage_for(StorageSpec.model_validate(run.storage))


def status(run: RunRecord) -> JobInfo:
    """The run's state from its cluster; when the cluster cannot tell (gone, unreachable), the
    last state its storage recorded, marked as such (`source`)."""
    try:
        return _with_cause(run, target_of(run).info(run.ray_job_id))
    except LaunchError as err:
        stored = stored_status(run)
        if stored is None:
            raise
        stored.message = f"live state unavailable ({err}); {stored.message}".rstrip("; ")
        return stored


def _with_cause(run: RunRecord, info: JobInfo) -> JobInfo:
    """A failed run's message is the cause its driver recorded in status.json (one line),
    rather than Ray's "entrypoint command failed" with the log's tail."""
    if info.state != "FAILED":
        return info
    try:
        stored = stored_status(run)
    except LaunchError:  # storage unreachable: Ray's own message is all there is
        return info
    return replace(info, message=stored.message) if stored and stored.message else info


def stored_status(run: RunRecord) -> JobInfo | None:
    """The run's state as its status.json says (None when storage has none)."""
    status = storage_of(run).read_json(RunLayout(run.run_dir).uri(files.STATUS))
    if not status:
        return None
    return JobInfo(run_id=run.run_id, state=status.get("state", "UNKNOWN"),
                   message=status.get("error", ""), start_time=status.get("started_at"),
                   end_time=status.get("ended_at"), run_dir=run.run_dir, source="storage",
                   attempts=run.attempt)


def logs(run: RunRecord, follow: bool) -> Iterator[str]:
    """The driver log from the cluster, or from storage once the cluster has forgotten it."""
    try:
        target = target_of(run)
        target.info(run.ray_job_id)
    except LaunchError:
        text = storage_of(run).read_text(RunLayout(run.run_dir).uri(files.DRIVER_LOG))
        if text is None:
            raise
        return iter([text])
    return target.logs(run.ray_job_id, follow)


def wait(run: RunRecord, timeout_s: float | None = None, poll_s: float = 1.0) -> JobInfo:
    """Block until the run reaches a terminal state."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    target = target_of(run)
    while True:
        info = target.info(run.ray_job_id)
        if info.state in TERMINAL_STATES:
            return _with_cause(run, info)
        if deadline is not None and time.time() > deadline:
            raise LaunchError(f"run {run.run_id} still {info.state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def stop(run: RunRecord, timeout_s: float = 60) -> JobInfo:
    """Stop the run's job, wait for the end, and record STOPPED in its storage."""
    target_of(run).stop(run.ray_job_id)
    info = wait(run, timeout_s=timeout_s)
    storage, layout = storage_of(run), RunLayout(run.run_dir)
    current = storage.read_json(layout.uri(files.STATUS), {})
    if info.state == "STOPPED" and current.get("state") != "STOPPED":
        status = merged_status(current, "STOPPED", ended_at=time.time())
        storage.write_text(layout.uri(files.STATUS), json.dumps(status, indent=2))
    return info


def list_runs(address: str | None = None, namespace: str | None = None,
              context: str | None = None) -> list[JobInfo]:
    """The runs launch submitted to the Ray cluster at `address` (resolved as for a job), or,
    given a namespace, the RayJobs it created there. When the cluster does not answer: the
    runs submitted to it from this machine, as their storage recorded them."""
    if namespace:
        settings = {"kind": "kubernetes",
                    "kubernetes": {"namespace": namespace, "context": context}}
    else:
        settings = {"kind": "ray", "address": address}
        if address:
            ray_auth.name(address)
    settings = target_settings(settings)
    try:
        return _one_row_per_run(make_target(settings).list())
    except LaunchError:
        mine = [run for run in runs.all_records() if target_settings(run.target) == settings]
        if not mine:
            raise
        return [info for info in map(stored_status, mine) if info is not None]


def _one_row_per_run(jobs: list[JobInfo]) -> list[JobInfo]:
    """The cluster's jobs as runs: each attempt of a run (`submit --resume`) is a job of its
    own there; a run shows as its latest attempt, under the id every command accepts."""
    latest: dict[str, JobInfo] = {}
    for job in jobs:  # in the order they started
        run_id, attempt = runs.split_ray_job_id(job.run_id)
        if run_id not in latest or attempt >= latest[run_id].attempts:
            latest[run_id] = replace(job, run_id=run_id, attempts=attempt)
    return sorted(latest.values(), key=lambda job: job.start_time or 0)


@dataclass
class Results:
    run_id: str
    run_dir: str
    state: str
    summary: dict
    artifacts: dict[str, str]  # name → path relative to run_dir


def results(run: RunRecord) -> Results:
    """The run's final numbers and where each artifact is, read from its storage alone."""
    storage = storage_of(run)
    layout = RunLayout(run.run_dir)
    state = storage.read_json(layout.uri(files.STATUS), {}).get("state", "UNKNOWN")
    summary = storage.read_json(layout.uri(files.SUMMARY), {})
    names = storage.list(layout.root)
    present = {label: name for label, name in files.ARTIFACTS.items()
               if any(n == name or n.startswith(f"{name}/") for n in names)}
    return Results(run_id=run.run_id, run_dir=run.run_dir, state=state, summary=summary,
                   artifacts=present)


def sweep_trials(run: RunRecord) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """A sweep's trials table (headers, rows; best first), from storage; no rows otherwise."""
    from launcher.sweep_results import sweep_table

    return sweep_table(storage_of(run), run.run_dir)


def download(run: RunRecord, dest: Path) -> int:
    """Copy the run's model and artifacts (not its checkpoints) into `dest`; return the count."""
    return storage_of(run).download(run.run_dir, dest, exclude=(f"{files.CHECKPOINTS}/",))


@dataclass
class StoredRun:
    run_id: str
    job_name: str
    state: str
    eval_loss: float | None
    uri: str


def stored_runs(uri: str, endpoint_url: str | None = None) -> list[StoredRun]:
    """Every run under a storage root, with its final state and metric, from storage alone."""
    from pydantic import ValidationError

    fields = {"uri": uri, "endpoint_url": endpoint_url if uri.startswith("s3://") else None}
    try:
        settings = StorageSpec(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        raise LaunchError(f"--storage {uri}: {err.errors()[0]['msg']}") from None
    storage = storage_for(settings)
    found = []
    for name in storage.list(settings.uri):
        parts = name.split("/")
        if len(parts) == 3 and parts[2] == files.STATUS:
            layout = RunLayout.for_run(settings.uri, parts[0], parts[1])
            status = storage.read_json(layout.uri(files.STATUS), {})
            summary = storage.read_json(layout.uri(files.SUMMARY), {})
            found.append(StoredRun(run_id=parts[1], job_name=parts[0],
                                   state=status.get("state", "UNKNOWN"),
                                   eval_loss=summary.get("eval_loss_after"), uri=layout.root))
    return found
