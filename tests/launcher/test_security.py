"""What a hostile bucket or run folder cannot do to the user who downloads from it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time

import pytest

from launcher import runs
from launcher.errors import LaunchError
from launcher.image.registry import Registry
from launcher.ray_dashboard import probe
from tests.support.ports import free_port
from tests.support.project import submitted_run_id
from tests.support.redirecting_registry import BLOB, PASSWORD, USER, RedirectingRegistry, Storage
from tests.support.s3_listing import CraftedBucket

RUN = "sec-20261206-120000-abcdef"


def record(storage: dict, run_dir: str) -> None:
    runs.save(runs.RunRecord(run_id=RUN, job_name="sec", target={"kind": "ray"},
                             run_dir=run_dir, storage=storage, submitted_at=time.time()))


@pytest.mark.parametrize("hostile", ["model/../../../../{outside}/planted",
                                     "/{outside}/planted", "model/..\\..\\planted"])
def test_a_download_never_writes_outside_its_folder(launch_home, cli, tmp_path, hostile):
    """`launch results --download DIR` against keys anyone who can write to the bucket may
    choose: one error line naming the key, exit 1, and nothing written anywhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    prefix = f"runs/sec/{RUN}"
    key = f"{prefix}/{hostile.format(outside=str(outside).lstrip('/'))}"
    objects = {f"{prefix}/status.json": b'{"state": "SUCCEEDED"}',
               f"{prefix}/model/adapter.bin": b"weights", key: b"planted"}
    with CraftedBucket("bucket", objects) as bucket:
        record({"uri": "s3://bucket/runs", "endpoint_url": bucket.url},
               f"s3://bucket/{prefix}")
        dest = tmp_path / "download"
        result = cli("results", RUN, "--download", dest,
                     env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert result.returncode == 1, result.stdout
    assert result.stderr.count("\n") == 1 and "refusing to download" in result.stderr
    assert f"s3://bucket/{key}:" in result.stderr  # the key, exactly as the bucket holds it
    assert not any(outside.rglob("*")) and not dest.exists()
    assert not any(tmp_path.parent.glob("**/planted"))


def test_symlinks_in_a_local_run_folder_are_not_followed_out_of_it(launch_home, cli, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("0600 contents")
    os.chmod(secret, 0o600)
    run_dir = tmp_path / "runs" / "sec" / RUN
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "status.json").write_text('{"state": "SUCCEEDED"}')
    (run_dir / "model" / "weights.bin").write_text("weights")
    (run_dir / "model" / "leak").symlink_to(secret)
    (run_dir / "model" / "same").symlink_to(run_dir / "model" / "weights.bin")
    record({"uri": str(tmp_path / "runs")}, str(run_dir))
    dest = tmp_path / "download"
    result = cli("results", RUN, "--download", dest)
    assert result.returncode == 0, result.stderr
    assert (dest / "model" / "weights.bin").read_text() == "weights"
    assert (dest / "model" / "same").read_text() == "weights"  # a link inside the run: kept
    assert not (dest / "model" / "leak").exists()


@pytest.fixture
def registry_login(monkeypatch):
    monkeypatch.setenv("LAUNCH_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("LAUNCH_REGISTRY_PASSWORD", PASSWORD)


def test_the_registry_login_goes_only_to_the_registry(registry_login):
    """A blob download the registry redirects to object storage, and an upload location on
    another host, reach that host without the login (urllib alone forwards it on a redirect).
    The registry itself answers only with the login, so it was sent there."""
    with Storage() as storage, RedirectingRegistry(storage) as registry:
        client = Registry(registry.url.removeprefix("http://"))
        assert client.blob("team/job", "sha256:abc") == BLOB
        assert client.push_blob("team/job", io.BytesIO(b"new layer"), 9, "sha256:def")
    assert [(method, path.split("?")[0]) for method, path, _ in storage.seen] == [
        ("GET", "/blobs/sha256:abc"), ("PUT", "/uploads/1")]
    assert storage.authorizations() == []


def test_a_plain_http_token_service_on_another_host_gets_no_login(registry_login):
    """A Bearer challenge whose realm is plain http on another origin would carry the login
    in the clear to a host the registry named: refused with one line, nothing sent there."""
    with Storage() as storage, RedirectingRegistry(
            storage, bearer_realm=f"{storage.url}/token") as registry:
        client = Registry(registry.url.removeprefix("http://"))
        with pytest.raises(LaunchError, match="plain http on another host") as refused:
            client.blob("team/job", "sha256:abc")
    assert "\n" not in str(refused.value)
    assert storage.seen == []


OTHER_UID = 65534  # nobody: the other local user


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="handing a file to another user (chown) and acting as that user "
                           "(setpriv) need root and util-linux's setpriv")
def test_a_ray_token_another_user_could_plant_is_refused(cli, tmp_path):
    """The local head's token decides who may run jobs as this user. LAUNCH_HOME is made 0700
    with the token directly in it (not in Ray's temp dir, which Ray makes 0777), so another
    user cannot put one there; a token file that is someone else's, or that others can read,
    is refused with one line, and no head starts with it."""
    home = tmp_path / "home"
    env = {"LAUNCH_HOME": str(home), "LAUNCH_RAY_GCS_PORT": str(free_port())}
    address = f"http://127.0.0.1:{free_port()}"
    assert cli("local", "down", env=env).returncode == 0  # any command makes LAUNCH_HOME
    assert home.stat().st_mode & 0o777 == 0o700
    token = home / "auth_token"
    planted = subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}",
                              "--clear-groups", "sh", "-c", f"echo planted > {token}"],
                             capture_output=True, text=True)
    assert planted.returncode != 0 and "Permission denied" in planted.stderr
    assert not token.exists()

    token.write_text("planted")  # as if it got there anyway: another user's file
    os.chmod(token, 0o600)
    os.chown(token, OTHER_UID, OTHER_UID)
    for problem in (f"owned by uid {OTHER_UID}", "mode is 0644, not 0600"):
        up = cli("local", "up", "--address", address, env=env, timeout=120)
        assert up.returncode != 0 and up.stderr.count("\n") == 1, up.stderr
        assert f"refusing the Ray token in {token}" in up.stderr and problem in up.stderr
        assert probe(address, {}) is None  # no head started
        os.chown(token, os.geteuid(), os.getegid())  # then one of ours, but readable by all
        os.chmod(token, 0o644)


