"""`launch doctor` against the real local servers: a Ray head, SeaweedFS, a docker-registry —
up and right, down, or with the wrong key."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.support.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def job(write_job, tmp_path):
    """A job file with `overrides` merged in. Doctor never loads the model: a folder with a
    config.json is all it and validation look at, which keeps these tests free of the model
    build."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return lambda overrides: write_job({"model": {"name_or_path": str(model)}, **overrides})


def _checks(result) -> dict[str, dict]:
    """The JSON report's checks by the first word of their name."""
    report = json.loads(result.stdout)
    return {check["name"].split()[0]: check for check in report["checks"]}


@pytest.fixture
def full_job(ray_head, s3_store, registry, job):
    """A job that needs every server: the head, the S3 bucket, the registry."""
    return job({"target": {"address": ray_head.address},
                      "storage": {"uri": f"s3://{s3_store.bucket}/doctor",
                                  "endpoint_url": s3_store.endpoint},
                      "image": {"repository": f"{registry}/launch/doctor"}})


def test_everything_up_is_all_green_and_leaves_nothing_behind(full_job, s3_store, registry, cli):
    result = cli("doctor", full_job)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "✓ python:" in lines[0]
    for check in ("ray head", "storage s3://", "registry", "training stack"):
        assert any(line.startswith(f"✓ {check}") for line in lines), result.stdout
    assert "✗" not in result.stdout
    assert any("Ray 2.60.0 (client 2.60.0, image 2.60.0)" in line for line in lines)
    assert "✓ cluster resources: 1 node, 2 CPUs, 0 GPUs; the job's 2 workers x 1 CPU, 0 GPU" \
        in lines  # what the session's head (2 CPUs) has, asked through Ray's state API

    # The probes cleaned up: no object in the bucket, no blob in the repository.
    listed = s3_store.client().list_objects_v2(Bucket=s3_store.bucket, Prefix="doctor/")
    assert listed.get("KeyCount", 0) == 0
    import urllib.request

    with urllib.request.urlopen(f"http://{registry}/v2/_catalog") as response:
        assert "launch/doctor" not in json.loads(response.read())["repositories"]

    report = json.loads(cli("doctor", full_job, "--output", "json").stdout)
    assert report["ok"] is True and all(check["ok"] for check in report["checks"])


