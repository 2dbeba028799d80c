"""`launch kind`: Kind cannot run here (no Docker engine, no kind), so what is checked is what
runs: the one line a user without those tools sees, the commands `up --dry-run` says it would
run, and the cluster config those commands use."""

from __future__ import annotations

import shutil

import pytest
import yaml

from launcher.kube import kind

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE1234", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-x"}


@pytest.mark.parametrize("command", [("kind", "up"), ("kind", "down"),
                                     ("kind", "load", "127.0.0.1:5000/launch/x:job-1"),
                                     ("cluster", "up")])  # the old name still works
def test_kind_commands_name_the_missing_tools(cli, command):
    if shutil.which("kind") and shutil.which("docker"):
        pytest.skip("kind and docker are installed: this test is for machines without them")
    result = cli(*command, env=CREDENTIALS)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "needs" in result.stderr and "not found: " in result.stderr and "kind" in result.stderr


def test_up_starts_and_wires_the_registry_before_installing_and_shows_no_secret(cli):
    result = cli("kind", "up", "--dry-run", env=CREDENTIALS)
    assert result.returncode == 0, result.stderr
    commands = [line[2:] for line in result.stderr.splitlines() if line.startswith("$ ")]
    steps = ["docker run --detach --restart=always --name kind-registry --publish "
             "127.0.0.1:5001:5000 registry:2",
             f"kind create cluster --config {kind.K8S / 'kind-cluster.yaml'}",
             "docker exec -i launch-control-plane sh -c cat > "
             "/etc/containerd/certs.d/localhost:5001/hosts.toml <<EOF",
             "docker network connect kind kind-registry",
             "kubectl config use-context kind-launch",
             f"bash {kind.K8S / 'install-kuberay.sh'}"]
    found = [next(i for i, command in enumerate(commands) if command.startswith(step))
             for step in steps]
    assert found == sorted(found), commands  # each step after the one it needs
    assert '[host."http://kind-registry:5000"]' in result.stderr
    assert "localRegistryHosting.v1" in result.stderr
    for value in CREDENTIALS.values():  # Secrets go through 0600 files, never a command line
        assert value not in result.stderr + result.stdout
    assert "image.repository: localhost:5001/" in result.stdout


def test_the_cluster_config_reads_the_registry_settings_up_writes():
    """containerd takes the hosts.toml `up` writes only from its certs.d folder; `up` writes
    it into the config's one node, by the name kind gives it."""
    config = yaml.safe_load((kind.K8S / "kind-cluster.yaml").read_text())
    assert config["name"] == kind.CLUSTER
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]
