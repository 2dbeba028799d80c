"""Build the example data sets from Debian's package index (real text no one here wrote).

Every Debian machine can fetch the English package descriptions with
`apt-get update -o Acquire::Languages=en` (Translation-en: a one-line synopsis and a long
description per package); the Packages index gives each package's Section. Four sets:

  debian_describe.jsonl  causal_lm           prompt (package + synopsis) → response (first
                                             paragraph of the long description)
  debian_sections.jsonl  seq_classification  text (long description) → label (Section), for
                                             sections whose name the text rarely gives away
  debian_synopsis.jsonl  seq2seq             source (long description) → target (synopsis)
  debian_chat.jsonl      causal_lm (chat)    messages: a user asks what a package is for, the
                                             assistant answers with its synopsis; in some
                                             rows the user then asks its section

Rows are read in package-name order and shuffled with a fixed seed, so the same index always
gives the same files. The committed samples are made by

    python examples/data/build_debian_data.py

and `--full --out-dir DIR` writes every usable row instead (see README.md in this folder).
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import re
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

LISTS = "/var/lib/apt/lists"
TRANSLATIONS = f"{LISTS}/*_i18n_Translation-en*"
PACKAGES = f"{LISTS}/*_binary-*_Packages*"
HERE = Path(__file__).resolve().parent

# The classification labels, each with the pattern that would give it away (the section name or
# its obvious stem). The sections chosen are the ones where it appears in at most ~30% of their
# descriptions (`--leak-report` prints the rates). Left out because the text names them: rust
# (100% of descriptions say "Rust"), debug, haskell, fonts, doc, javascript, mail, database, games,
# libs, python (74–99%), and net, sound, web, video (37–61%).
SECTIONS = {
    "admin": r"admin",
    "comm": r"communicat",
    "devel": r"develop",
    "electronics": r"electronic",
    "graphics": r"graphic",
    "interpreters": r"interpret",
    "math": r"math",
    "misc": r"misc",
    "otherosfs": r"other os|file ?system",
    "science": r"scien",
    "text": r"\btext",
    "utils": r"util",
    "vcs": r"version control|\bvcs\b",
    "x11": r"x11|x window",
}
MIN_CHARS, MAX_CHARS = 80, 1500  # drops stubs and the few manual-length descriptions
SAMPLE = {"describe": 1500, "sections_per_label": 200, "synopsis": 3000, "chat": 1500}
CHAT_SYSTEM = "You are a helpful assistant who knows the Debian package archive."
FULL_PER_LABEL = 600  # keeps the full classification set balanced-ish (the largest is 2,300)


@dataclass
class Package:
    name: str
    synopsis: str
    paragraphs: list[str]
    section: str | None
    priority: str | None

    @property
    def description(self) -> str:
        return "\n".join(paragraph for paragraph in self.paragraphs if paragraph)


def read_packages() -> list[Package]:
    """Every package with an English description, in name order."""
    translations = _read_index(TRANSLATIONS)
    if not translations:
        raise SystemExit("no Translation-en index: run `apt-get update -o Acquire::Languages=en`")
    control = {name: fields for name, (fields, _) in _read_index(PACKAGES).items()}
    packages = []
    for name, (fields, body) in sorted(translations.items()):
        if "Description-en" not in fields:
            continue
        section = control.get(name, {}).get("Section")
        packages.append(Package(
            name=name, synopsis=fields["Description-en"].strip(),
            paragraphs=_paragraphs(body),
            # "contrib/net" and "net" are one section.
            section=section.split("/")[-1] if section else None,
            priority=control.get(name, {}).get("Priority")))
    return packages


def _read_index(pattern: str) -> dict[str, tuple[dict[str, str], list[str]]]:
    """package → (its fields, its continuation lines) over every index file matching pattern.

    main, -updates and -security each have an index; a later one (sorted by file name) wins.
    """
    files = sorted(glob.glob(pattern))
    text = "\n\n".join(
        subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", name],
                       check=True, capture_output=True, text=True).stdout for name in files)
    stanzas = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        body: list[str] = []
        for line in stanza.splitlines():
            if line.startswith(" "):
                body.append(line[1:])
            elif ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
        if "Package" in fields:
            stanzas[fields["Package"]] = (fields, body)
    return stanzas


def _paragraphs(body: list[str]) -> list[str]:
    """The long description's paragraphs (a lone " ." separates them), each on one line. A
    paragraph may be empty (a few descriptions start with " .")."""
    paragraphs, lines = [], []
    for line in body + ["."]:
        if line.strip() == ".":
            paragraphs.append(" ".join(lines).strip())
            lines = []
        else:
            lines.append(line.strip())
    return paragraphs


def unique(packages: list[Package], text) -> list[Package]:
    """Packages whose text(package) is within the length bounds and new: many packages share
    one description (foo, foo-data, foo-doc), and a duplicate would leak across splits."""
    seen: set[str] = set()
    kept = []
    for package in packages:
        value = text(package)
        if MIN_CHARS <= len(value) <= MAX_CHARS and value not in seen:
            seen.add(value)
            kept.append(package)
    return kept


def build_describe(packages: list[Package], rows: int | None, seed: int) -> list[dict]:
    pairs = []
    seen: set[str] = set()
    for package in packages:
        paragraph = package.paragraphs[0]
        if not 80 <= len(paragraph) <= 500 or paragraph in seen:
            continue
        seen.add(paragraph)
        pairs.append({"prompt": f"Describe the Debian package {package.name}: {package.synopsis}",
                      "response": paragraph, "package": package.name})
    random.Random(seed).shuffle(pairs)
    return pairs[:rows]


def build_sections(packages: list[Package], per_label: int, seed: int) -> list[dict]:
    """Long description → section, at most per_label rows per section.

    `length` (short/medium/long description) is a column to slice metrics by: almost every
    package has Priority "optional", so that field would make one slice of everything.
    """
    by_section = defaultdict(list)
    for package in unique(packages, lambda p: p.description):
        if package.section in SECTIONS:
            by_section[package.section].append(package)
    rng = random.Random(seed)
    rows = []
    for section in sorted(by_section):
        chosen = by_section[section]
        rng.shuffle(chosen)
        rows += [{"text": p.description, "label": section, "package": p.name,
                  "length": length_bucket(p.description)} for p in chosen[:per_label]]
    rng.shuffle(rows)
    return rows


def length_bucket(text: str) -> str:
    return "short" if len(text) < 250 else "medium" if len(text) < 450 else "long"  # ~terciles


def build_synopsis(packages: list[Package], rows: int | None, seed: int) -> list[dict]:
    """Long description → the one-line synopsis, over every section."""
    pairs = [{"source": p.description, "target": p.synopsis, "package": p.name}
             for p in unique(packages, lambda p: p.description) if p.synopsis]
    random.Random(seed).shuffle(pairs)
    return pairs[:rows]


def build_chat(packages: list[Package], rows: int | None, seed: int) -> list[dict]:
    """Conversations (`messages`, as chat templates take them): what is package X for → its
    synopsis; every third one goes on to ask the package's section."""
    seen: set[str] = set()
    chosen = []
    for package in packages:  # one conversation per synopsis: foo and foo-data often share one
        if package.section and len(package.synopsis) >= 10 and package.synopsis not in seen:
            seen.add(package.synopsis)
            chosen.append(package)
    random.Random(seed).shuffle(chosen)
    conversations = []
    for index, package in enumerate(chosen[:rows]):
        synopsis = package.synopsis[0].upper() + package.synopsis[1:]
        messages = [{"role": "system", "content": CHAT_SYSTEM},
                    {"role": "user", "content": f"What is the Debian package {package.name} for?"},
                    {"role": "assistant", "content": f"{synopsis}."}]
        if index % 3 == 0:
            messages += [{"role": "user", "content": "Which section of the archive is it in?"},
                         {"role": "assistant", "content": f"It is in the {package.section} "
                          "section."}]
        conversations.append({"messages": messages, "package": package.name})
    return conversations


