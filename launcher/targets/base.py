"""The target interface every kind of cluster implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from launcher.layout import RunLayout
from launcher.spec.models import JobSpec

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class JobInfo:
    run_id: str
    state: str
    message: str
    start_time: float | None
    end_time: float | None
    run_dir: str | None


class Target(ABC):
    # True where the job runs from its pushed image (the spec needs an `image` section);
    # False where launch ships the code with the Ray job instead.
    runs_from_image: bool = False

    @abstractmethod
    def prepare(self) -> None:
        """Make the cluster reachable (start it where that is the target's job)."""

    @abstractmethod
    def submit(self, spec: JobSpec, layout: RunLayout, run_id: str, env: dict[str, str],
               image: str | None = None) -> None:
        """Start `python -m jobs.run --spec <run>/spec.json` as job `run_id` with `env`.

        `image` is the pushed job image (`repo:tag`) when the spec has an `image` section;
        targets that run from an image need it, the local target ships code without one.
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
