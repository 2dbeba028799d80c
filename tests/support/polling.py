"""Waiting on a run from outside it, as a user watching its files would."""

from __future__ import annotations

import time


def wait_for(condition, what: str, explain, timeout_s: float = 300) -> None:
    """Poll `condition` until it holds; past `timeout_s`, fail with `explain()` (say, the log)."""
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}:\n{explain()}"
        time.sleep(0.5)