def leak_report(packages: list[Package]) -> str:
    """Per chosen section: how often its name or stem appears in its own descriptions, and in
    the other sections' (a keyword that is common everywhere gives nothing away)."""
    rows = [p for p in unique(packages, lambda p: p.description) if p.section in SECTIONS]
    counts = Counter(p.section for p in rows)
    lines = [f"{'section':14} {'rows':>6} {'in own':>7} {'in others':>9}"]
    for section, stem in SECTIONS.items():
        pattern = re.compile(stem, re.IGNORECASE)
        own = sum(1 for p in rows if p.section == section and pattern.search(p.description))
        other = sum(1 for p in rows if p.section != section and pattern.search(p.description))
        lines.append(f"{section:14} {counts[section]:6} {own / counts[section]:7.0%} "
                     f"{other / (len(rows) - counts[section]):9.0%}")
    return "\n".join(lines)


def write(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = ""
    if rows and "label" in rows[0]:
        summary = ", " + ", ".join(f"{label} {n}" for label, n in
                                   sorted(Counter(row["label"] for row in rows).items()))
    print(f"wrote {len(rows)} rows ({path.stat().st_size / 1e6:.2f} MB) to {path}{summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help=f"every usable row (classification: up to {FULL_PER_LABEL} per "
                        "section) instead of the committed sample sizes")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leak-report", action="store_true",
                        help="print how often each section's name appears in its texts")
    args = parser.parse_args()
    packages = read_packages()
    if args.leak_report:
        print(leak_report(packages))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-full" if args.full else ""
    write(build_describe(packages, None if args.full else SAMPLE["describe"], args.seed),
          args.out_dir / f"debian_describe{suffix}.jsonl")
    write(build_sections(packages, FULL_PER_LABEL if args.full else SAMPLE["sections_per_label"],
                         args.seed), args.out_dir / f"debian_sections{suffix}.jsonl")
    write(build_synopsis(packages, None if args.full else SAMPLE["synopsis"], args.seed),
          args.out_dir / f"debian_synopsis{suffix}.jsonl")
    write(build_chat(packages, None if args.full else SAMPLE["chat"], args.seed),
          args.out_dir / f"debian_chat{suffix}.jsonl")


if __name__ == "__main__":
    main()