def test_a_job_files_address_gets_no_ray_token_until_the_user_names_it(ray_head, write_job,
                                                                        cli, tmp_path):
    """The user's Ray token (here ~/.ray/auth_token, the session head's) goes only to an
    address the user named. A job file naming the head is refused by it, with one line that
    says what to do and nothing submitted; `--address` sends the token, and the address stays
    named for the run's later commands. The session head stands in for the user's cluster:
    launch here has a LAUNCH_HOME of its own, so it does not know the head as one it started."""
    home = tmp_path / "user"
    (home / ".ray").mkdir(parents=True)
    token = home / ".ray" / "auth_token"
    token.write_text(open(ray_head.token_path).read())
    token.chmod(0o600)
    env = {"HOME": str(home), "LAUNCH_HOME": str(tmp_path / "launch-home"),
           "LAUNCH_RAY_ADDRESS": ""}  # no address named outside the job file
    rows = tmp_path / "rows.jsonl"  # the first row is fine, the rest fails the run in seconds
    rows.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{broken\n")
    job = write_job({"target": {"address": ray_head.address}, "data": {"path": str(rows)},
                     "model": {"name_or_path": "gpt2"}})  # never loaded: the data fails first

    def head_check(*flags):
        report = json.loads(cli("doctor", job, "-o", "json", *flags, env=env).stdout)
        return next(check for check in report["checks"] if check["name"].startswith("ray head"))

    withheld = head_check()
    assert not withheld["ok"] and "only to an address you named" in withheld["detail"]
    assert "--address" in withheld["hint"]
    refused = cli("submit", job, env=env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "pass it as --address (or set RAY_ADDRESS" in refused.stderr
    assert not list((tmp_path / "runs").iterdir())  # nothing of the run was written

    assert head_check("--address", ray_head.address)["ok"]
    submitted = cli("submit", job, "--address", ray_head.address, env=env)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted_run_id(submitted)
    assert cli("status", run_id, env=env).returncode == 0  # no --address: it was named once
    with_env = cli("doctor", job, "-o", "json", env={**env, "LAUNCH_HOME": str(tmp_path / "b"),
                                                     "RAY_ADDRESS": ray_head.address})
    assert next(c for c in json.loads(with_env.stdout)["checks"]
                if c["name"].startswith("ray head"))["ok"]  # RAY_ADDRESS names it too
