"""Where launch keeps its client-side state: LAUNCH_HOME (default ~/.launch)."""

from __future__ import annotations

import os
from pathlib import Path

# The source tree launch runs from; the job's code (both packages) ships from here, as Ray
# py_modules to a local head or as the code layer of an image.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
JOB_PACKAGES = [SOURCE_ROOT / name for name in ("jobs", "launcher")]


def launch_home() -> Path:
    """LAUNCH_HOME, made private (0700) when launch creates it: it holds the local head's
    token, run records and storage credentials."""
    home = Path(os.environ.get("LAUNCH_HOME", "~/.launch")).expanduser()
    if not home.is_dir():
        home.parent.mkdir(parents=True, exist_ok=True)
        home.mkdir(mode=0o700, exist_ok=True)
    return home

