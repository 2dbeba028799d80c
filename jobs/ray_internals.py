"""The one place the job imports private Ray modules, and why.

Ray Tune trials drive a Ray Train run and should sit on the head node (the safe node Ray's
guide recommends for Train drivers), as Ray's own Train controller does. The resource that
pins a task there has no public name in Ray 2.60, so it comes from Ray's constants module;
the sweep integration tests fail if it moves.

A worker's failure reaches the driver as one of Ray Train's own wrappers, which have no public
name either: a failed or timed-out health check (the worker died or hung) or the exception the
job's code raised (with its traceback as text). jobs.failure tells them apart; the failure
tests fail if they move.
"""

from __future__ import annotations

from ray._common.constants import HEAD_NODE_RESOURCE_NAME  # noqa: F401 (re-exported)
from ray.train.v2._internal.exceptions import (  # noqa: F401 (re-exported)
    UserExceptionWithTraceback,
    WorkerHealthCheckFailedError,
    WorkerHealthCheckTimeoutError,
)
