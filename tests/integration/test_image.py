"""Images for real: buildah builds docker/Dockerfile (its RUN steps run), a real registry holds
the result, the oci builder appends code layers over HTTP, podman runs the image to SUCCEEDED.

The first build installs the training stack into the runtime stage (minutes, once per
session on a fresh machine); everything after reuses it, which is the point being tested.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile

import pytest
import yaml

from bench.counting_proxy import CountingProxy
from launcher.image.registry import Registry

# The first test pays for the runtime build (pip installs the training stack): minutes.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
SCANNED_LAYER_LIMIT = 64 << 20  # bigger layers are the base and pip's site-packages


@pytest.fixture
def proxied_job(image_job, registry, tmp_path):
    """The image job, pushing through a byte-counting proxy to the same registry."""
    proxy = CountingProxy(registry)
    job = yaml.safe_load(image_job.read_text())
    job["image"]["repository"] = f"{proxy.host}/launch/imagejob"
    job["image"]["builder"] = "oci"
    folder = tmp_path / "job"
    shutil.copytree(image_job.parent / "data", folder / "data")
    job["data"]["path"] = "data/train.jsonl"
    (folder / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    yield folder / "job.yaml", proxy
    proxy.close()


def manifest_layers(host: str, reference: str) -> list[str]:
    _, repo, tag = registry_image(reference)
    return [layer["digest"] for layer in Registry(host).manifest(repo, tag).data["layers"]]


def registry_image(reference: str) -> tuple[Registry, str, str]:
    """A client of the image's registry, its repository and its tag."""
    host, rest = reference.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    return Registry(host), repo, tag