def test_wrong_s3_key_is_a_failed_storage_check(full_job, cli):
    result = cli("doctor", full_job, env={"AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert result.returncode == 1
    storage = next(line for line in result.stdout.splitlines() if "storage" in line)
    assert storage.startswith("✗") and "refused the S3 credentials" in storage
    assert "  fix: " in result.stdout
    assert _checks(cli("doctor", full_job, "-o", "json",
                       env={"AWS_SECRET_ACCESS_KEY": "not-the-key"}))["registry"]["ok"]


@pytest.fixture(scope="module")
def login_registry(tmp_path_factory):
    """A docker-registry that wants a login (htpasswd, user `launch`), on a free port."""
    import shutil
    import signal
    import subprocess
    import time
    import urllib.error
    import urllib.request
    import warnings

    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (scripts/test.sh installs it with apt)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt", reason="bcrypt hashes need Python's crypt here")
    folder = tmp_path_factory.mktemp("login-registry")
    (folder / "htpasswd").write_text(
        f"launch:{crypt.crypt('right', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    host = f"127.0.0.1:{free_port()}"
    (folder / "config.yml").write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
        "http": {"addr": host},
        "auth": {"htpasswd": {"realm": "launch-test", "path": str(folder / "htpasswd")}}}))
    process = subprocess.Popen(["docker-registry", "serve", str(folder / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2)
            break
        except urllib.error.HTTPError:  # 401: up, and wants a login
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("the login registry did not start")
            time.sleep(0.2)
    yield host
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def test_registry_login_is_checked_by_a_cancelled_upload(job, login_registry, cli, tmp_path):
    job_file = job({"image": {"repository": f"{login_registry}/launch/doctor"}})
    no_auth_files = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_AUTH_FILE": str(tmp_path / "x"),
                     "XDG_RUNTIME_DIR": str(tmp_path),
                     "LAUNCH_REGISTRY_USERNAME": ""}

    def registry_check(**env):
        result = cli("doctor", job_file, "-o", "json", env={**no_auth_files, **env})
        return _checks(result)["registry"]

    anonymous = registry_check()
    assert not anonymous["ok"] and "wants a login" in anonymous["detail"]
    wrong = registry_check(LAUNCH_REGISTRY_USERNAME="launch", LAUNCH_REGISTRY_PASSWORD="wrong")
    assert not wrong["ok"] and "HTTP 401" in wrong["detail"]
    assert "docker login" in wrong["hint"]
    right = registry_check(LAUNCH_REGISTRY_USERNAME="launch", LAUNCH_REGISTRY_PASSWORD="right")
    assert right == {"name": f"registry {login_registry}/launch/doctor", "ok": True,
                     "detail": "reachable, push allowed", "hint": "", "needed": True}


def test_wrong_ray_token_is_a_failed_head_check(full_job, cli):
    checks = _checks(cli("doctor", full_job, "-o", "json", env={"RAY_AUTH_TOKEN": "wrong"}))
    head = checks["ray"]
    assert not head["ok"] and head["needed"] and "refused launch's token" in head["detail"]
    assert "RAY_AUTH_TOKEN" in head["hint"]


def test_servers_down_fail_with_the_reason_and_a_fix(job, cli):
    job_file = job({"target": {"address": f"http://127.0.0.1:{free_port()}"},
                     "storage": {"uri": "s3://nobody-home/runs",
                                 "endpoint_url": f"http://127.0.0.1:{free_port()}"},
                     "image": {"repository": f"127.0.0.1:{free_port()}/launch/doctor"}})
    result = cli("doctor", job_file, "-o", "json",
                 env={"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"})
    assert result.returncode == 1
    checks = _checks(result)
    assert json.loads(result.stdout)["ok"] is False
    assert "cannot reach the S3 endpoint" in checks["storage"]["detail"]
    assert "unreachable" in checks["registry"]["detail"]
    assert checks["registry"]["hint"] and checks["storage"]["hint"]
    # A head on this machine that is not running yet is no failure: submit starts one.
    assert not checks["ray"]["ok"] and not checks["ray"]["needed"]
    assert "launch local up" in checks["ray"]["hint"]


def test_kubernetes_target_without_a_cluster_says_why(job, cli, tmp_path):
    port = free_port()  # nothing listens: like a Kind cluster that is not running
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                   "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
        "users": [{"name": "me", "user": {"token": "t"}}]}))
    job_file = job({"target": {"kind": "kubernetes", "kubernetes": {"namespace": "launch"}},
                     "storage": {"uri": "s3://launch-runs/k8s",
                                 "endpoint_url": f"http://127.0.0.1:{free_port()}"},
                     "image": {"repository": "127.0.0.1:5999/launch/k8s"}})
    result = cli("doctor", job_file, env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 1
    kube = next(line for line in result.stdout.splitlines() if line[2:].startswith("kubernetes"))
    assert kube.startswith("✗") and f"127.0.0.1:{port}" in kube
    assert "✓ ray versions: client 2.60.0, image 2.60.0" in result.stdout
    assert "training stack" not in result.stdout  # the cluster trains, not this machine
    assert "ray head" not in result.stdout  # each run gets its own head from KubeRay


def test_a_gpu_job_on_a_machine_without_gpus(job, cli):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has GPUs")
    checks = _checks(cli("doctor", job({"scale": {"gpus_per_worker": 1, "num_workers": 2}}),
                         "-o", "json"))
    assert checks["GPUs"] == {"name": "GPUs (2 asked for)", "ok": False,
                              "detail": "0 visible to torch", "needed": True,
                              "hint": checks["GPUs"]["hint"]}
    assert "gpus_per_worker: 0" in checks["GPUs"]["hint"]


def test_a_job_bigger_than_the_cluster_is_told_what_it_lacks(ray_head, s3_store, job, cli):
    result = cli("doctor", job({"target": {"address": ray_head.address},
                                "storage": {"uri": f"s3://{s3_store.bucket}/doctor",
                                            "endpoint_url": s3_store.endpoint},
                                "scale": {"num_workers": 4, "num_nodes": 2,
                                          "gpus_per_worker": 1}}))
    assert result.returncode == 1
    assert ("✗ cluster resources: 1 node, 2 CPUs, 0 GPUs; the job's 4 workers x 1 CPU, 1 GPU: "
            "short of 4 CPUs in all, 4 GPUs in all, 2 nodes with room for a worker (1 CPU, "
            "1 GPU)") in result.stdout.splitlines(), result.stdout
    assert "  fix: lower scale.num_workers" in result.stdout


def test_a_hub_model_is_checked_from_where_the_job_trains(ray_head, job, cli):
    """This machine reaches no hub, and nothing is in its hub cache: a run here could not load
    `gpt2`, so doctor says so before a run fails on it. A cluster elsewhere checks the name
    itself when the run starts."""
    here = cli("doctor", job({"model": {"name_or_path": "gpt2"},
                              "target": {"address": ray_head.address}}), "-o", "json")
    model = _checks(here)["model"]
    assert here.returncode == 1 and not model["ok"] and model["needed"], model
    assert model["detail"].startswith("not in the hub cache, and the hub does not answer (")
    assert "hf download gpt2 --local-dir DIR" in model["hint"]
    local = _checks(cli("doctor", job({"target": {"address": ray_head.address}}), "-o",
                        "json"))["model"]
    assert local["ok"] and local["detail"] == "a local folder with config.json"

    elsewhere = cli("doctor", job({"model": {"name_or_path": "gpt2"},
                                   "data": {"path": "s3://bucket/train.jsonl"},
                                   "storage": {"uri": "s3://bucket/runs"},
                                   "target": {"address": "http://10.255.255.1:8265"}}),
                    "-o", "json")
    model = _checks(elsewhere)["model"]
    assert model["ok"] and "downloads it when the run starts" in model["detail"], model


def test_an_s3_model_folder_is_checked_for_its_config(ray_head, s3_store, job, cli):
    """The job copies an s3:// model to each node: doctor asks the store for its config.json."""
    s3_store.client().put_object(Bucket=s3_store.bucket, Key="doctor-model/tiny/config.json",
                                 Body=b"{}")
    storage = {"uri": f"s3://{s3_store.bucket}/doctor", "endpoint_url": s3_store.endpoint}
    for folder, ok in (("tiny", True), ("nope", False)):
        uri = f"s3://{s3_store.bucket}/doctor-model/{folder}"
        result = cli("doctor", job({"model": {"name_or_path": uri}, "storage": storage,
                                    "target": {"address": ray_head.address}}), "-o", "json")
        model = _checks(result)["model"]
        assert model["ok"] is ok and result.returncode == (0 if ok else 1), result.stdout
        assert model["detail"] == ("an s3:// folder with config.json" if ok
                                   else f"no {uri}/config.json")


def test_without_a_job_file_it_checks_this_machine_and_the_default_head(ray_head, cli):
    result = cli("doctor")  # LAUNCH_RAY_ADDRESS points at the session's head
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"✓ ray head {ray_head.address}: Ray 2.60.0 (client 2.60.0)" in result.stdout
    assert "✓ cluster resources: 1 node, 2 CPUs, 0 GPUs" in result.stdout.splitlines()
    assert "storage" not in result.stdout
