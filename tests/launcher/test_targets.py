"""The target registry and the `target` union: which kinds exist, what each declares it needs,
where a Ray target's address comes from, and runs recorded before the registry."""

from __future__ import annotations

import json
import typing
from http.server import BaseHTTPRequestHandler
from importlib import metadata

import pytest
import yaml

from launcher import api, runs
from launcher.errors import LaunchError, TargetError
from launcher.spec.load import load_spec
from launcher.spec.target import KINDS, TargetSpec
from launcher.targets import TARGETS, make_target, ray_address, target_settings
from launcher.targets.kubernetes import KubernetesTarget
from launcher.targets.ray import RayTarget
from tests.support.loopback_http import LoopbackHTTP
from tests.support.ports import free_port
from tests.support.project import EXAMPLES

ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS", "LAUNCH_RAY_ADDRESS")


@pytest.fixture(autouse=True)
def no_address_variables(monkeypatch):
    for name in ADDRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def job(tmp_path, target: dict, storage: str | None = None) -> typing.Any:
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec["model"]["name_or_path"] = "gpt2"
    spec["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
    spec["storage"]["uri"] = storage or str(tmp_path / "runs")
    spec["target"] = target
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_every_kind_the_spec_admits_has_one_implementation():
    members = typing.get_args(typing.get_args(TargetSpec)[0])
    named = {kind for member in members
             for kind in typing.get_args(member.model_fields["kind"].annotation)}
    assert set(TARGETS) == set(KINDS) == named - {"local"}  # `local`: the old name of `ray`
    assert isinstance(make_target(target_settings({})), RayTarget)
    assert isinstance(make_target(target_settings({"kind": "kubernetes"})), KubernetesTarget)


def test_an_unknown_kind_names_the_valid_ones(tmp_path, cli):
    with pytest.raises(LaunchError, match="unknown target kind `slurm`; the kinds are: ray, "
                       "kubernetes"):
        target_settings({"kind": "slurm"})
    result = cli("validate", job(tmp_path, {"kind": "slurm"}))
    assert result.returncode == 2
    assert "target.kind: unknown kind `slurm`; one of: ray, local, kubernetes" in result.stderr


def test_local_is_the_old_name_of_ray(tmp_path):
    spec = load_spec(job(tmp_path, {"kind": "local"}))
    assert spec.target.kind == "ray" and spec.target.address == "http://127.0.0.1:8265"


def test_the_address_comes_from_the_flag_the_file_then_rays_variables(tmp_path, monkeypatch):
    file_address = {"kind": "ray", "address": "http://127.0.0.1:9001"}
    monkeypatch.setenv("LAUNCH_RAY_ADDRESS", "http://127.0.0.1:9004")
    assert ray_address() == "http://127.0.0.1:9004"
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9003")
    assert ray_address() == "http://127.0.0.1:9003"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:9002")
    assert ray_address() == "http://127.0.0.1:9002"
    assert load_spec(job(tmp_path, file_address)).target.address == "http://127.0.0.1:9001"
    flag = {"target": {"address": "http://127.0.0.1:9000/"}}
    assert load_spec(job(tmp_path, file_address), flag).target.address == \
        "http://127.0.0.1:9000"


def test_a_ray_client_address_in_ray_address_is_named(tmp_path, cli, monkeypatch):
    """RAY_ADDRESS often holds a Ray Client (ray://) or GCS address: not the Jobs API."""
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.5:10001")
    result = cli("validate", job(tmp_path, {"kind": "ray"}))
    assert result.returncode == 2
    assert "target.address: RAY_ADDRESS 'ray://10.0.0.5:10001' is not a Ray dashboard URL" \
        in result.stderr and result.stderr.count("\n") == 1
    with pytest.raises(LaunchError, match="RAY_ADDRESS 'ray://10.0.0.5:10001'"):
        ray_address()


@pytest.mark.parametrize("address,here", [
    ("http://127.0.0.1:8265", True), ("http://localhost:8265", True),
    ("http://[::1]:8265", True), ("http://10.0.0.5:8265", False),
    ("https://ray.example.com", False)])
def test_only_a_loopback_address_is_this_machine(address, here):
    needs = target_settings({"address": address}).capabilities
    assert (needs.starts_cluster, needs.trains_here, needs.shares_this_machine) == (here,) * 3
    assert not needs.runs_from_image


def test_a_cluster_elsewhere_is_given_nothing_it_cannot_read(tmp_path, cli):
    """Storage, data and model folders on this machine are out of a remote cluster's reach:
    each is refused in one line naming its field, unless the target says the nodes share
    this machine's files."""
    elsewhere = {"address": "http://10.0.0.5:8265"}
    result = cli("validate", job(tmp_path, elsewhere))
    assert result.returncode == 2
    assert "storage.uri: kind ray needs storage.uri on s3:// (the cluster at " \
        "http://10.0.0.5:8265 cannot reach a folder on this machine)" in result.stderr

    remote = job(tmp_path, elsewhere, storage="s3://bucket/runs")
    result = cli("validate", remote)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"data.path: {EXAMPLES / 'data' / 'debian_describe.jsonl'}: the Ray cluster at " \
        "http://10.0.0.5:8265 cannot read this machine's files; upload the data to s3://" \
        in result.stderr and "job.yaml:" in result.stderr  # located in the file

    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = yaml.safe_load(remote.read_text())
    spec["data"]["path"] = "s3://bucket/data/train.jsonl"
    spec["model"]["name_or_path"] = str(model)
    remote.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = cli("validate", remote)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"model.name_or_path: {model}: the Ray cluster at http://10.0.0.5:8265 cannot " \
        "read this machine's files; upload the folder to s3://" in result.stderr

    for model in ("gpt2", "s3://bucket/models/tiny"):
        spec["model"]["name_or_path"] = model
        remote.write_text(yaml.safe_dump(spec, sort_keys=False))
        assert cli("validate", remote).returncode == 0, (model, cli("validate", remote).stderr)
    shared = job(tmp_path, {**elsewhere, "shared_filesystem": True})
    assert cli("validate", shared).returncode == 0, cli("validate", shared).stderr


def test_launch_never_starts_a_head_for_an_address_elsewhere(tmp_path, monkeypatch):
    """0.0.0.0 reaches this machine without being a loopback name, so launch treats it as
    another cluster: nothing answers on the port, and no head is started there (a LAUNCH_HOME
    of its own: the session's holds the session's head)."""
    monkeypatch.setenv("LAUNCH_HOME", str(tmp_path))
    target = RayTarget.at(f"http://0.0.0.0:{free_port()}")
    with pytest.raises(TargetError, match="^target.address: no Ray head answers at .*launch "
                       "starts heads only on this machine") as refused:
        target.prepare()
    assert refused.value.exit_code == 2
    assert not (tmp_path / "ray").exists()


class OlderRayDashboard(BaseHTTPRequestHandler):
    """Stands in for the dashboard of a head on Ray 2.59.0, which cannot be installed here
    beside launch's pinned Ray: it answers the Jobs API's version endpoint as Ray does, refuses
    everything else, and keeps every request it saw."""

    seen: list[str] = []

    def _answer(self, code: int, body: dict) -> None:
        self.seen.append(f"{self.command} {self.path}")
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/api/version":
            return self._answer(200, {"version": "4", "ray_version": "2.59.0",
                                      "ray_commit": "0" * 40, "session_name": "older"})
        return self._answer(404, {})

    do_POST = do_PUT = lambda self: self._answer(500, {})  # noqa: E731, N815

    def log_message(self, *args) -> None:
        pass


def test_a_cluster_on_another_ray_is_refused_before_anything_is_submitted(tmp_path, cli):
    with LoopbackHTTP(OlderRayDashboard) as dashboard:
        result = cli("submit", job(tmp_path, {"address": dashboard.url}), "--address",
                     dashboard.url)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"target.address: the Ray cluster at {dashboard.url} runs Ray 2.59.0, and launch's job "
        f"code needs Ray {metadata.version('ray')} (this client's)"), result.stderr
    assert set(OlderRayDashboard.seen) == {"GET /api/version"}  # no code, no job
    assert not list(tmp_path.rglob("spec.json"))


