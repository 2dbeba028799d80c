"""Hosts of their own on one machine: two network namespaces joined by a veth pair
(10.200.0.1 ↔ 10.200.0.2, addresses that exist only inside them), and a SeaweedFS in the
first. The host namespace has no route to 10.200.0.0/24: every client runs inside
(`ip netns exec`), and nothing talks to any other address (../shared/ENVIRONMENT.md)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .seaweedfs import weed_command, weed_ports

HEAD_IP, WORKER_IP = "10.200.0.1", "10.200.0.2"
# Nothing outside the namespaces is reachable from inside them: a proxy set for the host
# (NO_PROXY usually lists only loopback) would swallow every request to 10.200.0.x.
PROXY_VARIABLES = [case(f"{name}_proxy") for name in ("http", "https", "all", "no", "grpc")
                   for case in (str.lower, str.upper)]


class Namespaces:
    """Two network namespaces joined by a veth pair named eth0 on both sides."""

    def __init__(self):
        tag = f"lt{os.getpid() % 100000}"
        self.head, self.worker = f"{tag}a", f"{tag}b"

    @classmethod
    def made_or_skip(cls) -> Namespaces:
        """The pair, made; the test skips, saying why, where this machine cannot make them."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            pytest.skip("two hosts need root and iproute2 to make network namespaces")
        namespaces = cls()
        try:
            namespaces.create()
        except subprocess.CalledProcessError as err:
            namespaces.destroy()
            pytest.skip(f"network namespaces are not available here: {err.stderr.decode()}")
        return namespaces

    def create(self) -> None:
        link = ["ip", "link", "add", f"{self.head}v", "type", "veth", "peer", "name",
                f"{self.worker}v"]
        for command in (["ip", "netns", "add", self.head], ["ip", "netns", "add", self.worker],
                        link):
            subprocess.run(command, check=True, capture_output=True)
        for ns, address in ((self.head, HEAD_IP), (self.worker, WORKER_IP)):
            for command in (["ip", "link", "set", f"{ns}v", "netns", ns],
                            ["ip", "-n", ns, "link", "set", f"{ns}v", "name", "eth0"],
                            ["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"],
                            ["ip", "-n", ns, "link", "set", "eth0", "up"],
                            ["ip", "-n", ns, "link", "set", "lo", "up"]):
                subprocess.run(command, check=True, capture_output=True)

    def destroy(self) -> None:
        """Kill what runs inside (by PID), then delete the namespaces."""
        for ns in (self.head, self.worker):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    @staticmethod
    def prefix(ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]


def inside_environment(**extra: str) -> dict[str, str]:
    """This process's environment without proxies and Ray addresses, plus `extra`."""
    env = {**os.environ, **extra}
    for name in ("RAY_ADDRESS", "LAUNCH_RAY_ADDRESS", *PROXY_VARIABLES):
        env.pop(name, None)
    return env


def start_store(ns: str, folder: Path, bucket: str, env: dict[str, str]) -> str:
    """SeaweedFS inside `ns` on HEAD_IP (killed with the namespace), with `bucket` taking
    writes, for the credentials in `env`; its endpoint."""
    (folder / "weed").mkdir()
    # Ports of its own: weed's unix sockets in /tmp, named after the ports, are shared with
    # the session's store outside the namespace (with the same ports, CI's filer here wrote
    # to that store's volumes and no write ever succeeded).
    ports = weed_ports()
    endpoint = f"http://{HEAD_IP}:{ports['s3.port']}"
    weed = weed_command(folder / "weed", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                        HEAD_IP, ports)
    subprocess.Popen([*Namespaces.prefix(ns), *weed], stdout=(folder / "weed.log").open("w"),
                     stderr=subprocess.STDOUT, env=env)
    # Ready means an object can be written: SeaweedFS takes buckets before its volume server
    # can store anything (PUTs answer InternalError until then).
    make_bucket = textwrap.dedent(f"""
        import boto3, time
        from botocore.config import Config
        s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',
                          config=Config(connect_timeout=2, read_timeout=10,
                                        retries={{'max_attempts': 1}}))
        deadline, error = time.time() + 150, None
        while time.time() < deadline:
            try:
                if '{bucket}' not in [b['Name'] for b in s3.list_buckets()['Buckets']]:
                    s3.create_bucket(Bucket='{bucket}')
                s3.put_object(Bucket='{bucket}', Key='ready', Body=b'ready')
                s3.delete_object(Bucket='{bucket}', Key='ready')
                break
            except Exception as err:
                error = err
                time.sleep(0.5)
        else:
            raise SystemExit(f'never took a write in 150 s; last error: {{error!r}}')
        """)
    ready = subprocess.run([*Namespaces.prefix(ns), sys.executable, "-c", make_bucket], env=env,
                           capture_output=True, text=True, timeout=180)
    if ready.returncode != 0:
        log = (folder / "weed.log").read_text(errors="replace").splitlines()
        free_gb = shutil.disk_usage(folder).free / 2**30
        pytest.fail(f"SeaweedFS in namespace {ns}: {ready.stderr.strip()[-800:]}\n"
                    f"free disk under {folder}: {free_gb:.1f} GiB; weed.log starts:\n"
                    + "\n".join(log[:15]) + "\n[...] and ends:\n" + "\n".join(log[-15:]))
    return endpoint


def run_inside(ns: str, code: str, env: dict[str, str]) -> str:
    """Run Python `code` in `ns` with this interpreter; its stdout."""
    done = subprocess.run([*Namespaces.prefix(ns), sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
