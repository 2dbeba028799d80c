"""`launch validate` on bad job files: one line per problem, FILE:LINE:COL, exit 2, no traceback."""

from __future__ import annotations

import os

import pytest

from bench.hostile_job_files import HOSTILE
from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

DATA = EXAMPLES / "data" / "debian_describe.jsonl"
VALID = f"""\
name: spec-test
model:
  name_or_path: gpt2
data:
  path: {DATA}
"""

# (case id, job file text, text on the line the error must point at, words the message must say)
CASES = [
    ("unknown-top-level-key", VALID + "epochs: 3\n", "epochs: 3", "unknown key"),
    ("unknown-nested-key", VALID + "training:\n  lr: 0.1\n", "lr: 0.1", "learning_rate"),
    ("typo-gets-a-suggestion", VALID + "training:\n  learning_rat: 0.1\n", "learning_rat",
     "did you mean `learning_rate`"),
    ("wrong-type", VALID + "training:\n  epochs: many\n", "epochs: many", "valid number"),
    ("negative-lr", VALID + "training:\n  learning_rate: -0.001\n", "learning_rate",
     "greater than 0"),
    ("zero-workers", VALID + "scale:\n  num_workers: 0\n", "num_workers",
     "greater than or equal to 1"),
    ("zero-stage-4", VALID + "scale:\n  deepspeed:\n    stage: 4\n", "stage: 4", "0, 1, 2 or 3"),
    ("multi-node-needs-shared-storage", VALID + "scale:\n  num_workers: 2\n  num_nodes: 2\n",
     "num_nodes: 2", "multi-node training needs shared storage"),
    ("more-nodes-than-workers", VALID + "scale:\n  num_workers: 2\n  num_nodes: 3\n"
     "storage:\n  uri: s3://bucket/x\n", "scale:", "a node without a worker trains nothing"),
    ("fp16-on-cpu", VALID + "scale:\n  precision: fp16\n", "scale:", "fp16 needs gpus_per_worker"),
    ("two-warmups", VALID + "training:\n  warmup_ratio: 0.1\n  warmup_steps: 5\n",
     "warmup_steps: 5", "set warmup_steps or warmup_ratio, not both"),
    ("early-stopping-without-evaluations", VALID + "training:\n  early_stopping:\n"
     "    patience: 2\n", "early_stopping:", "set training.eval_steps"),
    ("early-stopping-on-a-train-metric", VALID + "training:\n  eval_steps: 5\n"
     "  early_stopping:\n    metric: loss\n", "metric: loss", "watches an evaluation metric"),
    ("offload-params-needs-zero3", VALID + "scale:\n  deepspeed:\n    offload_params: true\n",
     "deepspeed:", "needs stage: 3"),
    ("missing-data-file", VALID.replace(str(DATA), "nope.jsonl"), "path: nope.jsonl",
     "no such file"),
    ("unsupported-data-type", VALID.replace(str(DATA), str(EXAMPLES / "build_tiny_model.py")),
     "  path:", "unsupported file type"),
    ("data-column-missing", VALID + "  prompt_field: question\n", "prompt_field",
     "column `question` is not in"),
    ("validation-fraction-too-big", VALID + "  validation_fraction: 1.5\n",
     "validation_fraction", "less than 1"),
    ("template-without-prompt", VALID + "  prompt_template: 'Q: '\n", "prompt_template",
     "must contain `{prompt}`"),
    ("missing-model-dir", VALID.replace("gpt2", "./no-such-model"), "name_or_path",
     "not a model directory"),
    ("s3-model-needs-s3-storage", VALID.replace("gpt2", "s3://bucket/models/tiny"),
     "name_or_path", "an s3:// model is read with the storage section's S3 settings"),
    ("missing-required-section", VALID.replace("model:\n  name_or_path: gpt2\n", ""),
     "name: spec-test", "required key is missing"),
    ("bad-name", VALID.replace("spec-test", "My Job"), "name: My Job", "lowercase letters"),
    ("bad-bucket-name", VALID + "storage:\n  uri: s3://My_Bucket/x\n", "uri:",
     "not a valid S3 bucket name"),
    ("s3-with-one-slash", VALID + "storage:\n  uri: s3:/bucket/x\n", "uri:",
     "write s3://bucket/x (two slashes after s3:)"),
    ("unknown-storage-scheme", VALID + "storage:\n  uri: gs://bucket/x\n", "uri:",
     "use a local path or s3://bucket/prefix"),
    ("endpoint-without-s3", VALID + "storage:\n  uri: ./runs\n  endpoint_url: http://h:1\n",
     "storage:", "endpoint_url: used only with an s3:// uri"),
    ("credentials-never-in-the-spec", VALID + "storage:\n  uri: s3://bucket/x\n"
     "  secret_key: abc\n", "secret_key", "unknown key"),
    ("duplicate-key", VALID + "name: again\n", "name: again", "duplicate key"),
    ("invalid-yaml", VALID + "training: [unclosed\n", "training: [unclosed", "invalid YAML"),
    ("tab-indentation", VALID + "training:\n\tepochs: 1\n", "\tepochs", "invalid YAML"),
    ("top-level-list", "- name: x\n", "- name: x", "expected a mapping"),
    ("target-address-not-http", VALID + "target:\n  address: 127.0.0.1:8265\n", "address:",
     "address '127.0.0.1:8265' is not a Ray dashboard URL"),
    ("lora-target-modules-wrong-type", VALID + "method:\n  target_modules: 5\n",
     "target_modules", "valid list"),
]


