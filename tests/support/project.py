"""Where the project's files are, and the `launch` CLI as the tests run it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from launcher.spec.load import merge_overrides

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LAUNCH = [sys.executable, "-m", "launcher"]


def submitted_run_id(result: subprocess.CompletedProcess) -> str:
    """The run id `launch submit` printed."""
    match = re.search(r"^submitted (\S+)", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return match.group(1)


def submitted_results_uri(result: subprocess.CompletedProcess) -> str:
    """Where `launch submit` said the run's results go: a folder or an s3:// URI."""
    match = re.search(r"^  results:\s+(\S+)$", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return match.group(1)


def submitted_results(result: subprocess.CompletedProcess) -> Path:
    """The run's results folder `launch submit` printed."""
    return Path(submitted_results_uri(result))


def write_quickstart(path: Path, runs: Path | str, overrides: dict | None = None,
                     base: Path = EXAMPLES / "quickstart.yaml", method: dict | None = None) -> Path:
    """Write a job file: `base` (the quickstart) with its data found from anywhere, results
    under `runs`, and `overrides` merged in (nested dicts merge); `method` replaces the base's
    method section whole (a method's keys are its own)."""
    job = yaml.safe_load(base.read_text())
    job["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
    job["storage"]["uri"] = str(runs)
    merge_overrides(job, overrides or {})
    if method is not None:
        job["method"] = method
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path
