"""`launch validate` reads a bounded sample of a data file, never all of it: what it can and
cannot conclude from one."""

from __future__ import annotations

import json

import pytest

from launcher.spec.data_sample import SAMPLE_ROWS, read_sample
from tests.support.project import EXAMPLES

BASE = """\
name: sample-test
task: seq_classification
model:
  name_or_path: gpt2
data:
  path: {path}
  text_field: text
  label_field: label
"""


def jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_only_the_sample_is_read(tmp_path):
    """Rows past the sample are never parsed: a broken line there is the job's to report."""
    path = tmp_path / "big.jsonl"
    jsonl(path, [{"text": "t", "label": "a"}] * (SAMPLE_ROWS + 5))
    with path.open("a") as handle:
        handle.write("{broken\n")
    sample = read_sample(path)
    assert len(sample.rows) == SAMPLE_ROWS and not sample.complete and sample.problem is None
    assert sample.columns == {"text", "label"}


@pytest.mark.parametrize("suffix,text", [(".jsonl", '{"a": 1}\n{"a": 2}\n'),
                                         (".csv", "a, b\n1,2\n3,4\n")])
def test_a_small_file_is_read_whole(tmp_path, suffix, text):
    path = tmp_path / f"small{suffix}"
    path.write_text(text)
    sample = read_sample(path)
    assert sample.complete and len(sample.rows) == 2 and "a" in sample.columns


def test_parquet_columns_and_rows(tmp_path):
    pyarrow = pytest.importorskip("pyarrow", reason="the client install has no pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pyarrow.table({"text": ["x", "y"], "label": ["a", "b"]}), path)
    sample = read_sample(path)
    assert sample.columns == {"text", "label"} and sample.complete
    assert sample.rows == [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}]


def test_one_class_is_refused_only_when_the_whole_file_says_so(tmp_path, cli):
    """A file sorted by label shows one class in its sample; only a file read whole proves
    there is no second one."""
    sorted_rows = tmp_path / "sorted.jsonl"
    jsonl(sorted_rows, [{"text": "t", "label": "a"}] * SAMPLE_ROWS + [{"text": "t", "label": "b"}])
    job = tmp_path / "job.yaml"
    job.write_text(BASE.format(path=sorted_rows))
    assert cli("validate", job).returncode == 0
    one_class = tmp_path / "one.jsonl"
    jsonl(one_class, [{"text": "t", "label": "a"}] * 10)
    job.write_text(BASE.format(path=one_class))
    result = cli("validate", job)
    assert result.returncode == 2 and "needs at least 2 classes" in result.stderr


def test_the_example_data_samples_cleanly():
    for path in (EXAMPLES / "data").glob("*.jsonl"):
        sample = read_sample(path)
        assert sample.problem is None and sample.rows and sample.columns, path
