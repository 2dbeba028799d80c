"""Where launch keeps its client-side state: LAUNCH_HOME (default ~/.launch)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# The source tree launch runs from; the job's code (both packages) ships from here, as Ray
# py_modules to a local head or as the code layer of an image.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
JOB_PACKAGES = [SOURCE_ROOT / name for name in ("jobs", "launcher")]


def launch_home() -> Path:
    home = Path(os.environ.get("LAUNCH_HOME", "~/.launch")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def default_address() -> str:
    """The Ray dashboard address commands use when no spec or run says otherwise."""
    return os.environ.get("LAUNCH_RAY_ADDRESS", DEFAULT_ADDRESS)
