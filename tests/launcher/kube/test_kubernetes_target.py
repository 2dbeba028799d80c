"""The kubernetes target without a cluster: how a run finds its way back to it, and the one
line a user gets when no cluster can be reached (real kubeconfig files, a real closed port)."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from launcher.errors import LaunchError
from launcher.spec.target import KubernetesTargetSpec
from launcher.targets import make_target, target_settings
from launcher.targets.kubernetes import KubernetesTarget


@pytest.mark.parametrize("settings,namespace,context", [
    ({}, "default", None),
    ({"namespace": "ml", "context": "kind-launch"}, "ml", "kind-launch"),
    # EKS context names hold slashes: they survive the round trip through a run record.
    ({"context": "arn:aws:eks:eu-west-1:123456789012:cluster/gpu"}, "default",
     "arn:aws:eks:eu-west-1:123456789012:cluster/gpu"),
])
def test_a_recorded_runs_target_leads_back_to_its_namespace_and_context(
        settings, namespace, context):
    spec_target = KubernetesTargetSpec(kubernetes=settings)
    recorded = json.loads(json.dumps(spec_target.model_dump(mode="json")))  # as runs.save
    target = make_target(target_settings(recorded))
    assert isinstance(target, KubernetesTarget)
    assert (target.cluster.namespace, target.cluster.context) == (namespace, context)


def test_no_kubeconfig_is_one_actionable_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(LaunchError) as caught:
        KubernetesTarget(KubernetesTargetSpec()).prepare()
    assert "kubeconfig" in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreachable_api_server_is_one_actionable_line(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "gone",
              "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(LaunchError) as caught:
        KubernetesTarget(KubernetesTargetSpec()).prepare()
    assert "cannot reach the Kubernetes API" in str(caught.value)


def test_an_unknown_context_is_named(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [],
                                    "users": [], "contexts": []}))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(LaunchError) as caught:
        KubernetesTarget(KubernetesTargetSpec(kubernetes={"context": "kind-nope"})).prepare()
    assert "kind-nope" in str(caught.value)
