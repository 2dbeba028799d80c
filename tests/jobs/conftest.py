"""Fixtures of the jobs tests."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture
def job_s3_settings(s3_store, tmp_path, monkeypatch):
    """What a job reading s3:// sees: the variables the launcher gives it for the session's
    store, and a temp folder (where the s3:// cache lives) of this test's own; that cache."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_store.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("LAUNCH_S3_PATH_STYLE", "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    return tmp_path / "temp" / "launch-data"
