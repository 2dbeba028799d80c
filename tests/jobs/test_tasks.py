"""The tasks' encoding: labels, prompt masking, tags aligned to sub-words, seq2seq targets."""

from __future__ import annotations

import json

import pytest

from jobs.data import DataError
from jobs.tasks import IGNORE_INDEX, encode, label_names, task_for
from launcher.spec.data import DataSpec
from tests.support.project import EXAMPLES

SECTIONS = EXAMPLES / "data" / "debian_sections.jsonl"
SYNOPSES = EXAMPLES / "data" / "debian_synopsis.jsonl"
DESCRIBE = EXAMPLES / "data" / "debian_describe.jsonl"


def rows_of(path, count=None):
    import datasets

    rows = datasets.load_dataset("json", data_files=str(path), split="train")
    return rows.select(range(count)) if count else rows


def tokenizer_of(path):
    from jobs.model import load_tokenizer
    from launcher.spec.models import ModelSpec

    return load_tokenizer(ModelSpec(name_or_path=str(path)))


def test_causal_lm_masks_the_prompt(tiny_model):
    tokenizer = tokenizer_of(tiny_model)
    spec = DataSpec(path=str(DESCRIBE), prompt_template="{prompt}\nDescription: ", max_length=64)
    encoded, slices = encode(task_for("causal_lm"), rows_of(DESCRIBE, 20), tokenizer, spec)
    assert slices is None and len(encoded) == 20
    for row in encoded:
        labels, ids = row["labels"], row["input_ids"]
        first = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
        assert first > 0 and all(label == IGNORE_INDEX for label in labels[:first])
        assert labels[first:] == ids[first:]  # every response token is learned
        assert len(ids) <= 64
    short = [row for row in encoded if len(row["input_ids"]) < 64]
    assert short and all(row["input_ids"][-1] == tokenizer.eos_token_id for row in short)


def test_causal_lm_train_on_prompt_keeps_every_label(tiny_model):
    spec = DataSpec(path=str(DESCRIBE), train_on_prompt=True, max_length=64)
    encoded, _ = encode(task_for("causal_lm"), rows_of(DESCRIBE, 1), tokenizer_of(tiny_model),
                        spec)
    assert encoded[0]["labels"] == encoded[0]["input_ids"]


def test_class_names_are_sorted_and_fixed_by_the_training_rows():
    rows = rows_of(SECTIONS)
    task = task_for("seq_classification")
    names = label_names(task, rows, DataSpec(path=str(SECTIONS)))
    assert names == sorted(set(rows["label"]))
    assert label_names(task, rows.shuffle(seed=3), DataSpec(path=str(SECTIONS))) == names
    numbers = [{"text": "t", "label": value} for value in (10, 2, 1, 2)]
    import datasets

    assert label_names(task, datasets.Dataset.from_list(numbers),
                       DataSpec(path="x.jsonl")) == ["1", "2", "10"]


def test_one_class_is_refused():
    import datasets

    rows = datasets.Dataset.from_list([{"text": "a", "label": "admin"}] * 3)
    with pytest.raises(DataError, match="`label` has 1 distinct value.*needs at least 2"):
        label_names(task_for("seq_classification"), rows, DataSpec(path="x.jsonl"))


def test_sequence_classification_rows_get_class_ids_and_slices(tiny_bert):
    tokenizer = tokenizer_of(tiny_bert)
    spec = DataSpec(path=str(SECTIONS), max_length=32, slice_field="length")
    task = task_for("seq_classification")
    rows = rows_of(SECTIONS, 50)
    names = label_names(task, rows, spec)
    encoded, slices = encode(task, rows, tokenizer, spec, names)
    assert [names[row["labels"]] for row in encoded] == rows["label"]
    assert slices == rows["length"] and "slice" not in encoded.column_names
    assert all(len(row["input_ids"]) <= 32 for row in encoded)
    assert encoded[0]["input_ids"][0] == tokenizer.cls_token_id
    # A validation row whose class the training rows never had cannot be scored: dropped.
    unseen, _ = encode(task, rows, tokenizer, spec, [n for n in names if n != rows[0]["label"]])
    assert len(unseen) == sum(label != rows[0]["label"] for label in rows["label"])


def test_tags_go_to_the_first_sub_word_of_each_word(tiny_bert):
    import datasets

    tokenizer = tokenizer_of(tiny_bert)
    row = {"tokens": ["zsh-antigen", "manages", "zsh", "plugins"],
           "tags": ["B-PKG", "O", "B-PKG", "O"]}
    encoded, _ = encode(task_for("token_classification"), datasets.Dataset.from_list([row]),
                        tokenizer, DataSpec(path="x.jsonl"), ["B-PKG", "O"])
    ids, labels = encoded[0]["input_ids"], encoded[0]["labels"]
    words = tokenizer(row["tokens"], is_split_into_words=True).word_ids()
    assert words[0] is None and words[-1] is None  # [CLS] ... [SEP]
    assert len([w for w in words if w == 0]) > 1  # `zsh-antigen` is several sub-words
    expected, previous = [], None
    for word in words:
        first = word is not None and word != previous
        expected.append({"B-PKG": 0, "O": 1}[row["tags"][word]] if first else IGNORE_INDEX)
        previous = word
    assert labels == expected and len(labels) == len(ids)
    assert [label for label in labels if label != IGNORE_INDEX] == [0, 1, 0, 1]


def test_words_and_tags_must_pair_up(tiny_bert):
    import datasets

    rows = datasets.Dataset.from_list([{"tokens": ["a", "b"], "tags": ["O"]}])
    with pytest.raises(DataError, match="2 words in `tokens` but 1 tags in `tags`"):
        encode(task_for("token_classification"), rows, tokenizer_of(tiny_bert),
               DataSpec(path="x.jsonl"), ["B-PKG", "O"])


def test_package_mentions_are_tagged_in_real_descriptions(package_tags):
    rows = [json.loads(line) for line in package_tags.read_text().splitlines()]
    assert len(rows) > 300
    assert all(len(r["tokens"]) == len(r["tags"]) and "B-PKG" in r["tags"] for r in rows)


def test_seq2seq_targets_become_labels(tiny_bart):
    tokenizer = tokenizer_of(tiny_bart)
    spec = DataSpec(path=str(SYNOPSES), max_length=48)
    rows = rows_of(SYNOPSES, 10)
    encoded, _ = encode(task_for("seq2seq"), rows, tokenizer, spec)
    for row, raw in zip(encoded, rows):
        assert row["labels"][-1] == tokenizer.eos_token_id
        assert tokenizer.decode(row["labels"], skip_special_tokens=True) == raw["target"]
        assert len(row["input_ids"]) <= 48


def test_seq2seq_labels_of_a_bert_style_tokenizer_skip_cls(tiny_bert):
    """An encoder-decoder warm-started from BERT starts decoding at [CLS]: no label repeats it."""
    tokenizer = tokenizer_of(tiny_bert)
    spec = DataSpec(path=str(SYNOPSES), max_length=48)
    encoded, _ = encode(task_for("seq2seq"), rows_of(SYNOPSES, 5), tokenizer, spec)
    for row in encoded:
        assert row["input_ids"][0] == tokenizer.cls_token_id
        assert tokenizer.cls_token_id not in row["labels"]
        assert row["labels"][-1] == tokenizer.sep_token_id
