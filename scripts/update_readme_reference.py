"""Regenerate README's job.yaml reference from the spec models (`launch schema --markdown`)."""

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- reference:start -->\n", "<!-- reference:end -->"

text = README.read_text()
reference = subprocess.run([sys.executable, "-m", "launcher", "schema", "--markdown"],
                           capture_output=True, text=True, check=True).stdout
begin, end = text.index(START) + len(START), text.index(END)
README.write_text(text[:begin] + reference + text[end:])
