"""Data: every source loads the same rows, each cleaning rule counts what it drops, splits are
seeded (and stratified for labels). Encoding rows for a task: tests/jobs/test_tasks.py."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.data import DataError, load_rows, load_splits
from launcher.spec.models import DataSpec
from tests.support.project import EXAMPLES, ROOT

DATA = str(EXAMPLES / "data" / "debian_describe.jsonl")
DEBIAN_ROWS = [json.loads(line) for line in Path(DATA).read_text(encoding="utf-8").splitlines()]


def test_split_is_seeded_and_sized():
    spec = DataSpec(path=DATA, validation_fraction=0.2)
    splits = load_splits(spec, "causal_lm", seed=1)
    again = load_splits(spec, "causal_lm", seed=1)
    other = load_splits(spec, "causal_lm", seed=2)
    assert len(splits.validation) == 300 and len(splits.train) == 1200 and splits.test is None
    assert splits.train["prompt"][:5] == again.train["prompt"][:5] != other.train["prompt"][:5]


def test_unreadable_rows_name_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{this is not json\n")
    with pytest.raises(DataError, match=f"cannot read data file {bad}"):
        load_splits(DataSpec(path=str(bad)), "causal_lm", seed=0)


def test_empty_rows_are_dropped(tmp_path):
    rows = [{"prompt": "p", "response": "r"}, {"prompt": "", "response": "r"},
            {"prompt": "p", "response": None}, {"prompt": "q", "response": "s"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    splits = load_splits(DataSpec(path=str(path), validation_fraction=0.5), "causal_lm", seed=0)
    assert len(splits.train) + len(splits.validation) == 2
    assert splits.report["dropped"] == {"drop_empty": 2}


def _write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def messy_data(tmp_path):
    """40 real Debian rows, then rows each cleaning rule must drop, with its expected count."""
    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in DEBIAN_ROWS[:40]]
    lengths = [len(f"{r['prompt']}\n{r['response']}") for r in rows]
    first, second, third = rows[0], rows[1], rows[2]
    long_response = " ".join([third["response"]] * 10)
    noise = [
        {"prompt": first["prompt"], "response": ""},  # drop_empty
        {"prompt": None, "response": second["response"]},  # drop_empty
        {"prompt": first["prompt"], "response": "   \n "},  # drop_empty, once stripped
        {"prompt": "Describe x", "response": "ok"},  # min_chars
        {"prompt": "Describe y", "response": "fine"},  # min_chars
        {"prompt": third["prompt"], "response": long_response},  # max_chars
        dict(first), dict(second), dict(first),  # dedupe
        {"prompt": f"  {third['prompt']}\t", "response": f"{third['response']}\n"},  # dedupe
        # near_dedupe: other case, punctuation, digits and spacing, same words
        {"prompt": first["prompt"].upper(), "response": first["response"].replace(" ", "  ")},
        {"prompt": second["prompt"] + "!!", "response": second["response"] + " 2.0"},
    ]
    path = _write_jsonl(tmp_path / "messy.jsonl", rows + noise)
    clean = {"dedupe": True, "near_dedupe": True, "min_chars": min(lengths),
             "max_chars": max(lengths)}
    expected = {"drop_empty": 3, "min_chars": 2, "max_chars": 1, "dedupe": 4, "near_dedupe": 2}
    return path, clean, expected, rows


def test_each_cleaning_rule_counts_the_rows_it_drops(messy_data):
    path, clean, expected, originals = messy_data
    splits = load_splits(DataSpec(path=path, clean=clean), "causal_lm", seed=0)
    report = splits.report
    assert report["dropped"] == expected
    assert report["rows_read"] == len(originals) + sum(expected.values())
    kept = [*splits.train, *splits.validation]
    # What is left is exactly the real rows: the first of each duplicate is the one kept.
    assert sorted(map(json.dumps, kept)) == sorted(map(json.dumps, originals))
    assert report["rows"] == {"train": len(splits.train), "validation": len(splits.validation)}


def test_rules_that_are_off_drop_nothing(messy_data):
    path, _, _, _ = messy_data
    spec = DataSpec(path=path, clean={"strip": False, "drop_empty": False})
    splits = load_splits(spec, "causal_lm", seed=0)
    assert splits.report["dropped"] == {}
    assert len(splits.train) + len(splits.validation) == splits.report["rows_read"]


def test_strip_comes_before_drop_empty(messy_data):
    path, _, _, _ = messy_data
    unstripped = load_splits(DataSpec(path=path, clean={"strip": False}), "causal_lm", seed=0)
    assert unstripped.report["dropped"] == {"drop_empty": 2}  # "   \n " is not empty as is


def test_cleaning_rewrites_text_and_keeps_label_names(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["libs", "utils"])})
    rows = [{"text": f" {r['response']}\n", "label": i % 2} for i, r in enumerate(DEBIAN_ROWS[:40])]
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    spec = DataSpec(path=str(tmp_path / "saved"), clean={"dedupe": True})
    splits = load_splits(spec, "seq_classification", seed=0)
    assert splits.train.features["label"].names == ["libs", "utils"]
    assert all(text == text.strip() for text in splits.train["text"])


def _labelled_rows() -> list[dict]:
    """Real texts with three labels in unequal shares (60 / 30 / 10 %)."""
    labels = ["libs"] * 6 + ["utils"] * 3 + ["games"]
    return [{"text": row["response"], "label": labels[i % 10]}
            for i, row in enumerate(DEBIAN_ROWS[:400])]


def test_stratified_split_keeps_label_shares(tmp_path):
    path = _write_jsonl(tmp_path / "labelled.jsonl", _labelled_rows())
    spec = DataSpec(path=path, validation_fraction=0.15, test_fraction=0.1)
    splits = load_splits(spec, "seq_classification", seed=3)
    whole = collections.Counter(row["label"] for row in _labelled_rows())
    for part, fraction in ((splits.validation, 0.15), (splits.test, 0.1),
                           (splits.train, 0.75)):
        counts = collections.Counter(part["label"])
        assert {label: round(n * fraction) for label, n in whole.items()} == counts
    assert splits.report["rows"] == {"train": 300, "validation": 60, "test": 40}
    again = load_splits(spec, "seq_classification", seed=3)
    assert again.test["text"] == splits.test["text"]
    # Without stratification the minority label's share drifts with the seed.
    plain = DataSpec(path=path, validation_fraction=0.15, stratify=False)
    drifts = {collections.Counter(load_splits(plain, "seq_classification", seed)
                                  .validation["label"])["games"] for seed in range(8)}
    assert len(drifts) > 1


def test_every_format_gives_the_same_rows(tmp_path):
    import datasets
    import pandas

    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in DEBIAN_ROWS[:50]]
    frame = pandas.DataFrame(rows)
    sources = {"jsonl": _write_jsonl(tmp_path / "rows.jsonl", rows),
               "csv": str(tmp_path / "rows.csv"), "parquet": str(tmp_path / "rows.parquet"),
               "save_to_disk": str(tmp_path / "saved"), "saved split": str(tmp_path / "dict")}
    frame.to_csv(sources["csv"], index=False)
    frame.to_parquet(sources["parquet"])
    datasets.Dataset.from_list(rows).save_to_disk(sources["save_to_disk"])
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(
        sources["saved split"])
    for kind, path in sources.items():
        assert load_rows(DataSpec(path=path)).to_list() == rows, kind
    with pytest.raises(DataError, match="has no split `test` .*it has: train.*data.split"):
        load_rows(DataSpec(path=sources["saved split"], split="test"))


def test_a_folder_not_saved_by_datasets_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="is not a dataset saved with save_to_disk"):
        load_rows(DataSpec(path=str(tmp_path)))


def test_missing_column_names_it_and_lists_the_data_columns(tmp_path):
    path = _write_jsonl(tmp_path / "rows.jsonl", [{"question": "q", "answer": "a"}] * 4)
    with pytest.raises(DataError) as caught:
        load_splits(DataSpec(path=path, response_field="answer"), "causal_lm", seed=0)
    assert str(caught.value) == (f"{path} has no column `prompt` (it has: question, answer); "
                                 "set data.prompt_field")


def test_too_few_rows_for_the_splits_is_an_error(tmp_path):
    path = _write_jsonl(tmp_path / "rows.jsonl", DEBIAN_ROWS[:3])
    with pytest.raises(DataError, match="3 rows are too few for validation_fraction 0.1"):
        load_splits(DataSpec(path=path), "causal_lm", seed=0)


def test_hub_name_offline_fails_with_one_line_saying_so():
    """A hub name goes through the same datasets.load_dataset; offline it says why it failed."""
    code = ("from jobs.data import DataError, load_rows\n"
            "from launcher.spec.data import DataSpec\n"
            "try:\n    load_rows(DataSpec(path='someorg/no-such-dataset'))\n"
            "except DataError as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={"HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin"},
                            timeout=120)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith("cannot load hub dataset `someorg/no-such-dataset`")
    assert "offline mode is on" in lines[0]


def test_s3_file_and_saved_folder_load_like_local_ones(s3_store, job_s3_settings, tmp_path):
    """s3:// data is read with the job's S3 settings: the variables the launcher gives a job."""
    import datasets

    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in DEBIAN_ROWS[:30]]
    client, bucket = s3_store.client(), s3_store.bucket
    client.upload_file(_write_jsonl(tmp_path / "rows.jsonl", rows), bucket, "data/rows.jsonl")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for file in (tmp_path / "saved").iterdir():
        client.upload_file(str(file), bucket, f"data/saved/{file.name}")

    for key in ("data/rows.jsonl", "data/saved"):
        assert load_rows(DataSpec(path=f"s3://{bucket}/{key}")).to_list() == rows, key
    with pytest.raises(DataError, match=f"no object or folder at s3://{bucket}/data/nope.csv"):
        load_rows(DataSpec(path=f"s3://{bucket}/data/nope.csv"))
