"""`launch cluster up | down | load`: a local Kind cluster with KubeRay and an S3 store, to
try the kubernetes target before a real cluster. Needs docker, kind, kubectl and helm; the
manifests and the pinned KubeRay install are the ones in k8s/.

Storage credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as for every other
storage use; they reach the cluster only as Secrets (`launch-storage` holds them as an AWS
credentials file, which the Ray pods mount), through 0600 files, never on a command line (where
`ps` would show them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from launcher.errors import LaunchError
from launcher.private_files import write_private
from launcher.settings import SOURCE_ROOT
from launcher.storage import aws_credentials_file

CLUSTER = "launch"  # the name in k8s/kind-cluster.yaml
CONTEXT = f"kind-{CLUSTER}"
NAMESPACE = "launch"
K8S = SOURCE_ROOT / "k8s"
TOOLS = ("docker", "kind", "kubectl", "helm")


def up(log: Callable[[str], None]) -> str:
    """Create (or reuse) the cluster, install KubeRay, the namespace, RBAC and the store;
    return the kube context to put in target.kubernetes.context."""
    _require(TOOLS)
    access, secret = _credentials()
    if CLUSTER not in _run(["kind", "get", "clusters"]).split():
        log(f"creating kind cluster `{CLUSTER}` (k8s/kind-cluster.yaml)")
        _run(["kind", "create", "cluster", "--config", str(K8S / "kind-cluster.yaml")])
    # install-kuberay.sh works on the current context: make sure it is this cluster.
    _run(["kubectl", "config", "use-context", CONTEXT])
    _run(["kubectl", "apply", "-f", str(K8S / "namespace.yaml")])
    with tempfile.TemporaryDirectory(prefix="launch-kind-") as folder:
        credentials, s3_json = Path(folder) / "credentials", Path(folder) / "s3.json"
        write_private(credentials, aws_credentials_file(access, secret))
        write_private(s3_json, json.dumps({"identities": [{
            "name": "launch", "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        _apply_secret("launch-storage", f"--from-file=credentials={credentials}")
        _apply_secret("seaweedfs-s3", f"--from-file=s3.json={s3_json}")
    log("installing KubeRay 1.7.0, the launcher's Role and the S3 store (k8s/install-kuberay.sh)")
    _run(["bash", str(K8S / "install-kuberay.sh")])
    return CONTEXT


def down() -> None:
    _require(("kind",))
    _run(["kind", "delete", "cluster", "--name", CLUSTER])


def load(image: str) -> None:
    """Copy a local Docker image into the Kind node, so pods never run a stale one."""
    _require(("docker", "kind"))
    _run(["kind", "load", "docker-image", image, "--name", CLUSTER])


def _require(tools: tuple[str, ...]) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LaunchError(f"`launch cluster` needs {', '.join(tools)}; not found: "
                          f"{', '.join(missing)} (see docs/kubernetes.md: On a local Kind cluster)")


def _credentials() -> tuple[str, str]:
    access = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise LaunchError("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the cluster's S3 "
                          "store accepts them and the Ray pods read them from a Secret")
    return access, secret


def _apply_secret(name: str, source: str) -> None:
    manifest = _run(["kubectl", "-n", NAMESPACE, "create", "secret", "generic", name, source,
                     "--dry-run=client", "-o", "yaml"])
    _run(["kubectl", "apply", "-f", "-"], stdin=manifest)


def _run(command: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise LaunchError(f"`{' '.join(command[:3])}` failed: {last}")
    return done.stdout
