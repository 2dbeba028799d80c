"""Load prompt/response rows, split them, and tokenize with the loss on response tokens only."""

from __future__ import annotations

from pathlib import Path

from launcher.spec.models import DataSpec

LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
IGNORE_INDEX = -100  # the label value Hugging Face losses skip


class DataError(Exception):
    """The data cannot be used; the message says which file and why."""


def load_splits(spec: DataSpec, seed: int):
    """Return (train, validation) `datasets.Dataset`s of raw rows, split with a fixed seed."""
    import datasets

    path = Path(spec.path)
    try:
        rows = datasets.load_dataset(LOADERS[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # datasets wraps parser errors in many types
        raise DataError(f"cannot read data file {path}: {_root_cause(err)}") from err
    missing = {spec.prompt_field, spec.response_field} - set(rows.column_names)
    if missing:
        raise DataError(f"{path} has no column(s) {sorted(missing)}; it has {rows.column_names}")
    rows = rows.filter(lambda row: bool(_text(row[spec.prompt_field]))
                       and bool(_text(row[spec.response_field])))
    if len(rows) < 2:
        raise DataError(f"{path} has {len(rows)} usable rows; need at least 2 to split")
    split = rows.train_test_split(test_size=spec.validation_fraction, seed=seed)
    return split["train"], split["test"]


def tokenize(rows, tokenizer, spec: DataSpec):
    """Map raw rows to input_ids/attention_mask/labels; prompt tokens get IGNORE_INDEX labels."""

    def encode(row):
        prompt = spec.prompt_template.replace("{prompt}", _text(row[spec.prompt_field]))
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(_text(row[spec.response_field]),
                                 add_special_tokens=False)["input_ids"]
        response_ids = response_ids + [tokenizer.eos_token_id]
        input_ids = (prompt_ids + response_ids)[: spec.max_length]
        prompt_labels = prompt_ids if spec.train_on_prompt else [IGNORE_INDEX] * len(prompt_ids)
        labels = (prompt_labels + response_ids)[: spec.max_length]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    encoded = rows.map(encode, remove_columns=rows.column_names)
    # A prompt longer than max_length leaves no response token to learn from.
    return encoded.filter(lambda row: any(label != IGNORE_INDEX for label in row["labels"]))


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"
