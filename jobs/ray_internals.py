"""The one place the job imports a private Ray module, and why.

Ray Tune trials drive a Ray Train run and should sit on the head node (the safe node Ray's
guide recommends for Train drivers), as Ray's own Train controller does. The resource that
pins a task there has no public name in Ray 2.60, so it comes from Ray's constants module;
the sweep integration tests fail if it moves.
"""

from __future__ import annotations

from ray._common.constants import HEAD_NODE_RESOURCE_NAME  # noqa: F401 (re-exported)
