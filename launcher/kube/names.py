"""Names and labels of a run's Kubernetes objects, derived from its Ray job id alone.

A recorded run knows only its Ray job id (`RUN` or `RUN-attemptN`), so every object of it
must be found from that id: the RayJob's name is a pure function of it.
"""

from __future__ import annotations

import hashlib

from launcher.runs import split_ray_job_id

# KubeRay refuses RayJob names over 47 characters (it appends 6 to name the RayCluster, whose
# names must fit in a 63-character DNS label); names are DNS-1035 labels (start with a letter).
MAX_RAYJOB_NAME = 47
MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_JOB = "launch/job"
LABEL_RUN = "launch/run"
LABEL_ATTEMPT = "launch/attempt"
ANNOTATION_RAY_JOB_ID = "launch/ray-job-id"
ANNOTATION_RUN_DIR = "launch/run-dir"
ANNOTATION_GRACE = "launch/startup-grace-s"
SELECTOR = f"{MANAGED_BY}=launch"


def rayjob_name(ray_job_id: str) -> str:
    """The RayJob's name: the Ray job id itself when it fits, else a prefix + hash of it."""
    name = ray_job_id if ray_job_id[0].isalpha() else f"j{ray_job_id}"
    if len(name) <= MAX_RAYJOB_NAME:
        return name
    digest = hashlib.sha256(ray_job_id.encode()).hexdigest()[:8]
    return f"{name[:MAX_RAYJOB_NAME - 9].rstrip('-')}-{digest}"


def token_secret_name(ray_job_id: str) -> str:
    """The Secret holding the run's Ray auth token (key `auth_token`, as KubeRay expects)."""
    return f"{rayjob_name(ray_job_id)}-ray-token"


def labels(job_name: str, ray_job_id: str) -> dict[str, str]:
    """Labels of every object of a run (label values are at most 63 characters: run ids fit)."""
    run_id, attempt = split_ray_job_id(ray_job_id)
    return {MANAGED_BY: "launch", LABEL_JOB: job_name, LABEL_RUN: run_id,
            LABEL_ATTEMPT: str(attempt)}
