"""Build the example data sets from Debian's package descriptions (real text, offline).

Every Debian machine can fetch the English package descriptions with
`apt-get update -o Acquire::Languages=en`. This script turns them into prompt/response pairs:
the prompt names a package and its one-line synopsis, the response is the first paragraph of
its long description. The committed `debian_describe.jsonl` is a sample made by:

    python examples/data/build_debian_data.py --rows 1500 --out examples/data/debian_describe.jsonl
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import subprocess
from pathlib import Path

TRANSLATIONS = "/var/lib/apt/lists/*_i18n_Translation-en*"


def read_descriptions() -> dict[str, tuple[str, str]]:
    """package → (synopsis, first paragraph of the long description)."""
    files = sorted(glob.glob(TRANSLATIONS))
    if not files:
        raise SystemExit("no Translation-en index: run `apt-get update -o Acquire::Languages=en`")
    # main, -updates and -security each have an index; one package's text is the same in all.
    text = "\n\n".join(
        subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", name],
                       check=True, capture_output=True, text=True).stdout for name in files)
    packages: dict[str, tuple[str, str]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        body: list[str] = []
        for line in stanza.splitlines():
            if line.startswith(" "):
                body.append(line[1:])
            elif ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
        if "Package" in fields and "Description-en" in fields:
            paragraph = " ".join(_first_paragraph(body)).strip()
            packages[fields["Package"]] = (fields["Description-en"].strip(), paragraph)
    return packages


def _first_paragraph(body: list[str]) -> list[str]:
    lines = []
    for line in body:
        if line.strip() == ".":
            break
        lines.append(line.strip())
    return lines


def build_pairs(rows: int, seed: int) -> list[dict[str, str]]:
    seen: set[str] = set()
    pairs = []
    for package, (synopsis, paragraph) in sorted(read_descriptions().items()):
        # Many packages share one description (foo, foo-data, foo-doc): keep the first only.
        if not 80 <= len(paragraph) <= 500 or paragraph in seen:
            continue
        seen.add(paragraph)
        pairs.append({"prompt": f"Describe the Debian package {package}: {synopsis}",
                      "response": paragraph, "package": package})
    random.Random(seed).shuffle(pairs)
    return pairs[:rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pairs = build_pairs(args.rows, args.seed)
    with args.out.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")
    print(f"wrote {len(pairs)} rows to {args.out}")


if __name__ == "__main__":
    main()
