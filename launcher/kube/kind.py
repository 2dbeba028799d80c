"""`launch kind up | down | load`: a local Kind cluster with KubeRay, an S3 store and an image
registry, to try the kubernetes target before a real cluster. Needs docker, kind, kubectl and
helm; the manifests and the pinned KubeRay install are the ones in k8s/.

The registry is wired in as kind's documentation describes a local registry: a `registry:2`
container on 127.0.0.1:5001 that `launch build` pushes to as `localhost:5001/…`, and inside
the node containerd maps `localhost:5001` to that container on kind's network, so pods pull
the same reference. A ConfigMap in kube-public advertises it to tools that look for one.

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
NODE = f"{CLUSTER}-control-plane"  # the config's one node, as kind names it
NAMESPACE = "launch"
K8S = SOURCE_ROOT / "k8s"
TOOLS = ("docker", "kind", "kubectl", "helm")
REGISTRY = "kind-registry"
REGISTRY_PORT = 5001  # 5000 is often taken (macOS AirPlay), and the test registries use it
REGISTRY_HOST = f"localhost:{REGISTRY_PORT}"
# containerd in the node: pulls of localhost:5001/… go to the registry container over kind's
# network (k8s/kind-cluster.yaml points containerd at /etc/containerd/certs.d).
HOSTS_TOML = f'[host."http://{REGISTRY}:5000"]\n'
REGISTRY_CONFIGMAP = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "{REGISTRY_HOST}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
"""


class Runner:
    """Runs the commands, or with `dry_run` only says what it would run (nothing it runs is
    a query, so the sequence is the whole of what `up` does on a fresh machine)."""

    def __init__(self, log: Callable[[str], None], dry_run: bool = False):
        self.log, self.dry_run = log, dry_run

    def run(self, command: list[str], stdin: str | None = None, check: bool = True) -> str:
        if self.dry_run:
            self.log("$ " + " ".join(command) + (" <<EOF\n" + stdin + "EOF" if stdin else ""))
            return ""
        done = subprocess.run(command, input=stdin, capture_output=True, text=True)
        if done.returncode != 0 and check:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise LaunchError(f"`{' '.join(command[:3])}` failed: {last}")
        return done.stdout


def up(runner: Runner) -> str:
    """Create (or reuse) the registry and the cluster, wire the registry in, install KubeRay,
    the namespace, RBAC and the store; return the kube context to put in
    target.kubernetes.context."""
    if not runner.dry_run:
        _require(TOOLS)
    # A dry run writes the Secrets' files too (and shows only their paths, never their text).
    access, secret = _credentials() if not runner.dry_run else ("ACCESS_KEY", "SECRET_KEY")
    if runner.dry_run or not runner.run(["docker", "ps", "-q", "--filter", f"name=^{REGISTRY}$"]):
        runner.log(f"starting the image registry `{REGISTRY}` on 127.0.0.1:{REGISTRY_PORT}")
        runner.run(["docker", "rm", "--force", REGISTRY], check=False)
        runner.run(["docker", "run", "--detach", "--restart=always", "--name", REGISTRY,
                    "--publish", f"127.0.0.1:{REGISTRY_PORT}:5000", "registry:2"])
    if runner.dry_run or CLUSTER not in runner.run(["kind", "get", "clusters"]).split():
        runner.log(f"creating kind cluster `{CLUSTER}` (k8s/kind-cluster.yaml)")
        runner.run(["kind", "create", "cluster", "--config", str(K8S / "kind-cluster.yaml")])
    certs = f"/etc/containerd/certs.d/{REGISTRY_HOST}"
    runner.run(["docker", "exec", NODE, "mkdir", "-p", certs])
    runner.run(["docker", "exec", "-i", NODE, "sh", "-c", f"cat > {certs}/hosts.toml"],
               stdin=HOSTS_TOML)
    # Already connected after an earlier `up`: docker says so, and that is fine.
    runner.run(["docker", "network", "connect", "kind", REGISTRY], check=False)
    # install-kuberay.sh works on the current context: make sure it is this cluster.
    runner.run(["kubectl", "config", "use-context", CONTEXT])
    runner.run(["kubectl", "apply", "-f", "-"], stdin=REGISTRY_CONFIGMAP)
    runner.run(["kubectl", "apply", "-f", str(K8S / "namespace.yaml")])
    with tempfile.TemporaryDirectory(prefix="launch-kind-") as folder:
        credentials, s3_json = Path(folder) / "credentials", Path(folder) / "s3.json"
        write_private(credentials, aws_credentials_file(access, secret))
        write_private(s3_json, json.dumps({"identities": [{
            "name": "launch", "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        _apply_secret(runner, "launch-storage", f"--from-file=credentials={credentials}")
        _apply_secret(runner, "seaweedfs-s3", f"--from-file=s3.json={s3_json}")
    runner.log("installing KubeRay 1.7.0, the launcher's Role and the S3 store "
               "(k8s/install-kuberay.sh)")
    runner.run(["bash", str(K8S / "install-kuberay.sh")])
    return CONTEXT


def down(runner: Runner) -> None:
    """Delete the cluster and the registry container (the images pushed to it go too)."""
    if not runner.dry_run:
        _require(("docker", "kind"))
    runner.run(["kind", "delete", "cluster", "--name", CLUSTER])
    runner.run(["docker", "rm", "--force", REGISTRY], check=False)


def load(runner: Runner, image: str) -> None:
    """Copy a local Docker image into the Kind node, for images that are in no registry the
    node reaches (with target.kubernetes.image_pull_policy: Never)."""
    if not runner.dry_run:
        _require(("docker", "kind"))
    runner.run(["kind", "load", "docker-image", image, "--name", CLUSTER])


def _require(tools: tuple[str, ...]) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LaunchError(f"`launch kind` needs {', '.join(tools)}; not found: "
                          f"{', '.join(missing)} (see docs/kubernetes.md: On a local Kind cluster)")


def _credentials() -> tuple[str, str]:
    access = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise LaunchError("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the cluster's S3 "
                          "store accepts them and the Ray pods read them from a Secret")
    return access, secret


def _apply_secret(runner: Runner, name: str, source: str) -> None:
    manifest = runner.run(["kubectl", "-n", NAMESPACE, "create", "secret", "generic", name,
                           source, "--dry-run=client", "-o", "yaml"])
    runner.run(["kubectl", "apply", "-f", "-"], stdin=manifest or None)
