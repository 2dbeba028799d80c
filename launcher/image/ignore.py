""".launchignore rules, with .dockerignore's syntax: one pattern per line, `#` comments,
`*` and `?` within a path segment, `**` across segments, `!` to re-include; the last rule
that matches a path decides. A pattern that matches a folder excludes everything under it.
"""

from __future__ import annotations

import re
from pathlib import Path

IGNORE_FILE = ".launchignore"
# Never worth shipping, whatever the user's rules say.
ALWAYS_IGNORED = ("**/__pycache__", "**/*.pyc", "**/.git", "**/.DS_Store")


class IgnoreRules:
    def __init__(self, patterns: list[str]):
        self._rules: list[tuple[bool, re.Pattern]] = []
        for raw in [*ALWAYS_IGNORED, *patterns]:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line[1:].strip() if include else line
            self._rules.append((include, _compile(pattern.strip("/"))))

    @classmethod
    def for_folder(cls, folder: Path) -> IgnoreRules:
        path = folder / IGNORE_FILE
        return cls(path.read_text().splitlines() if path.is_file() else [])

    def ignored(self, relative: str) -> bool:
        """Whether `relative` (a '/'-separated path) or one of its folders is excluded."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for include, regex in self._rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                verdict = not include
        return verdict


def _compile(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
