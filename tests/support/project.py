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
# `launch` in a process that says last on stderr whether anything imported Ray.
_REPORTS_RAY = ("import sys\nfrom launcher.cli import main\nsys.argv = ['launch', *sys.argv[1:]]\n"
                "try:\n    main()\nfinally:\n"
                "    print('imported ray' if 'ray' in sys.modules else 'no ray', file=sys.stderr)")


def launch_reporting_ray(*args, timeout: float = 600) -> tuple[subprocess.CompletedProcess, bool]:
    """Run `launch ARGS`: its result (the report taken off stderr) and whether it imported Ray
    (1.5 s of CPU on every command, and a client-only install has no Ray)."""
    result = subprocess.run([sys.executable, "-c", _REPORTS_RAY, *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    *stderr, report = result.stderr.splitlines() or [""]
    assert report in ("no ray", "imported ray"), result.stderr
    result.stderr = "".join(f"{line}\n" for line in stderr)
    return result, report == "imported ray"


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
