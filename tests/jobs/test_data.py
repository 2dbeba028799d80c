"""Data loading and tokenization: the loss is on response tokens only, unless asked."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES
from jobs.data import IGNORE_INDEX, DataError, load_splits, tokenize
from launcher.spec.models import DataSpec

DATA = str(EXAMPLES / "data" / "debian_describe.jsonl")


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_split_is_seeded_and_sized():
    spec = DataSpec(path=DATA, validation_fraction=0.2)
    train, validation = load_splits(spec, seed=1)
    again, _ = load_splits(spec, seed=1)
    assert len(validation) == 300 and len(train) == 1200
    assert train["prompt"][:5] == again["prompt"][:5]


def test_prompt_tokens_are_masked(tokenizer):
    spec = DataSpec(path=DATA, prompt_template="{prompt}\nDescription: ", max_length=64)
    _, validation = load_splits(spec, seed=0)
    rows = tokenize(validation.select(range(20)), tokenizer, spec)
    for row in rows:
        labels, ids = row["labels"], row["input_ids"]
        masked = labels.index(next(label for label in labels if label != IGNORE_INDEX))
        assert masked > 0 and all(label == IGNORE_INDEX for label in labels[:masked])
        assert labels[masked:] == ids[masked:]  # every response token is learned
        assert len(ids) <= 64
    short = [row for row in rows if len(row["input_ids"]) < 64]
    assert short and all(row["input_ids"][-1] == tokenizer.eos_token_id for row in short)


def test_train_on_prompt_keeps_every_label(tokenizer):
    spec = DataSpec(path=DATA, train_on_prompt=True, max_length=64)
    _, validation = load_splits(spec, seed=0)
    row = tokenize(validation.select(range(1)), tokenizer, spec)[0]
    assert row["labels"] == row["input_ids"]


def test_unreadable_rows_name_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{this is not json\n")
    with pytest.raises(DataError, match=f"cannot read data file {bad}"):
        load_splits(DataSpec(path=str(bad)), seed=0)


def test_empty_rows_are_dropped(tmp_path):
    rows = [{"prompt": "p", "response": "r"}, {"prompt": "", "response": "r"},
            {"prompt": "p", "response": None}, {"prompt": "q", "response": "s"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    train, validation = load_splits(DataSpec(path=str(path), validation_fraction=0.5), seed=0)
    assert len(train) + len(validation) == 2