def small_layers(reference: str) -> list[bytes]:
    """The image's layers up to SCANNED_LAYER_LIMIT, as uncompressed tars, from its registry."""
    client, repo, tag = registry_image(reference)
    layers = []
    for layer in client.manifest(repo, tag).data["layers"]:
        if layer["size"] <= SCANNED_LAYER_LIMIT:
            raw = client.blob(repo, layer["digest"])
            layers.append(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return layers


def test_a_second_build_of_an_unchanged_job_builds_and_pushes_nothing(built, image_job, cli):
    first = cli("build", image_job)  # `built` itself, unless launch's own code changed since
    again = cli("build", image_job)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert again.stdout == first.stdout
    assert again.stdout.strip().rsplit(":", 1)[0] == built.rsplit(":", 1)[0]  # same repository
    assert "none build" in again.stderr


def test_oci_code_change_uploads_about_one_layer_and_no_change_uploads_nothing(
        built, proxied_job, cli):
    job_file, proxy = proxied_job
    data = job_file.parent / "data" / "train.jsonl"
    data.write_text(data.read_text() + json.dumps({"prompt": "Describe the package tiny",
                                                   "response": "a new line"}) + "\n")
    proxy.reset()
    changed = cli("build", job_file)
    assert changed.returncode == 0, changed.stderr
    assert "oci build" in changed.stderr
    layer_bytes = int(changed.stderr.split("code layer ")[1].split()[0])
    # One code layer, plus a config and a manifest of a few kB: nothing of the runtime.
    assert layer_bytes <= proxy.sent <= 1.05 * layer_bytes, (proxy.sent, layer_bytes)
    proxy.reset()
    unchanged = cli("build", job_file)
    assert unchanged.returncode == 0 and unchanged.stdout == changed.stdout
    assert proxy.sent == 0, proxy.requests
    # Only the code layer differs from the docker-built image of the unchanged job.
    new = manifest_layers(proxy.host, changed.stdout.strip())
    old = manifest_layers(proxy.host, f"{proxy.host}/{built.split('/', 1)[1]}")
    assert new[:-1] == old[:-1] and new[-1] != old[-1]


def test_no_push_builds_here_and_leaves_the_registry_alone(built, image_job, cli, tmp_path):
    """`launch build --no-push`, for `launch kind load`: buildah (no Docker engine here) builds
    the changed job from its cached runtime stage, tags it, and the registry never gets it."""
    job = tmp_path / "job"
    shutil.copytree(image_job.parent / "data", job / "data")
    (job / "data" / "train.jsonl").write_text((job / "data" / "train.jsonl").read_text()
                                              + json.dumps({"prompt": "p", "response": "r"})
                                              + "\n")
    (job / "job.yaml").write_text(image_job.read_text())
    result = cli("build", job / "job.yaml", "--no-push")
    assert result.returncode == 0, result.stderr[-3000:]
    reference = result.stdout.strip()
    assert reference != built
    assert subprocess.run(["podman", "image", "exists", reference]).returncode == 0
    host, repo_tag = reference.split("/", 1)
    repo, tag = repo_tag.rsplit(":", 1)
    assert not Registry(host).has_manifest(repo, tag)


def test_run_image_trains_the_job_inside_the_container(built, image_job, cli, tmp_path):
    result = cli("run-image", image_job, "--results", tmp_path / "smoke", timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "smoke run SUCCEEDED" in result.stdout
    status = next((tmp_path / "smoke").rglob("status.json"))
    assert json.loads(status.read_text())["state"] == "SUCCEEDED"
    metrics = [json.loads(line) for line in
               (status.parent / "metrics.jsonl").read_text().splitlines()]
    assert max(m.get("step", 0) for m in metrics) == 2  # the smoke run's 2 steps really ran
    # A CPU image carries DeepSpeed's CPU Adam built, so an offload run (and every CPU worker
    # pod) loads it instead of compiling it for a minute.
    files = [name for layer in small_layers(built)
             for name in tarfile.open(fileobj=io.BytesIO(layer)).getnames()
             if name.startswith("opt/torch-extensions/")]
    assert any(name.endswith("/cpu_adam/cpu_adam.so") for name in files), \
        files


def test_no_credential_reaches_any_layer_config_or_manifest(built, image_job, cli, registry,
                                                            monkeypatch):
    secret_key, access_key = "SECRETsecret0123456789abcdefTEST", "AKIALAUNCHTESTKEY42"
    job = yaml.safe_load(image_job.read_text())
    job["storage"] = {"uri": "s3://bucket/prefix", "endpoint_url": "http://127.0.0.1:9"}
    job["training"] = {**job.get("training", {}), "seed": 7}  # a new job tag: a fresh build
    job_file = image_job.parent / "secrets-job.yaml"
    job_file.write_text(yaml.safe_dump(job, sort_keys=False))
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    result = cli("build", job_file, "--builder", "docker", env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = result.stdout.strip()
    client, repo, tag = registry_image(reference)
    manifest = client.manifest(repo, tag)
    blobs = [manifest.body, client.blob(repo, manifest.data["config"]["digest"]),
             *small_layers(reference)]
    with tarfile.open(fileobj=io.BytesIO(blobs[-1])) as tar:  # the code layer really is there
        assert "opt/launch/job/spec.json" in tar.getnames()
    for blob in blobs:
        assert secret_key.encode() not in blob and access_key.encode() not in blob


def test_a_multi_arch_index_resolves_to_the_asked_platform(built, registry):
    from launcher.errors import LaunchError
    from launcher.image.registry import OCI_INDEX

    repo, tag = built.split("/", 1)[1].rsplit(":", 1)
    client = Registry(registry)
    image = client.manifest(repo, tag)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": image.media_type, "digest": image.digest, "size": len(image.body),
        "platform": {"os": "linux", "architecture": "amd64"}}]}
    client.put_manifest(repo, "multi-arch", OCI_INDEX, json.dumps(index).encode())
    assert client.manifest(repo, "multi-arch", "linux/amd64").digest == image.digest
    with pytest.raises(LaunchError, match=r"has no linux/arm64 image \(it has linux/amd64\)"):
        client.manifest(repo, "multi-arch", "linux/arm64")