@pytest.mark.parametrize("old,settings", [
    ({"target": "local", "address": "http://127.0.0.1:8265"},
     {"kind": "ray", "address": "http://127.0.0.1:8265"}),
    ({"target": "kubernetes", "address": "kubernetes://ml/arn:aws:eks:x:1:cluster/gpu"},
     {"kind": "kubernetes", "kubernetes": {"namespace": "ml",
                                           "context": "arn:aws:eks:x:1:cluster/gpu"}})])
def test_runs_recorded_before_the_registry_still_load(launch_home, old, settings):
    record = {"run_id": "old-run", "job_name": "old", "run_dir": "/tmp/x", "storage": {},
              "submitted_at": 1.0, **old}
    (launch_home / "runs").mkdir(exist_ok=True)
    (launch_home / "runs" / "old-run.json").write_text(json.dumps(record))
    loaded = runs.load("old-run")
    assert target_settings(loaded.target) == target_settings(settings)


def test_address_flag_on_a_kubernetes_run_is_one_line(launch_home):
    runs.save(runs.RunRecord(run_id="kube-run", job_name="kube", run_dir="s3://b/x",
                             target={"kind": "kubernetes"}, storage={}, submitted_at=1.0))
    with pytest.raises(LaunchError, match="target.address: the kubernetes target has no such "
                       "setting"):
        api.record("kube-run", address="http://127.0.0.1:8265")
    moved = api.record("kube-run")
    assert moved.target == {"kind": "kubernetes"}


def test_finished_runs_are_seen_with_no_head_answering(launch_home, cli, tmp_path):
    """After `launch local down` (or with the cluster gone), status and list still show the
    runs submitted from here, as their storage recorded them, and say so."""
    address = f"http://127.0.0.1:{free_port()}"  # nothing answers there
    run_dir = tmp_path / "runs" / "gone" / "gone-20261206-120000-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"state": "SUCCEEDED", "updated_at": 1.0,
                                                     "ended_at": 2.0}))
    runs.save(runs.RunRecord(run_id=run_dir.name, job_name="gone", run_dir=str(run_dir),
                             target={"kind": "ray", "address": address},
                             storage={"uri": str(tmp_path / "runs")}, submitted_at=1.0))
    shown = cli("status", run_dir.name)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"{run_dir.name}: SUCCEEDED"
    assert f"live state unavailable (no Ray head answers at {address}" in shown.stdout
    listed = cli("list", "--address", address, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["run_id"], row["state"], row["source"]) == (run_dir.name, "SUCCEEDED", "storage")
    assert "the cluster does not answer" in cli("list", "--address", address).stderr


def test_local_up_starts_heads_on_this_machine_only(cli):
    result = cli("local", "up", "--address", "http://10.0.0.5:8265")
    assert result.returncode == 1
    assert "starts a head on this machine only" in result.stderr
    assert result.stderr.count("\n") == 1
