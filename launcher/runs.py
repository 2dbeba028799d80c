"""Client-side record of submitted runs (LAUNCH_HOME/runs/<run id>.json).

A record says where a run's results live and which target runs it (its `target` settings, as
validated from the job file), so `launch results` and `launch logs` find a run by its id alone.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from launcher.errors import LaunchError
from launcher.settings import launch_home

RUN_ID = re.compile(r"^[a-z0-9][-a-z0-9]*$")


@dataclass
class RunRecord:
    run_id: str
    job_name: str
    target: dict  # the job's `target` settings (launcher.targets.target_settings reads them)
    run_dir: str  # the run's root: a local path or an s3:// URI
    storage: dict  # the spec's storage settings (no credentials: the spec has none)
    submitted_at: float
    attempt: int = 1  # submissions of this run: `--resume` adds one

    @property
    def ray_job_id(self) -> str:
        """The Ray job of the latest attempt (Ray needs a new submission id per attempt)."""
        return self.run_id if self.attempt == 1 else f"{self.run_id}-attempt{self.attempt}"


_ATTEMPT = re.compile(r"^(?P<run>.+?)(-attempt(?P<n>[0-9]+))?$")


def split_ray_job_id(ray_job_id: str) -> tuple[str, int]:
    """The run id and attempt of a Ray job id (RunRecord.ray_job_id the other way)."""
    match = _ATTEMPT.match(ray_job_id)
    return match["run"], int(match["n"] or 1)


def new_run_id(job_name: str) -> str:
    """`NAME-YYYYmmdd-HHMMSS-xxxxxx`: jobs a team submits in the same second still get their
    own ids (and results folders); at most 63 characters, a Kubernetes label value."""
    return f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _from_json(data: dict) -> RunRecord:
    """A record as saved, including those of launch before the target registry (a kind name
    plus an encoded address)."""
    if isinstance(data.get("target"), str):
        kind, address = data.pop("target"), data.pop("address")
        if kind == "kubernetes":
            namespace, _, context = address.removeprefix("kubernetes://").partition("/")
            data["target"] = {"kind": kind, "kubernetes": {"namespace": namespace,
                                                           "context": context or None}}
        else:
            data["target"] = {"kind": "ray", "address": address}
    return RunRecord(**data)


def save(record: RunRecord) -> None:
    folder = launch_home() / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{record.run_id}.json").write_text(json.dumps(asdict(record), indent=2))


def load(run_id: str) -> RunRecord:
    path = launch_home() / "runs" / f"{run_id}.json"
    if not RUN_ID.match(run_id) or not path.is_file():
        raise LaunchError(f"unknown run id `{run_id}`; `launch list` shows the runs")
    return _from_json(json.loads(path.read_text()))


def all_records() -> list[RunRecord]:
    folder = launch_home() / "runs"
    return [_from_json(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def latest() -> RunRecord:
    records = all_records()
    if not records:
        raise LaunchError("no runs yet; submit one with `launch submit JOB.yaml`")
    return max(records, key=lambda record: record.submitted_at)
