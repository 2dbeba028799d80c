"""The CLI as a user meets it before any cluster: help, schema, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("validate", "schema", "submit", "status", "logs", "list", "stop", "results",
                    "local"):
        assert command in result.stdout


def test_schema_is_json_schema_with_a_description_on_every_field(cli):
    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "model", "data"}
    models = [schema, *schema["$defs"].values()]
    for model in models:
        assert model.get("additionalProperties") is False, model["title"]
        for name, field in model["properties"].items():
            # A section's field may carry its description on the referenced definition.
            ref = field.get("$ref", "").removeprefix("#/$defs/")
            described = field.get("description") or schema["$defs"].get(ref, {}).get("description")
            assert described, f"{model['title']}.{name} has no description"


def test_cli_start_imports_no_heavy_modules():
    # `launch --help` and `launch validate` must stay fast: ray, torch and boto3 load lazily.
    code = ("import sys, launcher.cli, launcher.spec.load; "
            "print(sorted(m for m in ('ray', 'torch', 'transformers', 'boto3') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_unknown_run_id_is_a_one_line_error(cli, launch_home):
    result = cli("results", "no-such-run")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown run id `no-such-run`; `launch list` shows the runs"


def test_readme_reference_is_generated_from_the_schema(cli):
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- reference:start -->\n", "<!-- reference:end -->"
    documented = readme[readme.index(start) + len(start):readme.index(end)]
    assert documented == cli("schema", "--markdown").stdout, (
        "README's job.yaml reference is stale: run scripts/update_readme_reference.py")
