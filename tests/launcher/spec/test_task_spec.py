"""`launch validate` on task, slice and export settings that cannot work: one located line."""

from __future__ import annotations

import json

import pytest

from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

SECTIONS = EXAMPLES / "data" / "debian_sections.jsonl"
SYNOPSES = EXAMPLES / "data" / "debian_synopsis.jsonl"


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A folder with a GPT-2 (decoder-only) config: all `launch validate` reads of a model."""
    from transformers import GPT2Config

    folder = tmp_path_factory.mktemp("gpt2")
    GPT2Config(n_layer=2, n_embd=64, n_head=2).save_pretrained(folder)
    return folder


def job(task: str, data, model, extra: str = "") -> str:
    return (f"name: task-test\ntask: {task}\nmodel:\n  name_or_path: {model}\n"
            f"data:\n  path: {data}\n{extra}")


def jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_seq2seq_needs_an_encoder_decoder(tmp_path, cli, gpt2_dir):
    assert_one_located_line(cli, tmp_path / "job.yaml", job("seq2seq", SYNOPSES, gpt2_dir),
                            "name_or_path", "task seq2seq needs an encoder-decoder model")


def test_a_classifier_needs_two_classes(tmp_path, cli, gpt2_dir):
    data = jsonl(tmp_path / "one.jsonl", [{"text": f"row {i}", "label": "admin"}
                                          for i in range(5)])
    assert_one_located_line(cli, tmp_path / "job.yaml",
                            job("seq_classification", data, gpt2_dir, "  label_field: label\n"),
                            "label_field", "holds 1 distinct value(s) (admin)")


def test_a_tagger_needs_two_tags(tmp_path, cli, gpt2_dir):
    data = jsonl(tmp_path / "tags.jsonl", [{"tokens": ["vim", "edits"], "tags": ["O", "O"]}])
    text = job("token_classification", data, gpt2_dir, "  tags_field: tags\n")
    assert_one_located_line(cli, tmp_path / "job.yaml", text, "tags_field",
                            "token_classification needs at least 2 classes")


def test_slice_column_must_exist(tmp_path, cli, gpt2_dir):
    assert_one_located_line(cli, tmp_path / "job.yaml",
                            job("seq_classification", SECTIONS, gpt2_dir, "  slice_field: size\n"),
                            "slice_field", "column `size` is not in debian_sections.jsonl")


def test_prefix_tuning_cannot_be_merged(tmp_path, cli, gpt2_dir):
    text = job("causal_lm", EXAMPLES / "data" / "debian_describe.jsonl", gpt2_dir,
               "method:\n  type: prefix\nexport:\n  format: merged\n")
    assert_one_located_line(cli, tmp_path / "job.yaml", text, "format: merged",
                            "cannot be merged into the base weights")


@pytest.mark.parametrize("task,data,extra", [
    ("seq_classification", SECTIONS, "  slice_field: length\nexport:\n  format: merged\n"),
    ("causal_lm", EXAMPLES / "data" / "debian_describe.jsonl", "  slice_field: package\n"),
], ids=["classifier-merged-sliced", "causal-sliced"])
def test_valid_task_settings(tmp_path, cli, gpt2_dir, task, data, extra):
    path = tmp_path / "job.yaml"
    path.write_text(job(task, data, gpt2_dir, extra))
    result = cli("validate", path)
    assert result.returncode == 0, result.stderr
