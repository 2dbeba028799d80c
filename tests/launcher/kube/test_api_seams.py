"""`launch submit/status/list/logs/stop/results/submit --resume` through the kubernetes target,
run as a user runs them (the CLI in its own process), across every seam that runs here.

Real: the CLI, the official `kubernetes` client, the image build (the oci builder appending the
code layer in a real docker-registry), the run's storage (the session's SeaweedFS). Standing
in: the Kubernetes API server and the KubeRay operator (tests/support/kube_api.py says why and
what it does), and the runtime image the code layer goes onto, a one-layer image pushed under
the runtime tag, since no pod ever runs it here (tests/integration/test_image.py builds the
real one with buildah and runs it with podman).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile

import pytest
import yaml

from launcher.image.recipe import Recipe
from launcher.image.registry import OCI_MANIFEST, Registry, sha256_digest
from launcher.kube import names
from launcher.spec.load import load_spec
from tests.support.kube_api import KubeAPIStandIn
from tests.support.kube_checks import SAMPLES, rayjob_validator, schema_errors
from tests.support.project import EXAMPLES, ROOT

pytestmark = pytest.mark.integration
__all__ = ["rayjob_validator"]  # the fixture, imported for pytest
REPO = "launch/seams"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


@pytest.fixture
def kube_api(rayjob_validator, tmp_path, monkeypatch):
    """The API as the launcher's Role (k8s/launcher-rbac.yaml) lets it through."""
    role = next(doc for doc in yaml.safe_load_all((ROOT / "k8s" / "launcher-rbac.yaml")
                                                  .read_text()) if doc["kind"] == "Role")
    with KubeAPIStandIn(lambda body: schema_errors(rayjob_validator, body), role) as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kubeconfig")))
        yield api


