"""Where the project's files are, and the `launch` CLI as the tests run it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LAUNCH = [sys.executable, "-m", "launcher"]


def submitted_run_id(result: subprocess.CompletedProcess) -> str:
    """The run id `launch submit` printed."""
    match = re.search(r"^submitted (\S+)", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return match.group(1)


def submitted_results(result: subprocess.CompletedProcess) -> Path:
    """The run's results folder `launch submit` printed."""
    match = re.search(r"^  results:\s+(\S+)$", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return Path(match.group(1))
