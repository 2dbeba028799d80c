"""The ray target: a Ray cluster used through its Jobs API, as `ray job submit` uses it.

The embedded head (an address on loopback) goes through `JobSubmissionClient` exactly as a
remote cluster does, so the local path exercises the remote one; the only local part is
starting the head when none answers (capabilities.starts_cluster). launch never starts or stops
a cluster at any other address.
"""

from __future__ import annotations

import asyncio
import shlex
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from launcher import local_head, ray_auth, ray_dashboard
from launcher.contract import SPEC, RunLayout
from launcher.errors import LaunchError
from launcher.settings import JOB_PACKAGES
from launcher.spec.models import JobSpec
from launcher.spec.target import RayTargetSpec
from launcher.targets.base import JobInfo, Target

if TYPE_CHECKING:
    from launcher.doctor import Check

# Ray's Jobs API answers HTTP 500 with this when its job agent did not answer within 10 s.
NO_AGENT = "No available agent to submit job"
AGENT_WAIT_S = 60
# `ray job stop` sends SIGTERM, then SIGKILL after 3 s unless the job's environment says
# otherwise: the driver needs longer to end its workers and store its log and status.
STOP_GRACE = {"RAY_JOB_STOP_WAIT_TIME_S": "30"}


class RayTarget(Target):
    def __init__(self, settings: RayTargetSpec):
        super().__init__(settings)
        self.address = settings.address
        self._client = None

    @classmethod
    def at(cls, address: str) -> RayTarget:
        return cls(RayTargetSpec(address=address))

    def prepare(self) -> None:
        code = ray_dashboard.probe(self.address, ray_auth.headers_for(self.address))
        if code is None and self.capabilities.starts_cluster:
            local_head.start(self.address)
        elif code is None:
            raise LaunchError(f"no Ray head answers at {self.address}; launch starts heads "
                              "only on this machine: check the address and that the cluster's "
                              "dashboard is reachable from here")
        elif code in (401, 403):
            raise LaunchError(ray_auth.refusal(self.address, code))

    def checks(self, spec: JobSpec | None, image_ray_version: str | None) -> list[Check]:
        from launcher.doctor import cluster_room, ray_head

        head = ray_head(self.address, image_ray_version, self.capabilities.starts_cluster)
        return [head, cluster_room(self.address, spec)] if head.ok else [head]

    def submit(self, spec: JobSpec, layout: RunLayout, run_id: str, env: dict[str, str],
               image: str | None = None) -> None:
        spec_uri = layout.uri(SPEC)
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                self.client().submit_job(
                    entrypoint=f"python -m jobs.run --spec {shlex.quote(spec_uri)}",
                    submission_id=run_id,
                    # Ship this launcher's own `jobs` code (and the spec models it imports).
                    runtime_env={"py_modules": [str(p) for p in JOB_PACKAGES],
                                 "excludes": ["__pycache__", "*.pyc"],
                                 "env_vars": {**STOP_GRACE, **env}},
                    metadata={"launch_job": spec.name, "launch_run_dir": layout.root},
                )
                ray_auth.keep_named(self.address)  # status, logs, stop of the run need it too
                return
            except RuntimeError as err:
                # A head that is starting, or busy with many submissions at once, answers
                # this before it has taken the job: submitting again is safe.
                if NO_AGENT not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def info(self, run_id: str) -> JobInfo:
        return _job_info(self._job(run_id, ""))

    def logs(self, run_id: str, follow: bool) -> Iterator[str]:
        if not follow:
            yield self._job(run_id, "/logs")["logs"]
            return
        self._job(run_id, "")  # a clear error for an unknown id
        loop = asyncio.new_event_loop()
        stream = self.client().tail_job_logs(run_id)
        try:
            while True:
                try:
                    yield loop.run_until_complete(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(stream.aclose())
            loop.close()

    def stop(self, run_id: str) -> None:
        self._job(run_id, "/stop", "POST")

    def list(self) -> list[JobInfo]:
        jobs = self._jobs_api("", "GET")
        ours = [job for job in jobs if (job.get("metadata") or {}).get("launch_run_dir")]
        return sorted((_job_info(job) for job in ours), key=lambda job: job.start_time or 0)

    def dashboard_url(self, run_id: str | None = None) -> str:
        return f"{self.address}/#/jobs/{run_id}" if run_id else self.address

    def client(self):
        if self._client is None:
            import logging

            from ray.exceptions import AuthenticationError
            from ray.job_submission import JobSubmissionClient

            # Ray's client logs every package upload at INFO; launch prints what matters.
            for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
                logging.getLogger(name).setLevel(logging.WARNING)

            try:
                self._client = JobSubmissionClient(self.address,
                                                   headers=ray_auth.headers_for(self.address))
            except ConnectionError:
                raise LaunchError(self._no_head()) from None
            except AuthenticationError:
                raise LaunchError(ray_auth.refusal(self.address, 401)) from None
        return self._client

    def _job(self, run_id: str, path: str, method: str = "GET"):
        """A Jobs API call about one job; LaunchError when the head has no such job."""
        job = self._jobs_api(f"{urllib.parse.quote(run_id, safe='')}{path}", method)
        if job is None:
            raise LaunchError(f"the Ray head at {self.address} has no job `{run_id}`")
        return job

    def _jobs_api(self, path: str, method: str):
        """The JSON body of a Jobs API call (None for 404); LaunchError when the head does
        not answer or refuses."""
        status, body = ray_dashboard.jobs_api(self.address, ray_auth.headers_for(self.address),
                                              path, method)
        if status is None:
            raise LaunchError(self._no_head())
        if status in (401, 403):
            raise LaunchError(ray_auth.refusal(self.address, status))
        if status == 404:
            return None
        if body is None:
            raise LaunchError(f"the Ray head at {self.address} answered the Jobs API call "
                              f"{method} /api/jobs/{path} with HTTP {status}")
        return body

    def _no_head(self) -> str:
        hint = ("start one with `launch local up` or pass --address"
                if self.capabilities.starts_cluster else "is the address right?")
        return f"no Ray head answers at {self.address}; {hint}"


def _job_info(job: dict) -> JobInfo:
    """A job as the Jobs API describes it (Ray's JobDetails, times in milliseconds)."""
    def seconds(ms):
        return ms / 1000 if ms else None

    return JobInfo(run_id=job["submission_id"], state=job["status"],
                   message=job.get("message") or "", start_time=seconds(job.get("start_time")),
                   end_time=seconds(job.get("end_time")),
                   run_dir=(job.get("metadata") or {}).get("launch_run_dir"))
