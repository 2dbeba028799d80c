"""Load the rows the spec names, clean them, and split them into train / validation / test.

One loading path, `datasets`, for every place rows can be: a local file, a `save_to_disk`
folder, a hub dataset, or any of the first two on s3:// (fetched to a local cache first, with
the job's S3 settings). The tasks (jobs.tasks) turn the rows into model inputs.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.cleaning import clean
from launcher.spec.data import DataSpec, Task

if TYPE_CHECKING:
    from datasets import Dataset

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


class DataError(Exception):
    """The data cannot be used; the message says which file and why."""


@dataclass
class Splits:
    """The cleaned rows, split with a fixed seed; `datasets.Dataset`s of raw rows.

    `test` is None unless data.test_fraction > 0. It is held out from training and from the
    evaluations during it: evaluate it once, after training, and report its metrics as
    `test_*`. `report` says what loading did (rows read, rows each cleaning rule dropped,
    rows per split); it belongs in summary.json under `data`.
    """

    train: Dataset
    validation: Dataset
    test: Dataset | None
    report: dict


def load_splits(data: DataSpec, task: Task, seed: int) -> Splits:
    """Load, clean and split the rows `data` names; the same seed gives the same splits."""
    rows = load_rows(data)
    columns = data.columns_for(task)
    missing = [c for c in columns.values() if c not in rows.column_names]
    if missing:
        raise DataError(f"{data.path} has no column {', '.join(f'`{c}`' for c in missing)} "
                        f"(it has: {', '.join(rows.column_names)}); set "
                        + ", ".join(f"data.{k}" for k, c in columns.items() if c in missing))
    read = len(rows)
    rows, dropped = clean(rows, list(columns.values()), data.clean)
    if len(rows) < 2:
        raise DataError(f"{data.path} has {len(rows)} rows left after cleaning ({read} read, "
                        f"dropped: {dropped}); need at least 2 to split")
    train, validation, test = _split(rows, data, data.stratify_column(task), seed)
    sizes = {"train": len(train), "validation": len(validation)}
    if test is not None:
        sizes["test"] = len(test)
    report = {"source": data.path, "rows_read": read, "dropped": dropped, "rows": sizes}
    return Splits(train, validation, test, report)


def load_rows(data: DataSpec) -> Dataset:
    """All rows of the source as one `datasets.Dataset`."""
    import datasets

    if data.location == "hub":
        return _load_hub(data)
    path = _fetch(data.path) if data.location == "s3" else Path(data.path)
    if path.is_dir():
        try:
            saved = datasets.load_from_disk(str(path))
        except Exception as err:  # datasets raises FileNotFoundError for a folder it did not write
            raise DataError(f"{data.path} is not a dataset saved with save_to_disk: "
                            f"{_root_cause(err)}") from err
        if isinstance(saved, datasets.DatasetDict):
            if data.split not in saved:
                raise DataError(f"{data.path} has no split `{data.split}` (it has: "
                                f"{', '.join(saved)}); set data.split")
            return saved[data.split]
        return saved
    if path.suffix not in LOADERS:
        raise DataError(f"{data.path}: unsupported file type `{path.suffix}`; use "
                        + ", ".join(LOADERS))
    try:
        return datasets.load_dataset(LOADERS[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # datasets wraps parser errors in many types
        raise DataError(f"cannot read data file {data.path}: {_root_cause(err)}") from err


def _load_hub(data: DataSpec):
    import datasets

    try:
        return datasets.load_dataset(data.path, data.subset, split=data.split)
    except Exception as err:
        offline = ("; offline mode is on (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE), so only "
                   "datasets already in the local cache load: use a local file, a save_to_disk "
                   "folder or s3://" if datasets.config.HF_HUB_OFFLINE else "")
        raise DataError(f"cannot load hub dataset `{data.path}`: "
                        f"{_root_cause(err)}{offline}") from err


def _fetch(uri: str) -> Path:
    """Copy an s3:// file or folder to a local cache once per version, and return its path.

    The workers on a node share one copy: each writes aside and renames into place, and a
    changed object (size or modification time) gets a new copy.
    """
    import pyarrow.fs

    from jobs.storage import s3_filesystem  # the job's S3 settings, as its results use

    filesystem, key = s3_filesystem(), uri.removeprefix("s3://").rstrip("/")
    try:
        info = filesystem.get_file_info(key)
        if info.type == pyarrow.fs.FileType.NotFound:
            raise DataError(f"no object or folder at {uri}")
        listed = (filesystem.get_file_info(pyarrow.fs.FileSelector(key, recursive=True))
                  if info.type == pyarrow.fs.FileType.Directory else [info])
        files = [f for f in listed if f.type == pyarrow.fs.FileType.File]
        version = hashlib.sha256(repr(sorted((f.path, f.size, f.mtime_ns) for f in files))
                                 .encode()).hexdigest()[:16]
        cache = Path(tempfile.gettempdir()) / "launch-data" / version
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=cache.parent))
            try:
                for file in files:  # S3 has no folders to copy: make each file's parent here
                    target = scratch / Path(key).name / Path(file.path).relative_to(key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    pyarrow.fs.copy_files(file.path, str(target), source_filesystem=filesystem,
                                          destination_filesystem=pyarrow.fs.LocalFileSystem())
                os.rename(scratch, cache)
            except OSError:
                if not cache.exists():  # not a race lost to another worker's copy
                    raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)  # left by a failure or a lost race
        return cache / Path(key).name
    except OSError as err:  # pyarrow's S3 errors: endpoint, credentials, permissions
        raise DataError(f"cannot read {uri}: {str(err).splitlines()[0]}") from err


def _split(rows, data: DataSpec, stratify_by: str | None, seed: int):
    """Seeded train / validation / test; with `stratify_by`, every value of that column is
    split in the same proportions, so each split keeps the label shares of the whole."""
    groups: dict = {}
    for index, value in enumerate(rows[stratify_by] if stratify_by else [None] * len(rows)):
        groups.setdefault(value, []).append(index)
    rng = random.Random(seed)
    train, validation, test = [], [], []
    for key in sorted(groups, key=repr):  # a fixed order, whatever the labels' types
        indices = groups[key]
        rng.shuffle(indices)
        n_validation = round(len(indices) * data.validation_fraction)
        n_test = round(len(indices) * data.test_fraction)
        validation += indices[:n_validation]
        test += indices[n_validation:n_validation + n_test]
        train += indices[n_validation + n_test:]
    if not train or not validation or (data.test_fraction and not test):
        raise DataError(f"{data.path}: {len(rows)} rows are too few for validation_fraction "
                        f"{data.validation_fraction} and test_fraction {data.test_fraction}")
    # Shuffle across groups too: a stratified split must not train label by label.
    for indices in (train, validation, test):
        rng.shuffle(indices)
    return (rows.select(train), rows.select(validation),
            rows.select(test) if data.test_fraction else None)


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"
