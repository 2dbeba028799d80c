"""The ray target: a Ray cluster used through its Jobs API, as `ray job submit` uses it.

The embedded head (an address on loopback) is asked over the same HTTP API as a remote
cluster (launcher.ray_dashboard), so the local path exercises the remote one; the only local
part is starting the head when none answers (capabilities.starts_cluster). launch never starts
or stops a cluster at any other address.
"""

from __future__ import annotations

import re
import shlex
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from launcher import job_code, local_head, ray_auth, ray_dashboard
from launcher.contract import SPEC, RunLayout
from launcher.errors import LaunchError, TargetError
from launcher.spec.models import JobSpec
from launcher.spec.target import RayTargetSpec
from launcher.targets.base import TERMINAL_STATES, JobInfo, Target

if TYPE_CHECKING:
    from launcher.doctor import Check

# Ray's Jobs API answers HTTP 500 with this when its job agent did not answer within 10 s.
NO_AGENT = "No available agent to submit job"
AGENT_WAIT_S = 60
# `ray job stop` sends SIGTERM, then SIGKILL after 3 s unless the job's environment says
# otherwise: the driver needs longer to end its workers and store its log and status.
STOP_GRACE = {"RAY_JOB_STOP_WAIT_TIME_S": "30"}
# A Python traceback's last line, `ValueError: ...`: what the head answers an error with.
ERROR_LINE = re.compile(r"^[\w.]+(Error|Exception): ")
# How often a followed log is read: every second, and a second more per MB it holds.
LOG_POLL_S, LOG_POLL_MAX_S = 1.0, 10.0


class RayTarget(Target):
    def __init__(self, settings: RayTargetSpec):
        super().__init__(settings)
        self.address = settings.address

    @classmethod
    def at(cls, address: str) -> RayTarget:
        return cls(RayTargetSpec(address=address))

    def prepare(self) -> None:
        """Start the embedded head when none answers; refuse a cluster that cannot take the
        job: nothing answers, our token is refused, or it runs another Ray than this client
        (launch's job code is written for the Ray launch pins)."""
        code, head = ray_dashboard.head_version(self.address,
                                                ray_auth.headers_for(self.address))
        if code is None and self.capabilities.starts_cluster:
            local_head.start(self.address)  # from this environment: our own Ray
            return
        if code is None:
            raise TargetError(f"target.address: no Ray head answers at {self.address}; launch "
                              "starts heads only on this machine: check the address and that "
                              "the cluster's dashboard is reachable from here")
        if code in (401, 403):
            raise LaunchError(ray_auth.refusal(self.address, code))
        from launcher.doctor import installed_version

        ours = installed_version("ray")
        if head is not None and ours is not None and head != ours:
            raise TargetError(f"target.address: the Ray cluster at {self.address} runs Ray "
                              f"{head}, and launch's job code needs Ray {ours} (this client's): "
                              f"run the cluster on Ray {ours}, e.g. from the image `launch "
                              "build` makes")

    def checks(self, spec: JobSpec | None, image_ray_version: str | None) -> list[Check]:
        from launcher.doctor import cluster_room, ray_head

        head = ray_head(self.address, image_ray_version, self.capabilities.starts_cluster)
        return [head, cluster_room(self.address, spec)] if head.ok else [head]

    def submit(self, spec: JobSpec, layout: RunLayout, run_id: str, env: dict[str, str],
               image: str | None = None) -> None:
        headers = ray_auth.headers_for(self.address)
        package = self._upload_job_code(headers)
        request = {"entrypoint": f"python -m jobs.run --spec {shlex.quote(layout.uri(SPEC))}",
                   "submission_id": run_id,
                   "runtime_env": {"py_modules": [package], "env_vars": {**STOP_GRACE, **env}},
                   "metadata": {"launch_job": spec.name, "launch_run_dir": layout.root}}
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            status, body = ray_dashboard.submit_job(self.address, headers, request)
            if status == 200:
                ray_auth.keep_named(self.address)  # status, logs, stop of the run need it too
                return
            # A head that is starting, or busy with many submissions at once, answers this
            # before it has taken the job: submitting again is safe.
            if NO_AGENT not in body or time.monotonic() > deadline:
                raise LaunchError(self._refused("took no job", status, body))
            time.sleep(2)

    def _upload_job_code(self, headers: dict[str, str]) -> str:
        """The runtime-env URI of this launcher's job code, uploaded unless the head has it."""
        name, data = job_code.ray_package()
        if ray_dashboard.has_package(self.address, headers, name) != 200:
            status, body = ray_dashboard.put_package(self.address, headers, name, data)
            if status != 200:
                raise LaunchError(self._refused("did not store the job's code", status, body))
        return f"gcs://{name}"

    def _refused(self, what: str, status: int | None, body: str) -> str:
        """One line: the head's own reason, the innermost error of the traceback it answers
        with (the agent's, which the head wraps in its own)."""
        if status is None:
            return self._no_head()
        if status in (401, 403):
            return ray_auth.refusal(self.address, status)
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        errors = [line for line in lines if ERROR_LINE.match(line)]
        reason = (errors or lines or ["no reason given"])[-1]
        return f"the Ray head at {self.address} {what} (HTTP {status}): {reason}"

    def info(self, run_id: str) -> JobInfo:
        return _job_info(self._job(run_id, ""))

    def logs(self, run_id: str, follow: bool) -> Iterator[str]:
        shown = 0
        while True:
            # The state first: once it is terminal, the log read after it is the whole log.
            ended = not follow or self.info(run_id).state in TERMINAL_STATES
            text = self._job(run_id, "/logs")["logs"]
            if len(text) > shown:
                yield text[shown:]
                shown = len(text)
            if ended:
                return
            # Each read is the whole log: a long one is read less often.
            time.sleep(min(LOG_POLL_MAX_S, LOG_POLL_S + len(text) / 1e6))

    def stop(self, run_id: str) -> None:
        self._job(run_id, "/stop", "POST")

    def list(self) -> list[JobInfo]:
        jobs = self._jobs_api("", "GET")
        ours = [job for job in jobs if (job.get("metadata") or {}).get("launch_run_dir")]
        return sorted((_job_info(job) for job in ours), key=lambda job: job.start_time or 0)

    def dashboard_url(self, run_id: str | None = None) -> str:
        return f"{self.address}/#/jobs/{run_id}" if run_id else self.address

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
