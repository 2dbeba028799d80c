"""`launch validate` on the data section: sources, cleaning rules and splits that cannot work
fail with one located line; the sources that can work validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

DATA = EXAMPLES / "data" / "debian_describe.jsonl"
VALID = f"""\
name: data-test
model:
  name_or_path: gpt2
data:
  path: {DATA}
"""
S3_STORAGE = "storage:\n  uri: s3://bucket/runs\n  endpoint_url: http://127.0.0.1:8333\n"


def saved_dataset(folder: Path, columns=("prompt", "response"), split: str | None = None) -> Path:
    """The JSON files `datasets`' save_to_disk writes beside the data, which validate reads."""
    target = folder / split if split else folder
    target.mkdir(parents=True)
    features = {name: {"dtype": "string", "_type": "Value"} for name in columns}
    (target / "dataset_info.json").write_text(json.dumps({"features": features}))
    (target / "state.json").write_text("{}")
    if split:
        (folder / "dataset_dict.json").write_text(json.dumps({"splits": [split]}))
    return folder


# (case id, job file text (given tmp_path), text on the error's line, words the message says)
CASES = [
    ("fractions-leave-nothing-to-train", lambda tmp: VALID + "  validation_fraction: 0.5\n"
     "  test_fraction: 0.5\n", "test_fraction", "must be below 1"),
    ("stratify-without-labels", lambda tmp: VALID + "  stratify: true\n", "stratify",
     "task `causal_lm` has no label per row"),
    ("min-chars-above-max-chars", lambda tmp: VALID + "  clean:\n    min_chars: 500\n"
     "    max_chars: 100\n", "min_chars", "min_chars (500) is above max_chars (100)"),
    ("unknown-cleaning-rule", lambda tmp: VALID + "  clean:\n    dedup: true\n", "dedup:",
     "did you mean `dedupe`"),
    ("negative-test-fraction", lambda tmp: VALID + "  test_fraction: -0.1\n", "test_fraction",
     "greater than or equal to 0"),
    ("s3-data-needs-s3-storage", lambda tmp: VALID.replace(str(DATA), "s3://bucket/rows.jsonl"),
     "  path:", "set storage.uri to s3://"),
    ("s3-data-of-unknown-type", lambda tmp: VALID.replace(str(DATA), "s3://bucket/rows.txt")
     + S3_STORAGE, "  path:", "unsupported file type `.txt`"),
    ("subset-of-a-local-file", lambda tmp: VALID + "  subset: sst2\n", "subset",
     "used only with a hub dataset name"),
    ("folder-not-saved-by-datasets", lambda tmp: VALID.replace(str(DATA), str(tmp)), "  path:",
     "not a dataset saved with"),
    ("saved-dataset-lacks-a-column", lambda tmp: VALID.replace(
        str(DATA), str(saved_dataset(tmp / "saved", columns=("prompt",))))
     + "  response_field: answer\n", "response_field", "column `answer` is not in saved"),
    ("saved-dict-lacks-the-split", lambda tmp: VALID.replace(
        str(DATA), str(saved_dataset(tmp / "saved", split="train"))) + "  split: test\n",
     "split: test", "has no split `test` (it has: train)"),
]


@pytest.mark.parametrize("make,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_data_section_gives_located_one_line_error(tmp_path, cli, make, needle, words):
    (tmp_path / "folder").mkdir()
    text = make(tmp_path / "folder")
    assert_one_located_line(cli, tmp_path / "job.yaml", text, needle, words)


@pytest.mark.parametrize("path,more", [
    ("org/some-dataset", "  subset: default\n  split: validation\n"),
    ("s3://bucket/data/rows.jsonl", S3_STORAGE),
    ("s3://bucket/data/saved", S3_STORAGE),
    ("SAVED", ""),
], ids=["hub-name", "s3-file", "s3-saved-folder", "saved-dataset-dict"])
def test_every_kind_of_source_validates(tmp_path, cli, path, more):
    path = path.replace("SAVED", str(saved_dataset(tmp_path / "saved", split="train")))
    job = tmp_path / "job.yaml"
    job.write_text(VALID.replace(str(DATA), path) + "  test_fraction: 0.1\n  clean:\n"
                   "    dedupe: true\n    near_dedupe: true\n    min_chars: 10\n" + more)
    result = cli("validate", job)
    assert result.returncode == 0, result.stderr
