"""`launch local up | down`: a head with token auth on 127.0.0.1, stopped by its process group."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from launcher.ray_dashboard import probe
from tests.support.ports import free_port

pytestmark = pytest.mark.integration
SECRET = "caller-secret-0123456789"


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def test_local_up_requires_a_token_and_down_stops_every_process(cli):
    home = Path(tempfile.mkdtemp(prefix="lh-", dir="/tmp"))
    address = f"http://127.0.0.1:{free_port()}"
    env = {"LAUNCH_HOME": str(home), "LAUNCH_RAY_GCS_PORT": str(free_port()),
           "AWS_SECRET_ACCESS_KEY": SECRET, "MY_SERVICE_PASSWORD": SECRET, "HF_HOME": str(home)}

    try:
        _up_then_down(cli, home, address, env)
    finally:
        cli("local", "down", env=env, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def _up_then_down(cli, home: Path, address: str, env: dict) -> None:
    up = cli("local", "up", "--address", address, "-o", "json", env=env, timeout=240)
    assert up.returncode == 0, up.stderr
    state = json.loads((home / "local-head.json").read_text())
    assert json.loads(up.stdout) == {"address": address, "started": True,
                                     "pgid": state["pgid"], "token_path": state["token_path"]}
    token = Path(state["token_path"]).read_text().strip()
    assert Path(state["token_path"]).stat().st_mode & 0o777 == 0o600
    assert probe(address, {}) == 401  # token authentication is on: no token, no access
    assert probe(address, {"Authorization": f"Bearer {token}"}) == 200
    members = _group(state["pgid"])
    assert len(members) >= 3  # gcs_server, raylet, dashboard, ...
    # The caller's secrets stay out of the head. Workers inherit the raylet's environment, and
    # what the training stack reads (HF_HOME here) gets through to it.
    environs = {" ".join(member.cmdline()): member.environ() for member in members}
    assert not [cmd for cmd, environ in environs.items() if SECRET in environ.values()]
    [raylet] = [environ for cmd, environ in environs.items() if "/raylet " in cmd]
    assert raylet["HF_HOME"] == str(home) and "AWS_SECRET_ACCESS_KEY" not in raylet
    # Every listener on a port of its own, on 127.0.0.1: none on Ray's fixed defaults, which
    # a second head on this machine would share (Ray Client's 10001, the agent's 52365, the
    # autoscaler's and the dashboard's metrics, 44217 and 44227).
    listening = [c.laddr for p in members for c in p.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(_loopback(addr.ip) for addr in listening), listening
    assert not {10001, 52365, 44217, 44227} & {addr.port for addr in listening}, listening

    again = cli("local", "up", "--address", address, env=env)
    assert "already answers" in again.stdout

    down = cli("local", "down", env=env, timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout
    time.sleep(0.5)
    assert [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert probe(address, {}) is None
    assert not (home / "local-head.json").exists()
    assert "no Ray head started by launch" in cli("local", "down", env=env).stdout
    assert json.loads(cli("local", "down", "-o", "json", env=env).stdout) == {"stopped": False}
