"""`launch submit --target kubernetes --dry-run`: the manifests a user would get, from the CLI,
with nothing built, pushed, submitted or recorded."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from launcher.image.build import plan_image
from launcher.spec.load import load_spec
from tests.support.kube_checks import rayjob_validator, schema_errors
from tests.support.project import EXAMPLES

__all__ = ["rayjob_validator"]  # the fixture, imported for pytest


def write_job(folder: Path) -> Path:
    job = folder / "job.yaml"
    job.write_text(yaml.safe_dump({
        "name": "dry", "model": {"name_or_path": "gpt2"},
        "data": {"path": str(EXAMPLES / "data" / "debian_describe.jsonl")},
        "storage": {"uri": "s3://runs/dry", "endpoint_url": "http://127.0.0.1:9"},
        # Nothing listens on port 9: a dry run must not need the registry or the store.
        "image": {"repository": "127.0.0.1:9/launch/dry"}}))
    return job


def test_dry_run_prints_a_valid_rayjob_with_the_content_tag_and_creates_nothing(
        cli, tmp_path, launch_home, rayjob_validator):
    job = write_job(tmp_path)
    records = launch_home / "runs"
    before = set(records.iterdir()) if records.exists() else set()
    result = cli("submit", job, "--target", "kubernetes", "--namespace", "team-a",
                 "--context", "kind-launch", "--dry-run")
    assert result.returncode == 0, result.stderr
    secret, rayjob = yaml.safe_load_all(result.stdout)
    assert secret["kind"] == "Secret" and rayjob["kind"] == "RayJob"
    assert schema_errors(rayjob_validator, rayjob) == []
    assert rayjob["metadata"]["namespace"] == "team-a"  # the flag overrides the file
    with tempfile.TemporaryDirectory() as folder:
        overrides = {"target": {"kind": "kubernetes", "kubernetes": {
            "namespace": "team-a", "context": "kind-launch"}}}
        plan = plan_image(load_spec(job, overrides), job.parent, Path(folder))
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["image"] == plan.reference  # what `launch build` would push
    assert rayjob["spec"]["entrypoint"].endswith("/spec.json")
    assert (set(records.iterdir()) if records.exists() else set()) == before  # no run recorded


def test_the_kind_example_dry_runs_to_a_rayjob_pulling_from_the_kind_registry(
        cli, tmp_path, tiny_model, rayjob_validator):
    """examples/kind.yaml as written, beside the folders it names (its data, the tiny model
    that examples/build_tiny_model.py builds)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-gpt2").symlink_to(tiny_model)
    (tmp_path / "data").symlink_to(EXAMPLES / "data")
    job = tmp_path / "kind.yaml"
    job.write_text((EXAMPLES / "kind.yaml").read_text())
    result = cli("submit", job, "--dry-run")
    assert result.returncode == 0, result.stderr
    _, rayjob = yaml.safe_load_all(result.stdout)
    assert schema_errors(rayjob_validator, rayjob) == []
    assert rayjob["metadata"]["namespace"] == "launch"
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    container = head["containers"][0]
    # The reference the node's containerd maps to the `kind-registry` container.
    assert container["image"].startswith("localhost:5001/launch/quickstart:")
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://seaweedfs.launch.svc:8333"} in \
        container["env"]


def test_a_bad_flag_value_is_a_one_line_spec_error(cli, tmp_path):
    result = cli("submit", write_job(tmp_path), "--target", "kubernetes", "--namespace",
                 "Not_A_Namespace", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "target.kubernetes.namespace" in result.stderr


def test_an_error_in_a_flags_value_names_the_flag_not_the_files_line(cli, tmp_path):
    """The file says kind ray on its line; the error is about --target's kubernetes."""
    job = write_job(tmp_path)
    spec = yaml.safe_load(job.read_text())
    del spec["image"]
    spec["target"] = {"kind": "ray"}
    job.write_text(yaml.safe_dump(spec))
    result = cli("submit", job, "--target", "kubernetes", "--dry-run")
    assert result.returncode == 2
    assert result.stderr == (f"{job}: target.kind (from the command line): kind kubernetes "
                             "runs the job from an image: add an `image` section "
                             "(image.repository)\n")
