"""The `data.clean` rules: drop rows a fine-tune should not see, counting what each rule drops."""

from __future__ import annotations

import re
import string

from launcher.spec.data import CleanSpec

# Near-duplicates differ only in case, punctuation, digits (versions, counts) and spacing.
_NOT_WORDS = re.compile(f"[{re.escape(string.punctuation)}0-9]")
_SPACES = re.compile(r"\s+")


def clean(rows, columns: list[str], rules: CleanSpec):
    """Apply `rules` to the `columns` of a `datasets.Dataset`, in CleanSpec's order.

    Returns the kept rows and {rule: rows it dropped} for every rule that is on.
    """
    dropped: dict[str, int] = {}

    def keep(name: str, predicate) -> None:
        nonlocal rows
        before = len(rows)
        rows = rows.filter(predicate)
        dropped[name] = before - len(rows)

    def keep_first(name: str, key) -> None:
        nonlocal rows
        before = len(rows)
        rows = rows.select(_first_of_each(rows, columns, key))
        dropped[name] = before - len(rows)

    # Only text is rewritten: mapping a ClassLabel column would lose its label names.
    texts = [c for c in columns if _holds_text(rows.features[c])]
    if rules.strip and texts:
        rows = rows.map(lambda row: {c: _stripped(row[c]) for c in texts})
    if rules.drop_empty:
        keep("drop_empty", lambda row: all(not _is_empty(row[c]) for c in columns))
    if rules.min_chars:
        keep("min_chars", lambda row: len(row_text(row, columns)) >= rules.min_chars)
    if rules.max_chars:
        keep("max_chars", lambda row: len(row_text(row, columns)) <= rules.max_chars)
    if rules.dedupe:
        keep_first("dedupe", lambda row: tuple(repr(row[c]) for c in columns))
    if rules.near_dedupe:
        keep_first("near_dedupe", lambda row: normalized(row_text(row, columns)))
    return rows, dropped


def row_text(row: dict, columns: list[str]) -> str:
    """The row's text in the task's columns; a list of words (token tasks) reads as a line, a
    conversation as its messages' contents, one per line."""
    return "\n".join(_text(row[c]) for c in columns)


def _text(value) -> str:
    if _is_conversation(value):
        return "\n".join(message.get("content") or "" for message in value)
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "" if value is None else str(value)


def _is_conversation(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


def normalized(text: str) -> str:
    return _SPACES.sub(" ", _NOT_WORDS.sub(" ", text.lower())).strip()


def _first_of_each(rows, columns: list[str], key) -> list[int]:
    """Indices of the first row of each key, in order."""
    seen: set = set()
    first = []
    for index, row in enumerate(rows.select_columns(columns)):
        value = key(row)
        if value not in seen:
            seen.add(value)
            first.append(index)
    return first


def _holds_text(feature) -> bool:
    inner = getattr(feature, "feature", feature)  # a list of words or messages: its items' type
    if isinstance(inner, dict):  # chat messages: their contents are the text
        inner = inner.get("content")
    return getattr(inner, "dtype", None) in ("string", "large_string")


def _stripped(value):
    if isinstance(value, str):
        return value.strip()
    if _is_conversation(value):
        return [{**message, "content": _stripped(message.get("content"))} for message in value]
    if isinstance(value, list):
        return [item.strip() if isinstance(item, str) else item for item in value]
    return value


def _is_empty(value) -> bool:
    if _is_conversation(value):  # like an empty prompt or response; a system turn is optional
        return any(_is_empty(message.get("content")) for message in value
                   if message.get("role") != "system")
    return value is None or (isinstance(value, (str, list)) and len(value) == 0)
