"""This machine's copy of each run's Ray token (the cluster keeps it in the run's Secret).

The launcher may create Secrets but not read them, so it keeps the token it generated in
LAUNCH_HOME/kube-tokens/<namespace>/<rayjob> (mode 0600) to reach the run's Jobs API.
"""

from __future__ import annotations

import os
from pathlib import Path

from launcher.settings import launch_home


def _path(namespace: str, rayjob: str) -> Path:
    return launch_home() / "kube-tokens" / namespace / rayjob


def save(namespace: str, rayjob: str, token: str) -> None:
    path = _path(namespace, rayjob)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)


def load(namespace: str, rayjob: str) -> str | None:
    path = _path(namespace, rayjob)
    return path.read_text().strip() if path.is_file() else None
