"""The check every spec-error test makes: `launch validate` prints exactly one
FILE:LINE:COL line, at the line of the job text that holds `needle`, saying `words`."""

from __future__ import annotations

import re
from pathlib import Path


def assert_one_located_line(cli, job: Path, text: str, needle: str, words: str) -> None:
    job.write_text(text)
    result = cli("validate", job)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    match = re.match(rf"^{re.escape(str(job))}:(\d+):(\d+): (.+)$", lines[0])
    assert match, lines[0]
    assert int(match.group(1)) == line_of(text, needle), lines[0]
    assert words in match.group(3), lines[0]


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the job text")
