"""Session fixtures: one real Ray head (started and stopped through launch itself), one tiny
model built by the example script, and helpers to write job files and run the CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LAUNCH = [sys.executable, "-m", "launcher"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def launch_home():
    """A private LAUNCH_HOME for the session; short, since Ray's socket paths live under it."""
    home = Path(tempfile.mkdtemp(prefix="lh-", dir="/tmp"))
    old = os.environ.get("LAUNCH_HOME")
    os.environ["LAUNCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LAUNCH_HOME", None)
    else:
        os.environ["LAUNCH_HOME"] = old
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head(launch_home):
    """The session's Ray head, on free ports, with token auth; stopped by PID at the end."""
    from launcher import local_head

    address = f"http://127.0.0.1:{free_port()}"
    os.environ["LAUNCH_RAY_ADDRESS"] = address
    state = local_head.start(address, num_cpus=2, gcs_port=free_port())
    yield state
    local_head.stop()
    os.environ.pop("LAUNCH_RAY_ADDRESS", None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The quickstart's tiny GPT-2, built by the same script users run (shorter pretraining)."""
    out = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    subprocess.run([sys.executable, str(EXAMPLES / "build_tiny_model.py"), "--out", str(out),
                    "--pretrain-steps", "100"], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture
def write_job(tmp_path):
    """Write a job file: the quickstart with `overrides` merged in (nested dicts merge)."""

    def write(overrides: dict | None = None, base: Path = EXAMPLES / "quickstart.yaml",
              name: str = "job.yaml") -> Path:
        job = yaml.safe_load(base.read_text())
        job["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
        job["storage"]["uri"] = str(tmp_path / "runs")
        _merge(job, overrides or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(job, sort_keys=False))
        return path

    return write


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.fixture(scope="session")
def cli():
    """Run the real `launch` CLI in a subprocess, as a user would."""

    def run(*args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*LAUNCH, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})

    return run