@pytest.mark.parametrize("text,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_gives_located_one_line_error(tmp_path, cli, text, needle, words):
    assert_one_located_line(cli, tmp_path / "job.yaml", text, needle, words)


def test_every_problem_is_reported_at_once(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(VALID + "training:\n  learning_rate: 0\n  epochs: -1\n"
                   "scale:\n  num_workers: 0\n")
    result = cli("validate", job)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    located = {(int(line.split(":")[1]), line.split(": ")[1]) for line in lines}
    assert located == {(7, "training.learning_rate"), (8, "training.epochs"),
                       (10, "scale.num_workers")}, lines


@pytest.mark.parametrize("content,words", [
    (b"", "the file is empty"),
    (b"   \n# only a comment\n", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file"),
    (b"name: x\x00\n", "not a text file"),
    (HOSTILE["billion-laughs"], "more than 10000 values (aliases expanded)"),
    (HOSTILE["too-big"], "more than 64 KiB"),
    (HOSTILE["too-deep"], "nested more than 32 levels deep"),
], ids=["empty", "only-comments", "binary", "nul-bytes", "billion-laughs", "too-big",
        "too-deep"])
def test_unusable_file_contents(tmp_path, cli, content, words):
    job = tmp_path / "job.yaml"
    job.write_bytes(content)
    result = cli("validate", job)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(str(job)) and words in result.stderr


def test_missing_file_and_directory(tmp_path, cli):
    for path, words in ((tmp_path / "absent.yaml", "no such file"), (tmp_path, "is a directory")):
        result = cli("validate", path)
        assert result.returncode == 2
        assert result.stderr.strip().startswith(f"{path}: {words}")
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode, so an "
                    "unreadable file cannot be made here")
def test_unreadable_file(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(VALID)
    job.chmod(0)
    result = cli("validate", job)
    assert result.returncode == 2
    assert "permission denied" in result.stderr


def test_valid_spec_prints_ok(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(VALID)
    result = cli("validate", job)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{job}: OK"


def test_quickstart_example_is_valid(cli):
    result = cli("validate", EXAMPLES / "quickstart.yaml")
    # The tiny model is built by a script, so only the model folder may be missing.
    problems = [line for line in result.stderr.splitlines() if "not a model directory" not in line]
    assert problems == [] and result.returncode in (0, 2)
