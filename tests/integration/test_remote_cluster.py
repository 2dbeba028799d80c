"""A Ray cluster that shares nothing with the client, as a user's cluster or KubeRay's pods.

Two hosts of their own (network namespaces, tests/support/namespaces.py): in the first a
SeaweedFS and a Ray head, in the second a Ray worker node. Head and worker run in podman
containers of the job image `launch build` made (tests/support/image_fixtures.py): their own
root filesystem and Python, the training stack inside. The client is a venv with launch's
base install only (no torch), run inside the first namespace. The model, the data and the
results all live on S3: nothing the containers read comes from the client's disk, and the
client's folders do not exist inside them. The two Ray Train workers land on different nodes
(STRICT_SPREAD) and train under ZeRO-3 over gloo across the link.

Runs after the image build, with the image tests (image_fixtures orders them last).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests.support.exported_models import assert_adapter_generates
from tests.support.namespaces import (
    HEAD_IP,
    WORKER_IP,
    Namespaces,
    inside_environment,
    run_inside,
    start_store,
)
from tests.support.project import EXAMPLES, ROOT, submitted_run_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

BUCKET = "remote"
DASHBOARD = f"http://{HEAD_IP}:8265"
TOKEN_INSIDE = "/run/launch/ray-token"  # where the containers see the cluster's token


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Path:
    """A venv with `pip install -e .` only, the install a laptop needs for a remote cluster
    (made by uv from the packages already cached on this machine)."""
    venv = tmp_path_factory.mktemp("client") / "venv"
    uv = str(Path(sys.executable).with_name("uv"))
    for command in ([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                    [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                     "-e", str(ROOT)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    no_torch = subprocess.run([venv / "bin" / "python", "-c", "import torch"],
                              capture_output=True)
    assert no_torch.returncode != 0, "the client venv has torch: not a base install"
    return venv


def container(name: str, ns: str, image: str, token: Path, *ray_start: str) -> list[str]:
    """`podman run` of a Ray node in the job image, on the namespace's network. The nodes'
    own S3 credentials (launch sends a cluster elsewhere none) come from podman's environment,
    named here, not written on its command line."""
    settings = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": TOKEN_INSIDE,
                "GLOO_SOCKET_IFNAME": "eth0"}  # the link between the nodes, on both sides
    return ["podman", "run", "-d", "--rm", f"--name={name}", f"--network=ns:/run/netns/{ns}",
            "--pull=never", "--shm-size=1g", "--pids-limit=-1",
            f"--volume={token}:{TOKEN_INSIDE}:ro",
            *(f"--env={key}={value}" for key, value in settings.items()),
            "--env=AWS_ACCESS_KEY_ID", "--env=AWS_SECRET_ACCESS_KEY",
            image, "ray", "start", "--block", "--num-cpus=1", "--disable-usage-stats",
            *ray_start]


@pytest.fixture(scope="module")
def cluster(built, client, tiny_model):
    """SeaweedFS and the head's container in one namespace, the worker's in the other; the
    tiny model and the quickstart data uploaded to the store, as a user would upload them."""
    namespaces = Namespaces.made_or_skip()
    folder = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
    token = folder / "token"
    token.write_text(secrets.token_hex(16))
    token.chmod(0o600)
    env = inside_environment(AWS_ACCESS_KEY_ID=secrets.token_hex(8),
                             AWS_SECRET_ACCESS_KEY=secrets.token_hex(16),
                             RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                             LAUNCH_HOME=str(folder / "launch-home"))
    names = [f"{namespaces.head}-ray", f"{namespaces.worker}-ray"]
    try:
        endpoint = start_store(namespaces.head, folder, BUCKET, env)
        run_inside(namespaces.head, _s3(endpoint, f"""
            for file in pathlib.Path('{tiny_model}').iterdir():
                s3.upload_file(str(file), '{BUCKET}', 'models/tiny/' + file.name)
            s3.upload_file('{EXAMPLES / "data" / "debian_describe.jsonl"}', '{BUCKET}',
                           'data/train.jsonl')"""), env)
        for command in (
                container(names[0], namespaces.head, built, token, "--head", "--port=6390",
                          f"--node-ip-address={HEAD_IP}", f"--dashboard-host={HEAD_IP}",
                          "--dashboard-port=8265", "--include-dashboard=true"),
                container(names[1], namespaces.worker, built, token,
                          f"--address={HEAD_IP}:6390", f"--node-ip-address={WORKER_IP}")):
            subprocess.run(command, check=True, capture_output=True, timeout=120, env=env)
        _wait_for_two_nodes(names[0])
        yield namespaces, env, endpoint, names
    finally:
        for name in names:
            subprocess.run(["podman", "rm", "--force", "--time=0", name], capture_output=True)
        namespaces.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def _s3(endpoint: str, body: str) -> str:
    """Python that runs `body` with `s3`, a client of the store in the namespace."""
    return (f"import boto3, json, pathlib\n"
            f"s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1')\n"
            + textwrap.dedent(body).strip() + "\n")


def _wait_for_two_nodes(head: str, timeout_s: float = 180) -> None:
    """Until the head counts both nodes alive (the worker's container registers on its own)."""
    count = ("import ray; ray.init(address='auto', logging_level='ERROR'); "
             "print(sum(node['Alive'] for node in ray.nodes()))")
    deadline, last = time.time() + timeout_s, None
    while time.time() < deadline:
        last = subprocess.run(["podman", "exec", head, "python", "-c", count],
                              capture_output=True, text=True, timeout=120)
        if last.stdout.strip() == "2":
            return
        time.sleep(2)
    logs = subprocess.run(["podman", "logs", head], capture_output=True, text=True).stdout
    pytest.fail(f"the worker node never joined: {last and last.stderr[-1500:]}\n{logs[-2000:]}")


def launch(client: Path, namespaces: Namespaces, env: dict, *args: str, cwd: Path,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """The client's `launch`, run on the head's network as a laptop reaching the cluster."""
    return subprocess.run([*Namespaces.prefix(namespaces.head), str(client / "bin" / "launch"),
                           *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.long
def test_a_client_without_torch_trains_on_two_container_nodes_from_s3(cluster, client,
                                                                      tiny_model, tmp_path):
    """Long (2 to 3 minutes, most of it in its set-up): a client venv is made, two containers
    start Ray, and ZeRO-3 trains across them."""
    namespaces, env, endpoint, names = cluster
    job = tmp_path / "job.yaml"
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec.update({
        "name": "remote",
        "model": {"name_or_path": f"s3://{BUCKET}/models/tiny"},
        "target": {"address": DASHBOARD},
        "storage": {"uri": f"s3://{BUCKET}/runs", "endpoint_url": endpoint}})
    spec["data"].update(path=f"s3://{BUCKET}/data/train.jsonl", max_length=64)
    spec["training"].update(max_steps=10, save_steps=5, logging_steps=5, eval_steps=5,
                            batch_size_per_worker=4)
    spec["scale"] = {"num_workers": 2, "num_nodes": 2, "deepspeed": {"stage": 3}}
    job.write_text(yaml.safe_dump(spec, sort_keys=False))
    # --address: the token of RAY_AUTH_TOKEN_PATH goes only to an address the user named.
    result = launch(client, namespaces, env, "submit", str(job), "--address", DASHBOARD,
                    "--follow", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Ray Train's own placement report: one worker on each node.
    assert f"(ip={HEAD_IP}, " in result.stdout and f"(ip={WORKER_IP}, " in result.stdout
    assert "node_rank=1" in result.stdout
    run_id = submitted_run_id(result)

    status = launch(client, namespaces, env, "status", run_id, "-o", "json", cwd=tmp_path)
    assert json.loads(status.stdout)["state"] == "SUCCEEDED", status.stdout + status.stderr
    logs = launch(client, namespaces, env, "logs", run_id, cwd=tmp_path)
    assert logs.returncode == 0 and "SUCCEEDED" in logs.stdout, logs.stderr
    results = launch(client, namespaces, env, "results", run_id, "--download",
                     str(tmp_path / "results"), cwd=tmp_path)
    assert results.returncode == 0, results.stdout + results.stderr
    # ZeRO-3 partitions the LoRA weights across the nodes: the adapter loads only if they were
    # gathered at save time. It names its base as the job did (each node loaded a copy).
    model = tmp_path / "results" / "model"
    assert json.loads((model / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == f"s3://{BUCKET}/models/tiny"
    assert_adapter_generates(model, base=tiny_model)

    # Everything the job read is on the store, by s3:// URI: its spec says so.
    stored = json.loads((tmp_path / "results" / "spec.json").read_text())
    for uri in (stored["model"]["name_or_path"], stored["data"]["path"], stored["storage"]["uri"]):
        assert uri.startswith(f"s3://{BUCKET}/"), stored
    # And none of the client's folders exists inside the nodes' containers.
    for name in names:
        for path in (job, client, env["LAUNCH_HOME"], tiny_model):
            seen = subprocess.run(["podman", "exec", name, "test", "-e", str(path)])
            assert seen.returncode == 1, f"{path} exists in {name}"

    keys = json.loads(run_inside(namespaces.head, _s3(endpoint, f"""
            pages = s3.get_paginator('list_objects_v2').paginate(
                Bucket='{BUCKET}', Prefix='runs/remote/{run_id}/')
            print(json.dumps([o['Key'] for page in pages for o in page.get('Contents', [])]))"""),
        env))
    checkpoints = {key.split("/")[4] for key in keys  # folders, not Ray's snapshot file
                   if "/checkpoints/checkpoint_" in key and key.count("/") > 4}
    assert len(checkpoints) == 2, keys  # steps 5 and 10
    # ZeRO-3 keeps each rank's partition: both nodes' shards are in every checkpoint.
    for name in checkpoints:
        shards = [k for k in keys if f"/{name}/" in k and "optim_states" in k]
        assert len(shards) == 2, shards


def test_two_nodes_with_a_local_results_folder_are_refused_at_submit(cluster, client,
                                                                    tmp_path):
    """Each node would keep its own checkpoints: refused before anything is submitted."""
    namespaces, env, _, _ = cluster
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({
        "name": "remote-local", "model": {"name_or_path": f"s3://{BUCKET}/models/tiny"},
        "data": {"path": f"s3://{BUCKET}/data/train.jsonl"},
        "scale": {"num_workers": 2, "num_nodes": 2}, "storage": {"uri": str(tmp_path / "runs")},
        "target": {"address": DASHBOARD}}))
    result = launch(client, namespaces, env, "submit", str(job), cwd=tmp_path)
    assert result.returncode == 2
    assert "multi-node training needs shared storage" in result.stderr
    assert not (tmp_path / "runs").exists()
