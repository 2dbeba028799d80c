"""A validated spec made concrete: local paths absolute, and what they name checked (the model
folder, the data file or saved dataset and its columns, `image.files`), then the task against
the data (task_checks). Problems are (location, message) pairs that load.py places in the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from launcher.spec.data import DataSpec
from launcher.spec.data_sample import Sample, read_sample
from launcher.spec.models import JobSpec
from launcher.spec.task_checks import task_problems

Loc = tuple[str, ...]
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # `imdb`, `org/name`


def resolve(spec: JobSpec, base: Path) -> tuple[JobSpec, list[tuple[Loc, str]]]:
    """Make local paths absolute and check that the files they name exist."""
    data, sample, problems = _resolve_data(spec, base)

    model = spec.model.name_or_path
    model_dir = (base / Path(model).expanduser()).resolve()
    if model.startswith("s3://"):
        if not spec.storage.is_s3:
            problems.append((("model", "name_or_path"), _not_on_the_store("an s3:// model")))
    # Hub ids look like `gpt2` or `org/model`; an existing folder or an explicit path is local.
    elif model_dir.exists() or model.startswith((".", "/", "~")):
        if not (model_dir / "config.json").is_file():
            problems.append((("model", "name_or_path"), f"{model_dir} is not a model directory "
                             "(no config.json); give a hub name or a saved model folder"))
        model = str(model_dir)

    storage = spec.storage.uri
    if not spec.storage.is_s3:
        storage = str((base / Path(storage).expanduser()).resolve())
    updates = {
        "model": spec.model.model_copy(update={"name_or_path": model}),
        "data": data,
        "storage": spec.storage.model_copy(update={"uri": storage}),
    }
    if spec.image is not None:
        files = [(base / Path(name).expanduser()).resolve() for name in spec.image.files]
        problems += [(("image", "files", str(i)), f"no such file or folder: {path}")
                     for i, path in enumerate(files) if not path.exists()]
        updates["image"] = spec.image.model_copy(update={"files": [str(f) for f in files]})
    resolved = spec.model_copy(update=updates)
    if not spec.target.capabilities.reads_local_files:
        problems += _out_of_reach(resolved)
    return resolved, problems + task_problems(resolved, sample)


def _out_of_reach(spec: JobSpec) -> list[tuple[Loc, str]]:
    """Files on this machine that a cluster elsewhere cannot read (the spec itself travels in
    storage, which such a target requires on s3://)."""
    where = f"the Ray cluster at {spec.target.where} cannot read this machine's files"
    problems = []
    if spec.data.location == "local":
        problems.append((("data", "path"), f"{spec.data.path}: {where}; upload the data to "
                         "s3:// on the storage section's store, or name a hub dataset"))
    if spec.model.location == "local":
        problems.append((("model", "name_or_path"), f"{spec.model.name_or_path}: {where}; "
                         "upload the folder to s3:// on the storage section's store, name a "
                         "hub model, or run from an image that carries it (target kind "
                         "kubernetes)"))
    return problems


def _resolve_data(spec: JobSpec,
                  base: Path) -> tuple[DataSpec, Sample, list[tuple[Loc, str]]]:
    """Check data.path, and make a local one absolute. It names a local file or save_to_disk
    folder, the same on s3:// (the job reads it with the storage section's S3 settings), or a
    hub dataset (the job loads it; nothing here can tell whether it exists). A local file's
    sample (data_sample) comes back for the task checks; other sources give an empty one."""
    data, problems, sample = spec.data, [], Sample()
    if data.stratify and data.stratify_column(spec.task) is None:
        problems.append((("data", "stratify"), f"stratify keeps label shares, but task "
                         f"`{spec.task}` has no label per row (only seq_classification has)"))
    if data.messages_field and spec.task != "causal_lm":
        problems.append((("data", "messages_field"), f"chat conversations train task causal_lm, "
                         f"not {spec.task}: set task: causal_lm or remove messages_field"))
    local = (base / Path(data.path).expanduser()).resolve()
    # Hub names look like `imdb` or `org/name`; an existing path, an explicit one or a data
    # file's name is local.
    if not (local.exists() or data.path.startswith((".", "/", "~", "s3://"))
            or local.suffix in DATA_SUFFIXES) and HUB_NAME.match(data.path):
        return data, sample, problems
    if data.subset is not None:
        problems.append((("data", "subset"), "used only with a hub dataset name, and data.path "
                         "is a path"))
    if data.path.startswith("s3://"):
        if not spec.storage.is_s3:
            problems.append((("data", "path"), _not_on_the_store("s3:// data")))
        elif Path(data.path).suffix not in ("", *DATA_SUFFIXES):
            problems.append((("data", "path"), _unsupported(Path(data.path).suffix)))
        return data, sample, problems
    fields = data.columns_for(spec.task)
    if local.is_dir():
        problems += _check_saved_dataset(local, data.split, fields)
    elif not local.is_file():
        problems.append((("data", "path"), f"no such file or folder: {local}"))
    elif local.suffix not in DATA_SUFFIXES:
        problems.append((("data", "path"), _unsupported(local.suffix)))
    else:
        sample = read_sample(local)
        problems += _check_columns(local.name, sample, fields)
    return data.model_copy(update={"path": str(local)}), sample, problems


def _not_on_the_store(what: str) -> str:
    return (f"{what} is read with the storage section's S3 settings and credentials: set "
            "storage.uri to s3://… on the same store")


def _unsupported(suffix: str) -> str:
    return (f"unsupported file type `{suffix}`; use {', '.join(DATA_SUFFIXES)}, or a folder "
            "saved with `datasets`' save_to_disk")


def _check_saved_dataset(folder: Path, split: str,
                         fields: dict[str, str]) -> list[tuple[Loc, str]]:
    """Check a folder is a save_to_disk dataset (or DatasetDict, with `split`) holding the
    fields, from the JSON files `datasets` writes beside the data."""
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        if split not in splits:
            return [(("data", "split"), f"{folder.name} has no split `{split}` (it has: "
                     f"{', '.join(splits)})")]
        folder = folder / split
    info = folder / "dataset_info.json"
    if not (info.is_file() and (folder / "state.json").is_file()):
        return [(("data", "path"), f"{folder} is a folder but not a dataset saved with "
                 "`datasets`' save_to_disk (no dataset_info.json and state.json); give a "
                 "data file or such a folder")]
    columns = set(json.loads(info.read_text()).get("features", {}))
    return _missing_columns(folder.name, columns, fields)


def _missing_columns(name: str, columns: set[str],
                     fields: dict[str, str]) -> list[tuple[Loc, str]]:
    return [(("data", key), f"column `{field}` is not in {name} (it has: "
             f"{', '.join(sorted(columns))})")
            for key, field in fields.items() if field not in columns]


def _check_columns(name: str, sample: Sample, fields: dict[str, str]) -> list[tuple[Loc, str]]:
    """The data file can be read and names the fields (from its sample; the job reads the
    rest)."""
    if sample.problem:
        return [(("data", "path"), sample.problem)]
    return _missing_columns(name, sample.columns, fields) if sample.columns else []
