"""The target interface every kind of cluster implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from launcher.contract import RunLayout
from launcher.spec.models import JobSpec
from launcher.spec.target import Capabilities, TargetSpec

if TYPE_CHECKING:
    from launcher.doctor import Check

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class JobInfo:
    run_id: str
    state: str
    message: str
    start_time: float | None
    end_time: float | None
    run_dir: str | None
    source: str = "cluster"  # or "storage": the run's status.json, the cluster did not answer
    attempts: int = 1  # submissions of the run (`submit --resume` adds one); the latest's state


class Target(ABC):
    """One kind of cluster, built from its `target` settings (launcher/spec/target.py)."""

    # True where `dashboard()` forwards a port that lasts only while its block runs.
    forwards_dashboard: bool = False

    def __init__(self, settings: TargetSpec):
        self.settings = settings

    @property
    def capabilities(self) -> Capabilities:
        return self.settings.capabilities

    @abstractmethod
    def checks(self, spec: JobSpec | None, image_ray_version: str | None) -> list[Check]:
        """`launch doctor`'s checks of this cluster for `spec` (None: no job file):
        reachable, allowed, Ray versions, room for the job."""

    def describe(self, spec: JobSpec, layout: RunLayout, run_id: str,
                 image: str | None) -> str:
        """What `submit --dry-run` prints: what submit would create (here: the resolved spec
        the job reads)."""
        return spec.model_dump_json(indent=2) + "\n"

    @abstractmethod
    def prepare(self) -> None:
        """Make the cluster reachable (start it where that is the target's job)."""

    @abstractmethod
    def submit(self, spec: JobSpec, layout: RunLayout, run_id: str, env: dict[str, str],
               image: str | None = None) -> None:
        """Start `python -m jobs.run --spec <run>/spec.json` as job `run_id` with `env`.

        `image` is the pushed job image (`repo:tag`) when the target runs from an image
        (capabilities.runs_from_image); the others ship the code with the Ray job.
        """

    @abstractmethod
    def info(self, run_id: str) -> JobInfo: ...

    @abstractmethod
    def logs(self, run_id: str, follow: bool) -> Iterator[str]: ...

    @abstractmethod
    def stop(self, run_id: str) -> None: ...

    @abstractmethod
    def list(self) -> list[JobInfo]: ...

    @abstractmethod
    def dashboard_url(self, run_id: str | None = None) -> str: ...

    @contextmanager
    def dashboard(self, run_id: str) -> Iterator[str]:
        """A dashboard URL this machine can open while the block runs (targets whose
        dashboard sits inside a cluster forward a local port)."""
        yield self.dashboard_url(run_id)
