"""k8s/: every core object passes `kubernetes-validate --strict`; the launcher's Role grants
exactly the calls launch makes; nothing runs as root or privileged; Kind binds 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.project import ROOT

K8S = ROOT / "k8s"
KUBE = ROOT / "launcher" / "kube"
# Not Kubernetes API objects: kind's own config format.
NOT_API_OBJECTS = {"kind-cluster.yaml"}


def api_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name not in NOT_API_OBJECTS)


def objects() -> list[dict]:
    return [doc for path in api_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_core_objects_pass_kubernetes_validate_strict():
    validator = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(validator), "--strict", *map(str, api_files())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(objects())


def test_the_role_grants_exactly_what_launch_calls():
    # Every API call in client.py names its "verb resource"; port-forwarding (portforward.py)
    # is a websocket GET, or a POST from SPDY clients.
    calls = set(re.findall(r'"(create|get|list|patch|delete) ([a-z/]+)"',
                           (KUBE / "client.py").read_text()))
    assert "connect_get_namespaced_pod_portforward" in (KUBE / "portforward.py").read_text()
    calls |= {("get", "pods/portforward"), ("create", "pods/portforward")}
    role = next(o for o in objects() if o["kind"] == "Role")
    granted = {(verb, resource) for rule in role["rules"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    assert granted == calls
    assert all("*" not in str(rule) for rule in role["rules"])
    assert not any(o["kind"] in ("ClusterRole", "ClusterRoleBinding") for o in objects())


def test_nothing_runs_as_root_or_privileged():
    pods = [o["spec"]["template"]["spec"] for o in objects() if o["kind"] == "Deployment"]
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert not pod.get("hostNetwork") and not pod.get("hostPID")
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert not security.get("privileged")


def test_kind_maps_only_the_store_to_loopback():
    """8265 stays the embedded Ray head's; `launch dashboard` port-forwards a run's."""
    config = yaml.safe_load((K8S / "kind-cluster.yaml").read_text())
    mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
    assert {m["hostPort"] for m in mappings} == {8333}
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)
    node_ports = {p["nodePort"] for o in objects() if o["kind"] == "Service"
                  for p in o["spec"]["ports"] if "nodePort" in p}
    store = next(m for m in mappings if m["hostPort"] == 8333)
    assert store["containerPort"] in node_ports


def test_the_operator_install_is_pinned_to_the_crds_the_tests_use():
    script = (K8S / "install-kuberay.sh").read_text()
    assert re.search(r"^KUBERAY_VERSION=1\.7\.0$", script, re.M)
    assert '--version "$KUBERAY_VERSION"' in script
