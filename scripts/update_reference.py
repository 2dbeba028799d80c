"""Regenerate the job.yaml reference in docs/reference.md from the spec models
(`launch schema --markdown`)."""

import subprocess
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
START, END = "<!-- reference:start -->\n", "<!-- reference:end -->"

text = REFERENCE.read_text()
reference = subprocess.run([sys.executable, "-m", "launcher", "schema", "--markdown"],
                           capture_output=True, text=True, check=True).stdout
begin, end = text.index(START) + len(START), text.index(END)
REFERENCE.write_text(text[:begin] + reference + text[end:])
