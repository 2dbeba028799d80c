"""What a RayJob and its pods say, in launch's terms: the run's state, and why it is stuck.

Reads API objects as the API returns them (plain dicts, camelCase), so recorded objects and
live ones go through the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from launcher.kube import names
from launcher.targets.base import JobInfo

# Container waiting reasons that do not fix themselves; past the grace period they fail a run.
STUCK = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
         "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError")
# Warning events that explain them (kubelet: Failed; scheduler: FailedScheduling). The
# kubelet's BackOff events only repeat "Back-off pulling image", which the pod says too.
EXPLAINING_EVENTS = ("Failed", "FailedScheduling", "ErrImageNeverPull", "InspectFailed")
BARE_ERROR = re.compile(r"^Error: \w+$")


@dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"pod {self.pod}: {self.reason}: {self.message}"


def pod_problem(pod: dict, events: list[dict], now: datetime,
                grace_s: float) -> PodProblem | None:
    """Why `pod` cannot run, once it has been stuck for `grace_s` seconds; else None.

    `events` are the namespace's events (any object); the pod's latest Warning event that
    explains the problem gives the message, as `kubectl describe pod` shows it.
    """
    name = pod["metadata"]["name"]
    status = pod.get("status", {})
    found = _unschedulable(status) or _stuck_container(status)
    if found is None:
        return None
    reason, since, fallback = found
    if since is None:
        since = _time(status.get("startTime") or pod["metadata"].get("creationTimestamp"))
    if since is not None and (now - since).total_seconds() < grace_s:
        return None
    return PodProblem(name, reason, _event_message(name, events) or fallback)


def _unschedulable(status: dict):
    for condition in status.get("conditions", []):
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return ("Unschedulable", _time(condition.get("lastTransitionTime")),
                    condition.get("message", ""))
    return None


def _stuck_container(status: dict):
    for container in status.get("initContainerStatuses", []) + status.get(
            "containerStatuses", []):
        waiting = container.get("state", {}).get("waiting") or {}
        if waiting.get("reason") not in STUCK:
            continue
        message = waiting.get("message", "")
        ended = container.get("lastState", {}).get("terminated")
        if ended:  # a crash loop: how the last run ended says more than the back-off
            message = (f"container {container['name']} exited with code "
                       f"{ended.get('exitCode')} ({ended.get('reason', 'Error')}), "
                       f"restarted {container.get('restartCount', 0)} times; its log has "
                       "the error")
        return waiting["reason"], None, message
    return None


def _event_message(pod_name: str, events: list[dict]) -> str | None:
    # The kubelet follows each failure with a bare "Error: <reason>" event: skip those.
    mine = [e for e in events if e.get("involvedObject", {}).get("name") == pod_name
            and e.get("type") == "Warning" and e.get("reason") in EXPLAINING_EVENTS
            and not BARE_ERROR.match(e.get("message", ""))]
    if not mine:
        return None
    latest = max(mine, key=lambda e: _event_time(e) or datetime.min.astimezone())
    return latest.get("message", "").strip() or None


def _event_time(event: dict) -> datetime | None:
    return _time(event.get("lastTimestamp") or event.get("eventTime")
                 or event.get("firstTimestamp") or event["metadata"].get("creationTimestamp"))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def job_info(rayjob: dict) -> JobInfo:
    """The run's state from its RayJob's status (KubeRay's JobDeploymentStatus + Ray's)."""
    status = rayjob.get("status", {})
    deployment, job = status.get("jobDeploymentStatus", ""), status.get("jobStatus", "")
    message = status.get("message", "")
    if deployment == "Complete":
        state = job or "SUCCEEDED"
    elif deployment in ("Failed", "ValidationFailed"):
        state = "FAILED"
        message = message or status.get("reason", "")
    elif deployment == "Suspended":
        state = "STOPPED"
    elif deployment == "Suspending":
        state = "STOPPING"
    elif deployment == "Running" and job:
        state = "PENDING" if job == "NEW" else job
    else:  # New, Initializing, Retrying, Waiting: the cluster is on its way
        state = "PENDING"
    start, end = _time(status.get("startTime")), _time(status.get("endTime"))
    annotations = rayjob["metadata"].get("annotations", {})
    return JobInfo(run_id=annotations.get(names.ANNOTATION_RAY_JOB_ID,
                                          rayjob["metadata"]["name"]),
                   state=state, message=message,
                   start_time=start.timestamp() if start else None,
                   end_time=end.timestamp() if end else None,
                   run_dir=annotations.get(names.ANNOTATION_RUN_DIR))
