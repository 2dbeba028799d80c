"""What a hostile bucket or run folder cannot do to the user who downloads from it."""

from __future__ import annotations

import io
import os
import time

import pytest

from launcher import runs
from launcher.errors import LaunchError
from launcher.image.registry import Registry

from support.redirecting_registry import BLOB, PASSWORD, USER, RedirectingRegistry, Storage
from support.s3_listing import CraftedBucket

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
