"""This machine's copy of each run's Ray token (the cluster keeps it in the run's Secret).

The launcher may create Secrets but not read them, so it keeps the token it generated in
LAUNCH_HOME/kube-tokens/<namespace>/<rayjob> (mode 0600) to reach the run's Jobs API.
"""

from __future__ import annotations

from pathlib import Path

from launcher.private_files import write_private
from launcher.settings import launch_home


def _path(namespace: str, rayjob: str) -> Path:
    return launch_home() / "kube-tokens" / namespace / rayjob


def save(namespace: str, rayjob: str, token: str) -> None:
    write_private(_path(namespace, rayjob), token)


def load(namespace: str, rayjob: str) -> str | None:
    path = _path(namespace, rayjob)
    return path.read_text().strip() if path.is_file() else None
