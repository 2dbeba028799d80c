"""Where launch keeps its client-side state: LAUNCH_HOME (default ~/.launch)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def launch_home() -> Path:
    home = Path(os.environ.get("LAUNCH_HOME", "~/.launch")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def default_address() -> str:
    """The Ray dashboard address commands use when no spec or run says otherwise."""
    return os.environ.get("LAUNCH_RAY_ADDRESS", DEFAULT_ADDRESS)
