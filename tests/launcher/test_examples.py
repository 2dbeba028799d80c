"""Every job file shipped in examples/ validates as a user would validate it: the tiny GPT-2
the examples name is built by examples/build_tiny_model.py (here: the session's), and the hub
models stay hub names (validate never downloads)."""

from __future__ import annotations

import pytest
import yaml

from launcher.spec.load import load_spec
from tests.support.project import EXAMPLES

TINY = "./models/tiny-gpt2"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates(path, tiny_model):
    written = yaml.safe_load(path.read_text())["model"]["name_or_path"]
    built = {"model": {"name_or_path": str(tiny_model)}} if written == TINY else None
    spec = load_spec(path, built)
    assert spec.name and spec.data.path
