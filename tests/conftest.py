"""Session fixtures: one real Ray head (started and stopped through launch itself), one tiny
model built by the example script, and helpers to write job files and run the CLI."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import deepspeed_ops
from tests.support.ports import free_port
from tests.support.project import EXAMPLES, LAUNCH, ROOT, write_quickstart
from tests.support.seaweedfs import SeaweedFS

# Tests talk only to servers on 127.0.0.1: no AWS SDK may probe cloud instance metadata, and
# the Hugging Face hub is a port where nothing listens (the Ray head and its jobs inherit it).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
# The venv's tools first, as in an activated venv and in the Ray workers: DeepSpeed JIT-builds
# its CPU ops with the first `ninja` on PATH, and the venv's (1.13) and Debian's (1.11) hash
# build commands differently, so every switch between the two rebuilt the ops (a minute each,
# four times a session).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# One torch thread per process (Ray gives each 1-CPU worker the same): the DeepSpeed op build
# and the image build run beside the unit tests, and two OpenMP threads sharing a core with them
# stall each other: the tiny model took 63 s to build with two threads, 34 s with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest_plugins = ["tests.support.image_fixtures", "tests.support.task_models"]


# The suite's time budget (CONTRIBUTING.md: Tests): a test over BUDGET_S carries
# @pytest.mark.long and its docstring says why it needs the time; the summary lists every test
# over it.
BUDGET_S = 120
_seconds: dict[str, float] = {}  # set-up (its fixtures' share), call and teardown
_marked_long: set[str] = set()


def pytest_collection_modifyitems(items):
    # Unit tests first: they leave a core mostly idle, which the DeepSpeed op build below uses.
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)


_op_build: list[tuple[subprocess.Popen, Path]] = []  # the build and its log's folder


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("integration") for item in session.items):
        folder = Path(tempfile.mkdtemp(prefix="launch-ops-"))
        _op_build.append((deepspeed_ops.start_building(folder / "build.log"), folder))


def pytest_sessionfinish(session):
    # Long done, unless the session ended early. Killing a build midway would leave torch's lock
    # file behind, and the next build would wait on it forever.
    for process, folder in _op_build:
        process.wait(timeout=600)
        shutil.rmtree(folder, ignore_errors=True)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
    if "long" in report.keywords:
        _marked_long.add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    over = sorted(((s, n) for n, s in _seconds.items() if s > BUDGET_S), reverse=True)
    if not over:
        return
    terminalreporter.section(f"tests over the {BUDGET_S} s budget")
    for seconds, nodeid in over:
        note = ("marked long" if nodeid in _marked_long
                else "NOT marked long: mark it and say why, or make it cheaper")
        terminalreporter.line(f"{seconds:6.0f} s  {nodeid}  ({note})")


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
def s3_store(tmp_path_factory):
    """One SeaweedFS per session, with a bucket and credentials exported as AWS_* variables."""
    root = tmp_path_factory.mktemp("seaweedfs")
    store = SeaweedFS(data_dir=root / "data", access_key=secrets.token_hex(8),
                      secret_key=secrets.token_hex(16))
    store.data_dir.mkdir()
    store.start()
    store.client().create_bucket(Bucket=store.bucket)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=store.access_key, AWS_SECRET_ACCESS_KEY=store.secret_key)
    yield store
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    store.stop()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The quickstart's tiny GPT-2, built by the same script users run (shorter pretraining)."""
    out = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    subprocess.run([sys.executable, str(EXAMPLES / "build_tiny_model.py"), "--out", str(out),
                    "--pretrain-steps", "100"], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture
def write_job(tmp_path):
    """Write a job file: the quickstart with `overrides` merged in (nested dicts merge) and
    `method` replacing its method section."""

    def write(overrides: dict | None = None, base: Path = EXAMPLES / "quickstart.yaml",
              name: str = "job.yaml", method: dict | None = None) -> Path:
        return write_quickstart(tmp_path / name, tmp_path / "runs", overrides, base, method)

    return write


@pytest.fixture(scope="session")
def cli():
    """Run the real `launch` CLI in a subprocess, as a user would."""

    def run(*args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*LAUNCH, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})

    return run
