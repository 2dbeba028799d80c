"""Rendered RayJobs: valid against the KubeRay v1.7.0 CRD, pods valid as core objects, and
exactly what the golden files show a user (LAUNCH_UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import copy
import os
import re

import pytest
import yaml

from launcher.contract import RunLayout
from launcher.kube import names
from launcher.kube.render import manifests_yaml, render_manifests, render_rayjob
from launcher.spec.load import merge_overrides
from launcher.spec.models import JobSpec
from tests.support.kube_checks import (
    GOLDEN,
    kubernetes_validate_strict,
    rayjob_validator,
    schema_errors,
)

__all__ = ["rayjob_validator"]  # the fixture, imported for pytest

RUN = "quickstart-20261122-101010-ab12"
IMAGE = "127.0.0.1:5000/launch/quickstart:3f9c2a1b7d4e"
BASE = {
    "name": "quickstart",
    "model": {"name_or_path": "/models/tiny-gpt2"},
    "data": {"path": "/data/debian_describe.jsonl"},
    "storage": {"uri": "s3://launch-runs/finetunes", "endpoint_url": "http://127.0.0.1:8333"},
    "image": {"repository": "127.0.0.1:5000/launch/quickstart"},
    "target": {"kind": "kubernetes",
               "kubernetes": {"storage_endpoint_url": "http://seaweedfs.launch.svc:8333"}},
}
# Every shape a user can ask for; each has a golden file.
VARIANTS = {
    "single-node": {"scale": {"num_workers": 1}},
    "multi-worker": {"scale": {"num_workers": 4, "num_nodes": 2, "cpus_per_worker": 1.25},
                     "target": {"kubernetes": {"worker_memory": "12Gi",
                                               "shared_memory": "4Gi"}}},
    "gpu": {"scale": {"num_workers": 2, "cpus_per_worker": 8, "gpus_per_worker": 1,
                      "precision": "bf16"},
            "target": {"kubernetes": {"gpu_resource": "nvidia.com/gpu",
                                      "node_selector": {"cloud.google.com/gke-accelerator":
                                                        "nvidia-l4"},
                                      "tolerations": [{"key": "nvidia.com/gpu",
                                                       "operator": "Exists",
                                                       "effect": "NoSchedule"}]}}},
    "tolerations": {"target": {"kubernetes": {
        "namespace": "ml", "context": "kind-launch",
        "tolerations": [{"key": "dedicated", "value": "training", "effect": "NoExecute",
                         "toleration_seconds": 300},
                        {"operator": "Exists", "effect": "PreferNoSchedule"}]}}},
    "secrets": {"target": {"kubernetes": {
        "storage_secret": "team-s3", "image_pull_secret": "registry-creds",
        "service_account": "trainer", "image_pull_policy": "Always",
        "active_deadline_seconds": 7200, "backoff_limit": 1,
        "ttl_seconds_after_finished": 60}}},
    "sweep": {"scale": {"num_workers": 2},
              "training": {"max_steps": 40, "eval_steps": 10},
              "tune": {"metric": "eval_loss", "num_samples": 6, "scheduler": "asha",
                       "max_concurrent_trials": 3,
                       "space": {"training": {"learning_rate": {"loguniform": [1e-4, 1e-2]}},
                                 "method": {"r": {"choice": [4, 8, 16]}}}}},
    "pod-identity-no-auth": {"storage": {"uri": "s3://launch-runs/finetunes",
                                         "endpoint_url": None},
                             "target": {"kubernetes": {"storage_secret": None,
                                                       "storage_endpoint_url": None,
                                                       "ray_auth": "disabled",
                                                       "service_account": "irsa-trainer"}}},
}


def spec_of(variant: str) -> JobSpec:
    job = copy.deepcopy(BASE)
    merge_overrides(job, copy.deepcopy(VARIANTS[variant]))
    return JobSpec.model_validate(job)


def layout_of(spec: JobSpec, run: str = RUN) -> RunLayout:
    return RunLayout.for_run(spec.storage.uri, spec.name, run)


def rendered(variant: str) -> dict:
    spec = spec_of(variant)
    return render_rayjob(spec, layout_of(spec), RUN, IMAGE)


def pod_templates(rayjob: dict) -> dict[str, dict]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    return {"head": cluster["headGroupSpec"]["template"],
            "workers": cluster["workerGroupSpecs"][0]["template"],
            "submitter": rayjob["spec"]["submitterPodTemplate"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_is_a_valid_rayjob(variant, rayjob_validator):
    assert schema_errors(rayjob_validator, rendered(variant)) == []


def test_the_crd_check_refuses_what_kuberay_would_drop(rayjob_validator):
    """The schema check can fail: a misspelt field and a wrong type are both caught."""
    rayjob = rendered("single-node")
    rayjob["spec"]["shutdownAfterJobFinish"] = True
    rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "2"
    errors = schema_errors(rayjob_validator, rayjob)
    assert any("shutdownAfterJobFinish" in e for e in errors), errors
    assert any("replicas" in e for e in errors), errors


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_template_is_a_valid_core_object(variant):
    for role, template in pod_templates(rendered(variant)).items():
        kubernetes_validate_strict({"apiVersion": "v1", "kind": "PodTemplate",
                                    "metadata": {"name": f"{variant}-{role}"},
                                    "template": template})


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_manifests(variant):
    """What `launch submit --dry-run` prints for each variant."""
    spec = spec_of(variant)
    text = manifests_yaml(spec, layout_of(spec), RUN, IMAGE)
    golden = GOLDEN / f"{variant}.yaml"
    if os.environ.get("LAUNCH_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no {golden}: run with LAUNCH_UPDATE_GOLDEN=1 to write it"
    assert text == golden.read_text(), (f"{golden.name} differs from what launch renders; if "
                                        "the change is meant, rerun with LAUNCH_UPDATE_GOLDEN=1")


def test_workers_and_resources_follow_the_scale():
    rayjob = rendered("multi-worker")
    cluster = rayjob["spec"]["rayClusterSpec"]
    group = cluster["workerGroupSpecs"][0]
    # A pod is a Ray node: 4 workers over 2 nodes are 2 pods of 2 workers each.
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"] == {"cpu": "2500m", "memory": "12Gi"}
    assert group["rayStartParams"]["num-cpus"] == "3"  # Ray counts whole CPUs
    shm = next(v for v in group["template"]["spec"]["volumes"] if "emptyDir" in v)
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "4Gi"}
    assert {"name": shm["name"], "mountPath": "/dev/shm"} in worker["volumeMounts"]
    # No training worker lands on the head.
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert rayjob["spec"]["entrypoint"] == (
        f"python -m jobs.run --spec s3://launch-runs/finetunes/quickstart/{RUN}/spec.json")


def test_workers_that_do_not_divide_evenly_get_a_pod_with_room_to_spare():
    job = copy.deepcopy(BASE)
    merge_overrides(job, {"scale": {"num_workers": 3, "num_nodes": 2}})
    spec = JobSpec.model_validate(job)
    group = render_rayjob(spec, layout_of(spec), RUN, IMAGE)[
        "spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == 2 and group["rayStartParams"]["num-cpus"] == "2"


def test_a_sweep_gets_pods_for_its_concurrent_trials():
    group = rendered("sweep")["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    # One node per trial (num_nodes 1 packs a trial's 2 workers in one pod), 3 at a time.
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 3
    assert group["rayStartParams"]["num-cpus"] == "2"


def test_gpus_use_the_named_resource_on_workers_only():
    cluster = rendered("gpu")["spec"]["rayClusterSpec"]
    group = cluster["workerGroupSpecs"][0]
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    # num_nodes 1: both workers, and both their GPUs, in one pod.
    assert group["replicas"] == 1
    assert limits["nvidia.com/gpu"] == "2" and group["rayStartParams"]["num-gpus"] == "2"
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    for template in pod_templates(rendered("gpu")).values():
        assert template["spec"]["nodeSelector"] == {
            "cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert template["spec"]["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_credentials_are_a_file_mounted_from_the_secret(monkeypatch):
    """With credentials in this machine's environment, no manifest holds them, and no pod gets
    them as variables: the head and workers mount the named Secret's credentials file
    read-only, group-readable by the ray user only, and the AWS SDKs find it through
    AWS_SHARED_CREDENTIALS_FILE."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLEAKCHECK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-leak-check-value")
    spec = spec_of("secrets")
    text = manifests_yaml(spec, layout_of(spec), RUN, IMAGE)
    assert "AKIDLEAKCHECK" not in text and "secret-leak-check-value" not in text
    for role, template in pod_templates(rendered("secrets")).items():
        pod, (container,) = template["spec"], template["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), role
        assert not any("valueFrom" in e for e in env.values()), role
        assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
        assert pod["serviceAccountName"] == "trainer"
        if role == "submitter":  # it only runs `ray job submit`
            assert "volumes" not in pod and not env
            continue
        volume = next(v for v in pod["volumes"] if "secret" in v)
        assert volume["secret"] == {"secretName": "team-s3", "defaultMode": 0o440,
                                    "items": [{"key": "credentials", "path": "credentials"}]}
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
        assert mount["readOnly"] is True
        assert env["AWS_SHARED_CREDENTIALS_FILE"]["value"] == f"{mount['mountPath']}/credentials"
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
        # Pods reach the store at the in-cluster address, not this machine's.
        assert env["AWS_ENDPOINT_URL"]["value"] == "http://seaweedfs.launch.svc:8333"


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_pod_gets_a_service_account_token(variant):
    """Nothing in a job calls the Kubernetes API: a pod that holds no token cannot be used to."""
    for template in pod_templates(rendered(variant)).values():
        assert template["spec"]["automountServiceAccountToken"] is False


def test_pod_identity_means_no_credentials_at_all():
    for template in pod_templates(rendered("pod-identity-no-auth")).values():
        env = {e["name"] for e in template["spec"]["containers"][0].get("env", [])}
        assert not env & {"AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"}
        assert not any("secret" in v for v in template["spec"].get("volumes", []))
    spec = spec_of("pod-identity-no-auth")
    assert [d["kind"] for d in render_manifests(spec, layout_of(spec), RUN, IMAGE)] == ["RayJob"]


def test_ray_token_auth_is_kuberays_auth_options_with_a_per_run_secret():
    spec = spec_of("single-node")
    secret, rayjob = render_manifests(spec, layout_of(spec), RUN, IMAGE, token="t0ken")
    assert rayjob["spec"]["rayClusterSpec"]["authOptions"] == {
        "mode": "token", "secretName": secret["metadata"]["name"]}
    assert secret["stringData"] == {"auth_token": "t0ken"}
    kubernetes_validate_strict(secret)
    # --dry-run never prints a usable token.
    assert "t0ken" not in manifests_yaml(spec, layout_of(spec), RUN, IMAGE)


def test_lifecycle_settings():
    job = rendered("secrets")["spec"]
    assert job["shutdownAfterJobFinishes"] is True
    assert (job["ttlSecondsAfterFinished"], job["activeDeadlineSeconds"],
            job["backoffLimit"]) == (60, 7200, 1)
    assert "activeDeadlineSeconds" not in rendered("single-node")["spec"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_run_as_non_root_and_unprivileged(variant):
    for template in pod_templates(rendered(variant)).values():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert not security.get("privileged")


DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize("ray_job_id", [
    RUN, f"{RUN}-attempt2", "0-starts-with-digit-20261122-101010-ab12",
    f"{'x' * 40}-20261122-101010-ab12", f"{'x' * 40}-20261122-101010-ab12-attempt12",
])
def test_names_and_labels_fit_kubernetes_limits(ray_job_id):
    job_name = ray_job_id.split("-2026")[0]
    name = names.rayjob_name(ray_job_id)
    assert len(name) <= names.MAX_RAYJOB_NAME and DNS_1035.match(name), name
    assert len(names.token_secret_name(ray_job_id)) <= 63
    for value in names.labels(job_name, ray_job_id).values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_each_attempt_gets_its_own_rayjob():
    long_run = f"{'x' * 40}-20261122-101010-ab12"
    attempts = {names.rayjob_name(f"{long_run}-attempt{n}") for n in range(2, 12)}
    assert len(attempts | {names.rayjob_name(long_run)}) == 11
    assert names.rayjob_name(RUN) == RUN  # short ids are used as they are
    assert names.labels("quickstart", f"{RUN}-attempt3")[names.LABEL_RUN] == RUN


def test_golden_files_are_yaml_a_user_can_apply():
    for golden in sorted(GOLDEN.glob("*.yaml")):
        kinds = [doc["kind"] for doc in yaml.safe_load_all(golden.read_text())]
        assert kinds in (["Secret", "RayJob"], ["RayJob"]), golden.name
