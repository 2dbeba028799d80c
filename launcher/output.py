"""How commands print their results: aligned columns for people, or, with `--output json`,
exactly one JSON document on stdout for scripts (errors too, with the exit code)."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path

from launcher.errors import LaunchError


class Format(str, Enum):
    text = "text"
    json = "json"


def wants_json(argv: list[str]) -> bool:
    """Whether a command line asked for JSON (read before Typer parses it, so that errors
    raised while a command runs are printed as JSON too)."""
    for i, arg in enumerate(argv):
        if arg in ("--output=json", "-ojson"):
            return True
        if arg in ("--output", "-o") and argv[i + 1:i + 2] == ["json"]:
            return True
    return False


def to_json(value) -> str:
    """One line of JSON: dataclasses become objects, paths strings."""
    return json.dumps(value, default=_plain, ensure_ascii=False)


def error_json(err: LaunchError) -> str:
    lines = err.lines()
    return to_json({"error": lines[0] if lines else "", "problems": lines,
                    "exit_code": err.exit_code})


def table(headers: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Plain aligned columns: ids and paths are for copying, so nothing wraps or is cut."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in (headers, *rows)]


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (Path, Enum)):
        return str(value.value if isinstance(value, Enum) else value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
