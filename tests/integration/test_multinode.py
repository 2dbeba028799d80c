"""A real two-node Ray cluster on one machine: the head in one network namespace, a worker
node in another, joined by a veth pair (10.200.0.1 ↔ 10.200.0.2, addresses that exist only
inside these namespaces). launch submits from the head's namespace; the two Ray Train workers
land on different nodes (STRICT_SPREAD), train under ZeRO-3 over gloo across the link, and
checkpoint into a SeaweedFS that also lives in the head's namespace.

The host namespace has no route to 10.200.0.0/24, so every client runs inside the
namespaces (`ip netns exec`); nothing here talks to any other address.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml

from support.exported_models import assert_adapter_generates
from support.project import EXAMPLES, LAUNCH, ROOT, submitted_run_id
from support.seaweedfs import weed_command, weed_ports

pytestmark = pytest.mark.integration

HEAD_IP, WORKER_IP = "10.200.0.1", "10.200.0.2"
BUCKET = "multinode"
PROXY_VARIABLES = [case(f"{name}_proxy") for name in ("http", "https", "all", "no", "grpc")
                   for case in (str.lower, str.upper)]


class Namespaces:
    """Two network namespaces joined by a veth pair named eth0 on both sides."""

    def __init__(self):
        tag = f"lt{os.getpid() % 100000}"
        self.head, self.worker = f"{tag}a", f"{tag}b"

    def create(self) -> None:
        run = ["ip", "link", "add", f"{self.head}v", "type", "veth", "peer", "name",
               f"{self.worker}v"]
        for command in (["ip", "netns", "add", self.head], ["ip", "netns", "add", self.worker],
                        run):
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


@pytest.fixture(scope="module")
def cluster(launch_home):
    """SeaweedFS and a Ray head in one namespace, a Ray worker node in the other."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the two-node test needs root and iproute2 to make network namespaces")
    namespaces = Namespaces()
    try:
        namespaces.create()
    except subprocess.CalledProcessError as err:
        namespaces.destroy()
        pytest.skip(f"network namespaces are not available here: {err.stderr.decode().strip()}")
    folder = Path(tempfile.mkdtemp(prefix="mn-", dir="/tmp"))  # short: Ray's socket paths
    token = folder / "token"
    token.write_text(secrets.token_hex(16))
    token.chmod(0o600)
    access, secret = secrets.token_hex(8), secrets.token_hex(16)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "GLOO_SOCKET_IFNAME": "eth0",  # the link between the nodes, on both sides
           "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    # Nothing outside the namespaces is reachable from inside them: a proxy set for the host
    # (NO_PROXY usually lists only loopback) would swallow every request to 10.200.0.x.
    for name in ("RAY_ADDRESS", "LAUNCH_RAY_ADDRESS", *PROXY_VARIABLES):
        env.pop(name, None)
    head, worker = Namespaces.prefix(namespaces.head), Namespaces.prefix(namespaces.worker)
    try:
        (folder / "weed").mkdir()
        # Ports of its own: weed's unix sockets in /tmp, named after the ports, are shared with
        # the session's store outside the namespace (with the same ports, CI's filer here wrote
        # to that store's volumes and no write ever succeeded).
        ports = weed_ports()
        endpoint = f"http://{HEAD_IP}:{ports['s3.port']}"
        weed = weed_command(folder / "weed", access, secret, HEAD_IP, ports)
        subprocess.Popen([*head, *weed],
                         stdout=(folder / "weed.log").open("w"), stderr=subprocess.STDOUT,
                         env=env)
        ray = str(Path(sys.executable).with_name("ray"))
        subprocess.run([*head, ray, "start", "--head", "--num-cpus=1",
                        f"--node-ip-address={HEAD_IP}", "--port=6390",
                        f"--dashboard-host={HEAD_IP}", "--dashboard-port=8265",
                        "--include-dashboard=true", f"--temp-dir={folder / 'ray-a'}",
                        "--disable-usage-stats"], env=env, check=True, capture_output=True,
                       timeout=120)
        subprocess.run([*worker, ray, "start", f"--address={HEAD_IP}:6390", "--num-cpus=1",
                        f"--node-ip-address={WORKER_IP}", f"--temp-dir={folder / 'ray-b'}",
                        "--disable-usage-stats"], env=env, check=True, capture_output=True,
                       timeout=120)
        # Ready means an object can be written: SeaweedFS takes buckets before its volume
        # server can store anything (PUTs answer InternalError until then).
        make_bucket = textwrap.dedent(f"""
            import boto3, time
            from botocore.config import Config
            s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',
                              config=Config(connect_timeout=2, read_timeout=10,
                                            retries={{'max_attempts': 1}}))
            deadline, error = time.time() + 150, None
            while time.time() < deadline:
                try:
                    if '{BUCKET}' not in [b['Name'] for b in s3.list_buckets()['Buckets']]:
                        s3.create_bucket(Bucket='{BUCKET}')
                    s3.put_object(Bucket='{BUCKET}', Key='ready', Body=b'ready')
                    s3.delete_object(Bucket='{BUCKET}', Key='ready')
                    break
                except Exception as err:
                    error = err
                    time.sleep(0.5)
            else:
                raise SystemExit(f'never took a write in 150 s; last error: {{error!r}}')
            """)
        ready = subprocess.run([*head, sys.executable, "-c", make_bucket], env=env,
                               capture_output=True, text=True, timeout=180)
        if ready.returncode != 0:
            log = (folder / "weed.log").read_text(errors="replace").splitlines()
            free_gb = shutil.disk_usage(folder).free / 2**30
            pytest.fail(f"SeaweedFS in the head namespace: {ready.stderr.strip()[-800:]}\n"
                        f"free disk under {folder}: {free_gb:.1f} GiB; weed.log starts:\n"
                        + "\n".join(log[:15]) + "\n[...] and ends:\n" + "\n".join(log[-15:]))
        yield namespaces, env, endpoint
    finally:
        namespaces.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def test_two_nodes_train_zero3_with_checkpoints_in_s3(cluster, tiny_model, tmp_path):
    namespaces, env, endpoint = cluster
    head = Namespaces.prefix(namespaces.head)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({
        "name": "multinode", "model": {"name_or_path": str(tiny_model)},
        "data": {"path": str(EXAMPLES / "data" / "debian_describe.jsonl"), "max_length": 64},
        "training": {"max_steps": 10, "save_steps": 5, "logging_steps": 5,
                     "batch_size_per_worker": 4},
        "scale": {"num_workers": 2, "num_nodes": 2, "deepspeed": {"stage": 3}},
        "storage": {"uri": f"s3://{BUCKET}/runs", "endpoint_url": endpoint},
        # The namespaces share this machine's filesystem, as NFS-mounted nodes would.
        "target": {"address": f"http://{HEAD_IP}:8265", "shared_filesystem": True}}))
    # --address: the token of RAY_AUTH_TOKEN_PATH goes only to an address the user named.
    result = subprocess.run([*head, *LAUNCH, "submit", str(job), "--address",
                             f"http://{HEAD_IP}:8265", "--follow"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Ray Train's own placement report: one worker on each node.
    assert f"(ip={HEAD_IP}, " in result.stdout and f"(ip={WORKER_IP}, " in result.stdout
    assert "node_rank=1" in result.stdout

    run_id = submitted_run_id(result)
    # The store answers only inside the namespaces: list the run there, and fetch its model.
    model = tmp_path / "model"
    listing = (f"import boto3, json, os\nc = boto3.client('s3', endpoint_url='{endpoint}',"
               f" region_name='us-east-1')\np = c.get_paginator('list_objects_v2')\n"
               f"keys = [o['Key'] for page in p.paginate(Bucket='{BUCKET}', "
               f"Prefix='runs/multinode/{run_id}/') for o in page.get('Contents', [])]\n"
               f"for key in keys:\n"
               f"    if '/model/' in key:\n"
               f"        path = os.path.join('{model}', key.split('/model/', 1)[1])\n"
               f"        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
               f"        c.download_file('{BUCKET}', key, path)\n"
               f"print(json.dumps(keys))\n")
    keys = json.loads(subprocess.run([*head, sys.executable, "-c", listing], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    checkpoints = {key.split("/")[4] for key in keys  # folders, not Ray's snapshot file
                   if "/checkpoints/checkpoint_" in key and key.count("/") > 4}
    assert len(checkpoints) == 2, keys  # steps 5 and 10
    # ZeRO-3 keeps each rank's partition: both nodes' shards are in every checkpoint.
    for name in checkpoints:
        shards = [k for k in keys if f"/{name}/" in k and "optim_states" in k]
        assert len(shards) == 2, shards
    assert any(key.endswith("/summary.json") for key in keys)
    # ZeRO-3 partitions the LoRA weights across the nodes: the adapter loads only if they were
    # gathered at save time.
    assert_adapter_generates(model)


def test_two_nodes_with_a_local_results_folder_are_refused_at_submit(cluster, tiny_model,
                                                                    tmp_path):
    """Each node would keep its own checkpoints: refused before anything is submitted."""
    namespaces, env, _ = cluster
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({
        "name": "multinode-local", "model": {"name_or_path": str(tiny_model)},
        "data": {"path": str(EXAMPLES / "data" / "debian_describe.jsonl")},
        "scale": {"num_workers": 2, "num_nodes": 2}, "storage": {"uri": str(tmp_path / "runs")},
        "target": {"address": f"http://{HEAD_IP}:8265"}}))
    result = subprocess.run([*Namespaces.prefix(namespaces.head), *LAUNCH, "submit", str(job)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "multi-node training needs shared storage" in result.stderr
    assert not (tmp_path / "runs").exists()