@pytest.fixture
def kube_job(registry, s3_store, tmp_path):
    """The quickstart as a kubernetes job: image in the real registry, results in real S3."""
    job = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    job["model"]["name_or_path"] = "gpt2"  # a hub name: nothing local goes into the image
    job["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
    job["storage"] = {"uri": f"s3://{s3_store.bucket}/{tmp_path.name}",
                      "endpoint_url": s3_store.endpoint}
    job["image"] = {"repository": f"{registry}/{REPO}"}
    job["target"] = {"kind": "kubernetes", "kubernetes": {"startup_grace_s": 0}}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    _push_runtime_stand_in(registry, Recipe.for_spec(load_spec(path)).runtime_tag)
    return path


def _push_runtime_stand_in(host: str, tag: str) -> None:
    """A one-layer image under the runtime tag, so `auto` picks the oci builder."""
    registry = Registry(host)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/stand-in")
        data = b"stands in for the runtime stage\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [sha256_digest(raw.getvalue())]}}).encode()
    for blob in (layer, config):
        registry.push_blob(REPO, io.BytesIO(blob), len(blob), sha256_digest(blob))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha256_digest(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": sha256_digest(layer), "size": len(layer)}]}
    registry.put_manifest(REPO, tag, OCI_MANIFEST, json.dumps(manifest).encode())


def _operator_starts_pods(api: KubeAPIStandIn, pod_status: dict, log: str = "") -> None:
    """On create, the RayJob gets its cluster's pods and a submitter pod holding `log`."""
    def create(rayjob: dict) -> None:
        name = rayjob["metadata"]["name"]
        for pod in api.pods_of(rayjob, pod_status, cluster=f"{name}-x7k2p"):
            api.add("pods", pod)
        submitter = f"{name}-submitter"
        api.add("pods", {"metadata": {"name": submitter, "labels": {
            "batch.kubernetes.io/job-name": name}}, "status": {"phase": "Running"}})
        api.logs[submitter] = log

    api.on_create = create


def _status_for(rayjob_sample: str, name: str) -> dict:
    status = sample(rayjob_sample)["status"]
    return {**status, "rayClusterName": f"{name}-x7k2p", "jobId": name}


def _images(rayjob: dict) -> set[str]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"], rayjob["spec"]["submitterPodTemplate"],
                 *(group["template"] for group in cluster["workerGroupSpecs"])]
    return {c["image"] for t in templates for c in t["spec"]["containers"]}


def _read(s3_store, key: str) -> dict:
    body = s3_store.client().get_object(Bucket=s3_store.bucket, Key=key)["Body"]
    return json.loads(body.read())


def test_a_run_goes_through_every_command_on_kubernetes(kube_api, kube_job, registry,
                                                        s3_store, cli):
    """submit builds and pushes the image, creates the run's Secret and RayJob (naming that
    image) and returns once the job runs; status follows the RayJob; logs fall back to the
    submitter pod; stop suspends it; results read storage; --resume is a second RayJob."""
    pod_running = sample("pod-running")["pod"]["status"]
    _operator_starts_pods(kube_api, pod_running, log="[launch] step 3/10 loss 2.5\n")
    kube_api.statuses = [sample("rayjob-initializing")["status"],
                         sample("rayjob-running")["status"]]

    submitted = cli("submit", kube_job)
    assert submitted.returncode == 0, submitted.stderr
    run_id = re.search(r"^submitted (\S+)", submitted.stdout, re.MULTILINE).group(1)
    name = names.rayjob_name(run_id)

    rayjob = kube_api.get("rayjobs", name)
    (image,) = _images(rayjob)  # every pod runs the one image the build pushed
    host, _, reference = image.partition("/")
    assert host == registry and reference.startswith(f"{REPO}:job-")
    assert Registry(host).has_manifest(REPO, reference.split(":", 1)[1])
    secret = kube_api.get("secrets", names.token_secret_name(run_id))
    assert secret["metadata"]["ownerReferences"][0]["uid"] == rayjob["metadata"]["uid"]
    assert rayjob["spec"]["rayClusterSpec"]["authOptions"]["secretName"] == \
        secret["metadata"]["name"]
    prefix = f"{kube_job.parent.name}/quickstart/{run_id}"
    assert _read(s3_store, f"{prefix}/status.json")["image"] == image
    assert _read(s3_store, f"{prefix}/spec.json")["name"] == "quickstart"

    kube_api.set_status(name, _status_for("rayjob-running", name))
    assert f"{run_id}: RUNNING" in cli("status", run_id).stdout
    listed = cli("list", "--namespace", "default", "-o", "json")
    assert [job["run_id"] for job in json.loads(listed.stdout)] == [run_id], listed.stderr

    logs = cli("logs", run_id)  # no port-forward here: the submitter pod's log
    assert logs.returncode == 0 and "[launch] step 3/10" in logs.stdout, logs.stderr

    stopped = cli("stop", run_id)
    assert stopped.returncode == 0, stopped.stderr
    assert f"{run_id}: STOPPED" in stopped.stdout
    assert kube_api.get("rayjobs", name)["spec"]["suspend"] is True
    assert _read(s3_store, f"{prefix}/status.json")["state"] == "STOPPED"
    shown = json.loads(cli("results", run_id, "-o", "json").stdout)
    assert shown["state"] == "STOPPED" and shown["run_dir"] == f"s3://{s3_store.bucket}/{prefix}"

    resumed = cli("submit", kube_job, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    second = kube_api.get("rayjobs", names.rayjob_name(f"{run_id}-attempt2"))
    assert second["metadata"]["labels"][names.LABEL_ATTEMPT] == "2"
    assert _images(second) == {image}  # nothing changed: the same image, not rebuilt
    assert f"{run_id}: RUNNING" in cli("status", run_id).stdout


def test_a_stuck_pod_ends_the_submission_with_its_event_and_leaves_nothing(
        kube_api, kube_job, s3_store, cli):
    """A worker in ImagePullBackOff: submit exits 1 with the kubelet's event in one line, and
    the RayJob, its Secret and the run's storage prefix are gone."""
    stuck = sample("pod-image-pull-backoff")

    def create(rayjob: dict) -> None:  # the head runs; a worker's image cannot be pulled
        name = rayjob["metadata"]["name"]
        for pod in kube_api.pods_of(rayjob, sample("pod-running")["pod"]["status"],
                                    cluster=f"{name}-x7k2p"):
            if pod["metadata"]["labels"]["ray.io/node-type"] == "worker":
                pod["status"] = stuck["pod"]["status"]
                for event in stuck["events"]["items"]:
                    kube_api.add("events", {**event, "involvedObject": {
                        **event["involvedObject"], "name": pod["metadata"]["name"]}})
            kube_api.add("pods", pod)

    kube_api.on_create = create
    kube_api.statuses = [sample("rayjob-initializing")["status"]]

    result = cli("submit", kube_job)
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip()
    assert error.count("\n") == 0, error
    assert "ImagePullBackOff: Failed to pull image" in error and "deleted" in error
    assert kube_api.names("rayjobs") == [] and kube_api.names("secrets") == []
    listed = s3_store.client().list_objects_v2(Bucket=s3_store.bucket,
                                               Prefix=f"{kube_job.parent.name}/")
    assert listed.get("KeyCount", 0) == 0


def test_an_image_put_on_the_nodes_is_named_and_no_registry_is_asked(kube_api, kube_job, cli):
    """image_pull_policy Never (the image was given to the nodes with `launch kind load`):
    submit neither builds nor pushes; the RayJob names the tag a build would have pushed. The
    registry here is an address where nothing listens."""
    job = yaml.safe_load(kube_job.read_text())
    job["image"]["repository"] = "127.0.0.1:9/launch/loaded"
    job["target"]["kubernetes"]["image_pull_policy"] = "Never"
    kube_job.write_text(yaml.safe_dump(job, sort_keys=False))
    _operator_starts_pods(kube_api, sample("pod-running")["pod"]["status"])
    kube_api.statuses = [sample("rayjob-running")["status"]]

    submitted = cli("submit", kube_job)
    assert submitted.returncode == 0, submitted.stderr
    assert "not building or pushing 127.0.0.1:9/launch/loaded:job-" in submitted.stderr
    run_id = re.search(r"^submitted (\S+)", submitted.stdout, re.MULTILINE).group(1)
    rayjob = kube_api.get("rayjobs", names.rayjob_name(run_id))
    planned = yaml.safe_load_all(cli("submit", kube_job, "--dry-run").stdout)
    assert _images(rayjob) == _images(list(planned)[1])  # the content tag, as a build names it
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["imagePullPolicy"] == "Never"
