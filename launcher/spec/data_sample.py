"""The one reader `launch validate` uses for a local data file: its columns and a bounded
sample of its rows (JSON lines, CSV, or Parquet where pyarrow is installed), never the whole
file, so a file of any size validates in a moment. The job reads every row."""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_ROWS = 1000


@dataclass
class Sample:
    columns: set[str] = field(default_factory=set)  # empty: not known here
    rows: list[dict] = field(default_factory=list)
    complete: bool = False  # every row of the file is in `rows`
    problem: str | None = None  # why the file cannot be read as rows at all


def read_sample(path: Path, limit: int = SAMPLE_ROWS) -> Sample:
    readers = {".jsonl": _jsonl, ".csv": _csv, ".parquet": _parquet}
    reader = readers.get(path.suffix)
    if reader is None or not path.is_file():
        return Sample()  # a .json document or a saved dataset: the job checks it
    try:
        return reader(path, limit)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return Sample(problem=f"{path}: cannot be read ({err})")


def _jsonl(path: Path, limit: int) -> Sample:
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = (line for line in handle if line.strip())
        for line in itertools.islice(lines, limit + 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                if not rows:
                    return Sample(problem=f"{path}: the first line is not a JSON object")
                return Sample(set(rows[0]), rows)  # the job reports the broken line
            rows.append(row)
    if not rows:
        return Sample(problem=f"{path} is empty")
    return Sample(set(rows[0]), rows[:limit], complete=len(rows) <= limit)


def _csv(path: Path, limit: int) -> Sample:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            return Sample(problem=f"{path} is empty")
        rows = list(itertools.islice(reader, limit + 1))
    columns = {name.strip() for name in reader.fieldnames}
    return Sample(columns, rows[:limit], complete=len(rows) <= limit)


def _parquet(path: Path, limit: int) -> Sample:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the client install has no pyarrow: the job checks the file
        return Sample()
    parquet = pq.ParquetFile(path)
    batch = next(parquet.iter_batches(batch_size=limit), None)
    rows = batch.to_pylist() if batch is not None else []
    return Sample(set(parquet.schema_arrow.names), rows,
                  complete=parquet.metadata.num_rows <= limit)
