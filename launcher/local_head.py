"""The embedded local Ray head: find one, start one, stop the one launch started (by PID).

launch starts the head with Ray's token authentication on (RAY_AUTH_MODE=token, a token of
its own in LAUNCH_HOME, mode 0600) and every listener on 127.0.0.1. It never runs `ray stop`,
which kills every Ray process on the machine by name: it stops its own process group only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from launcher.errors import LaunchError
from launcher.private_files import read_private, write_private
from launcher.ray_dashboard import probe
from launcher.settings import launch_home

# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes every Ray listener bind the given 127.0.0.1.
HEAD_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
# Ray Train work a one-machine head has no use for; the caller's environment may turn it on.
HEAD_DEFAULTS = {
    # The preemption watcher (an actor per run, polling node drains): nothing drains here.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # The controller's and every worker's metrics, exported for a Prometheus that a head launch
    # starts does not have: without them a 10-step quickstart took a median 86 CPU-s, not 89.
    "RAY_TRAIN_METRICS_ENABLED": "0",
}


# What the head's processes, and so every job's workers, take from the caller's environment:
# what Ray, Python, the training stack and the hub read, not the whole shell (where secrets
# such as AWS keys live). A job's own variables reach it through its Ray runtime env.
PASSED_ON = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
             "TERM", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE",
             "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
             "http_proxy", "https_proxy", "no_proxy"}
PASSED_ON_PREFIXES = ("LC_", "XDG_", "PYTHON", "RAY_", "LAUNCH_", "CUDA_", "NVIDIA_", "NCCL_",
                      "GLOO_", "OMP_", "MKL_", "TORCH", "DS_", "HF_", "TRANSFORMERS_")


def passed_on(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` a head launch starts passes on to its processes."""
    return {name: value for name, value in environ.items()
            if name in PASSED_ON or name.startswith(PASSED_ON_PREFIXES)}


@dataclass
class HeadState:
    pgid: int
    address: str
    temp_dir: str
    token_path: str
    log_path: str


def state_path() -> Path:
    return launch_home() / "local-head.json"


def read_state() -> HeadState | None:
    try:
        return HeadState(**json.loads(state_path().read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def token_path() -> Path:
    # Not under the head's --temp-dir: Ray makes that folder 0777, where anyone could swap it.
    return launch_home() / "auth_token"


def start(address: str, num_cpus: int | None = None, gcs_port: int | None = None) -> HeadState:
    """Start a head whose dashboard serves `address` (a 127.0.0.1/localhost URL)."""
    parsed = urlparse(address)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise LaunchError(f"no Ray head answers at {address}; launch only starts heads on this "
                          "machine (use http://127.0.0.1:PORT)")
    home = launch_home()
    temp_dir = home / "ray"
    token = _ensure_token()
    log_path = home / "local-head.log"
    gcs_port = gcs_port or int(os.environ.get("LAUNCH_RAY_GCS_PORT", "6390"))
    ray_bin = Path(sys.executable).with_name("ray")
    command = [
        str(ray_bin), "start", "--head", f"--num-cpus={num_cpus or os.cpu_count() or 1}",
        "--node-ip-address=127.0.0.1", f"--port={gcs_port}", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={parsed.port or 8265}", "--include-dashboard=true",
        # Ray's fixed default (52365) would collide with any other Ray head on this machine,
        # leaving a head that answers but takes no job ("No available agent to submit job").
        f"--dashboard-agent-listen-port={_free_port()}",
        # Likewise Ray Client's 10001: a second head would share the first one's client server.
        f"--ray-client-server-port={_free_port()}",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]
    # RAY_ADDRESS: processes of this head (e.g. the placement-group cleaner Tune relies on
    # when ASHA stops a trial) find their own cluster even when other heads run here.
    env = {**HEAD_DEFAULTS, **passed_on(os.environ), **HEAD_ENV,
           "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_ADDRESS": f"127.0.0.1:{gcs_port}",
           # Ray's metrics listeners have fixed defaults (44217, 44227) and no flag.
           "AUTOSCALER_METRIC_PORT": str(_free_port()),
           "DASHBOARD_METRIC_PORT": str(_free_port())}
    # Jobs run `python -m jobs.run`: make `python` the interpreter launch runs in.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RAY_AUTH_TOKEN", None)
    with log_path.open("w") as log:
        # A new session makes the head's daemons one process group we can stop by its id.
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        code = process.wait(timeout=180)
    state = HeadState(pgid=process.pid, address=address, temp_dir=str(temp_dir),
                      token_path=str(token), log_path=str(log_path))
    if code != 0:
        _kill_group(state)
        raise LaunchError(f"could not start a local Ray head ({_last_line(log_path)}); "
                          f"see {log_path}")
    state_path().write_text(json.dumps(asdict(state), indent=2))
    headers = {"Authorization": f"Bearer {token.read_text().strip()}"}
    deadline = time.time() + 60
    while probe(address, headers) != 200:
        if time.time() > deadline:
            stop()
            raise LaunchError(f"the local Ray head did not answer at {address} within 60 s; "
                              f"see {log_path}")
        time.sleep(0.5)
    return state


def stop() -> bool:
    """Stop the head launch started; False when there is none."""
    state = read_state()
    if state is None:
        return False
    _kill_group(state)
    state_path().unlink(missing_ok=True)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_token() -> Path:
    path = token_path()
    if path.exists():
        read_private(path, "the Ray token")  # never a token someone else put there
    else:
        write_private(path, secrets.token_hex(32))
    return path


def _group_members(state: HeadState) -> list[int]:
    """PIDs in the head's process group, but only if they are really our Ray (PID reuse)."""
    import psutil

    members, ours = [], False
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(proc.pid) != state.pgid:
                continue
        except (ProcessLookupError, PermissionError):
            continue
        members.append(proc.pid)
        ours = ours or state.temp_dir in " ".join(proc.info["cmdline"] or [])
    return members if ours else []


def _kill_group(state: HeadState, grace_s: float = 5) -> None:
    if not _group_members(state):
        return
    os.killpg(state.pgid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline and _group_members(state):
        time.sleep(0.3)
    try:
        os.killpg(state.pgid, signal.SIGKILL)  # what ignored SIGTERM (gcs_server does)
    except ProcessLookupError:
        pass


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
