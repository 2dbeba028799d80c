"""`launch cluster`: Kind cannot run here (no Docker engine, no kind), so what is checked is
what a user without those tools sees: one line naming what is missing, exit 1."""

from __future__ import annotations

import shutil

import pytest


@pytest.mark.parametrize("command", [("cluster", "up"), ("cluster", "down"),
                                     ("cluster", "load", "127.0.0.1:5000/launch/x:job-1")])
def test_cluster_commands_name_the_missing_tools(cli, command):
    if shutil.which("kind") and shutil.which("docker"):
        pytest.skip("kind and docker are installed: this test is for machines without them")
    result = cli(*command, env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "needs" in result.stderr and "not found: " in result.stderr and "kind" in result.stderr
