"""Run a build or container tool, its output passed line by line to the caller's log."""

from __future__ import annotations

import subprocess
from collections.abc import Callable


def run_streaming(command: list[str], log: Callable[[str], None]) -> tuple[int, str]:
    """Run `command` (stderr merged into stdout); return its exit code and last non-blank
    line, which is where build tools say what went wrong."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace")
    last = "no output"
    for line in process.stdout:
        line = line.rstrip("\n")
        log(line)
        if line.strip():
            last = line.strip()
    return process.wait(), last
