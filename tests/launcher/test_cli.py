"""The CLI as a user meets it before any cluster: help, schema, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("validate", "schema", "submit", "status", "logs", "list", "stop", "results",
                    "local", "doctor", "init"):
        assert command in result.stdout


def test_version_prints_the_installed_version(cli):
    from importlib.metadata import version

    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"launch {version('launch')}\n")


def test_on_off_flags_are_shown_without_a_value(cli):
    """`--follow` takes no value: help must not suggest `--follow <bool>` (a user who typed
    `launch logs --follow true` got "unknown run id `true`")."""
    help_text = cli("logs", "--help", env={"COLUMNS": "100"}).stdout
    assert "<bool>" not in help_text
    follow = next(line for line in help_text.splitlines() if " --follow " in line)
    assert follow.split() == ["-f,", "--follow", "Keep", "streaming", "until", "it", "ends."]


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


def test_init_keeps_the_users_data_only_when_the_starter_reads_it(cli, tmp_path):
    """A folder that already holds data/train.jsonl keeps it; a starter for another task would
    fail validation on it, so nothing is written and the error names the task that fits."""
    project = tmp_path / "labelled"
    data = project / "data" / "train.jsonl"
    data.parent.mkdir(parents=True)
    rows = "".join(json.dumps({"text": f"row {i}", "label": "ab"[i % 2]}) + "\n"
                   for i in range(20))
    data.write_text(rows)
    refused = cli("init", project)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {data} exists with columns label, text, not the prompt, response a causal_lm "
        "starter reads: pass --task seq_classification, or pick another folder")
    assert not (project / "job.yaml").exists()
    kept = cli("init", project, "--task", "seq_classification")
    assert kept.returncode == 0, kept.stderr
    assert f"kept {data}: its columns suit the job" in kept.stdout
    assert data.read_text() == rows
    assert cli("validate", project / "job.yaml").stdout.strip() == f"{project / 'job.yaml'}: OK"


def test_set_overrides_a_field_checked_like_the_file(cli, write_job, tiny_model):
    """`--set KEY.PATH=VALUE` (a YAML value) replaces the file's value on validate and submit;
    a bad value or key is named as the flag's, not as the file's line."""
    job = write_job({"model": {"name_or_path": str(tiny_model)}})
    assert cli("validate", job, "--set", "method.r=4").stdout.strip() == f"{job}: OK"
    shown = cli("submit", job, "--dry-run", "--set", "training.max_steps=3",
                "--set", "method.target_modules=[c_attn]", "--set", "training.max_steps=5")
    assert shown.returncode == 0, shown.stderr
    resolved = json.loads(shown.stdout)
    assert resolved["training"]["max_steps"] == 5  # the last flag for a key wins
    assert resolved["method"]["target_modules"] == ["c_attn"]
    wrong = cli("validate", job, "--set", "training.learning_rate=fast")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(f"{job}: training.learning_rate (from the command line): ")
    unknown = cli("validate", job, "--set", "training.lr=1e-4")
    assert unknown.returncode == 2 and "training.lr (from the command line): unknown key" in \
        unknown.stderr
    malformed = cli("validate", job, "--set", "lr")
    assert (malformed.returncode, malformed.stderr.strip()) == (
        2, "--set lr: write KEY.PATH=VALUE, e.g. --set training.learning_rate=1e-4")


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
    assert result.stderr.strip() == ("error: unknown run id `no-such-run`; `launch list` shows "
                                     "the runs")


def test_reference_is_generated_from_the_schema(cli):
    from tests.support.project import ROOT

    page = (ROOT / "docs" / "reference.md").read_text()
    start, end = "<!-- reference:start -->\n", "<!-- reference:end -->"
    documented = page[page.index(start) + len(start):page.index(end)]
    assert documented == cli("schema", "--markdown").stdout, (
        "docs/reference.md's job.yaml reference is stale: run scripts/update_reference.py")


def test_init_writes_a_commented_job_that_validates_as_written(cli, tmp_path):
    project = tmp_path / "my-project"
    made = cli("init", project)
    assert made.returncode == 0, made.stderr
    job = project / "job.yaml"
    text = job.read_text()
    assert text.startswith("# my-project: fine-tune a causal language model")
    assert "name: my-project" in text and text.count("#") > 20  # every section explained
    assert cli("validate", job).stdout.strip() == f"{job}: OK"
    rows = (project / "data" / "train.jsonl").read_text().splitlines()
    assert len(rows) >= 10 and set(json.loads(rows[0])) == {"prompt", "response"}

    again = cli("init", project)  # never overwrites a job file by accident
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
    assert job.read_text() == text
    forced = cli("init", job, "--force", "--task", "causal_lm", "--output", "json")
    assert json.loads(forced.stdout) == {"task": "causal_lm", "job_file": str(job),
                                         "data_file": None}  # the user's data is kept

    unknown = cli("init", tmp_path / "other.yaml", "--task", "image_classification")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("error: unknown task `image_classification`; launch "
                                      "knows: causal_lm, seq_classification, "
                                      "token_classification, seq2seq")


def test_output_json_is_one_document_on_stdout_for_results_and_errors(cli, tmp_path, write_job):
    # The quickstart with a hub model id: valid on a fresh checkout (no demo model built yet).
    job = write_job({"model": {"name_or_path": "gpt2"}})
    valid = cli("validate", job, "-o", "json")
    assert valid.returncode == 0, valid.stderr
    assert json.loads(valid.stdout) == {"file": str(job), "valid": True, "name": "quickstart",
                                        "target": "ray"}

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad_Name\nmodel: {name_or_path: gpt2}\n")
    invalid = cli("validate", bad, "--output=json")
    assert invalid.returncode == 2
    document = json.loads(invalid.stdout)
    assert document["exit_code"] == 2 and len(document["problems"]) == 2
    assert any(line.startswith(f"{bad}:1:1: name: use lowercase") for line in document["problems"])
    assert invalid.stderr.splitlines() == document["problems"]  # people still read stderr

    unknown = cli("status", "no-such-run", "--output", "json")
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"].startswith("unknown run id `no-such-run`")
