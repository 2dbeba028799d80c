"""Load the rows the spec names, clean them, and split them into train / validation / test.

One loading path, `datasets`, for every place rows can be: a local file, a `save_to_disk`
folder, a hub dataset, or any of the first two on s3:// (fetched to a local cache first, with
the job's S3 settings). The tasks (jobs.tasks) turn the rows into model inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.cleaning import clean
from jobs.s3_cache import FetchError, fetch
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
    path = Path(data.path)
    if data.location == "s3":
        try:
            path = fetch(data.path)
        except FetchError as err:
            raise DataError(str(err)) from err
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
