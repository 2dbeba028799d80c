"""What the CLI does, as functions: submit a job, follow it, read its results.

The CLI only parses arguments and prints; every decision is here, usable from Python too.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from launcher import runs
from launcher.errors import LaunchError
from launcher.layout import RunLayout
from launcher.runs import RunRecord
from launcher.spec.load import load_spec
from launcher.targets import Target, make_target
from launcher.targets.base import TERMINAL_STATES, JobInfo


def submit(job_file: str | Path) -> RunRecord:
    """Validate, write the run's spec.json, and submit it; return the run's record."""
    spec = load_spec(job_file)
    if spec.target.kind == "local" and importlib.util.find_spec("torch") is None:
        raise LaunchError("the local target trains on this machine, which lacks the training "
                          "stack: pip install 'launch[train]'")
    target = make_target(spec.target.kind, spec.target.address)
    target.prepare()

    run_id = runs.new_run_id(spec.name)
    layout = RunLayout.for_run(spec.storage.uri, spec.name, run_id)
    try:
        layout.root.mkdir(parents=True)
        layout.spec.write_text(spec.model_dump_json(indent=2))
        layout.write_status("PENDING", run_id=run_id, target=spec.target.kind,
                            address=spec.target.address, submitted_at=time.time())
        target.submit(spec, layout, run_id)
    except Exception as err:
        # Nothing half-submitted: a run that never reached Ray leaves no folder behind.
        shutil.rmtree(layout.root, ignore_errors=True)
        if isinstance(err, LaunchError):
            raise
        raise LaunchError(f"could not submit to {spec.target.address}: {err}") from err
    record = RunRecord(run_id=run_id, job_name=spec.name, target=spec.target.kind,
                       address=spec.target.address, run_dir=str(layout.root),
                       submitted_at=time.time())
    runs.save(record)
    return record


def record(run_id: str | None) -> RunRecord:
    """The run named, or the latest one submitted from this machine."""
    return runs.load(run_id) if run_id else runs.latest()


def target_of(run: RunRecord) -> Target:
    return make_target(run.target, run.address)


def status(run: RunRecord) -> JobInfo:
    return target_of(run).info(run.run_id)


def logs(run: RunRecord, follow: bool) -> Iterator[str]:
    return target_of(run).logs(run.run_id, follow)


def wait(run: RunRecord, timeout_s: float | None = None, poll_s: float = 1.0) -> JobInfo:
    """Block until the run reaches a terminal state."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    target = target_of(run)
    while True:
        info = target.info(run.run_id)
        if info.state in TERMINAL_STATES:
            return info
        if deadline is not None and time.time() > deadline:
            raise LaunchError(f"run {run.run_id} still {info.state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def stop(run: RunRecord) -> None:
    target_of(run).stop(run.run_id)


def list_runs(address: str) -> list[JobInfo]:
    return make_target("local", address).list()


@dataclass
class Results:
    run_id: str
    run_dir: str
    state: str
    summary: dict
    artifacts: dict[str, str]  # name → path relative to run_dir


def results(run: RunRecord) -> Results:
    """The run's final numbers and where each artifact is, read from its storage folder."""
    layout = RunLayout(Path(run.run_dir))
    state = _read_json(layout.status).get("state", "UNKNOWN")
    summary = _read_json(layout.summary)
    artifacts = {
        "spec": layout.spec, "status": layout.status, "metrics": layout.metrics,
        "summary": layout.summary, "checkpoints": layout.checkpoints, "model": layout.model,
        "plots": layout.plots,
    }
    present = {name: str(path.relative_to(layout.root)) for name, path in artifacts.items()
               if path.exists()}
    return Results(run_id=run.run_id, run_dir=run.run_dir, state=state, summary=summary,
                   artifacts=present)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise LaunchError(f"{path} is not valid JSON ({err}); the run's storage is damaged")
