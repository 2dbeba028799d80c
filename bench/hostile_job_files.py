"""`launch validate` on hostile job files against the quickstart: time and peak memory.

Each hostile file must be refused in one line within 2 s and 200 MB (issue 17's bound): a
'billion laughs' of nested aliases, a file over the size cap made of keys, brackets nested
past Python's recursion limit. The baseline is the quickstart, validated in the same run;
each file runs --runs times, alternating, and the median and spread are printed.

    python bench/hostile_job_files.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml


def billion_laughs(levels: int = 9) -> bytes:
    """Nine levels of nine aliases each: 478 bytes that expand to 9**9 strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


HOSTILE = {
    "billion-laughs": billion_laughs(),
    "too-big": "".join(f"key{i}: {i}\n" for i in range(8000)).encode(),  # 92 kB of keys
    "too-deep": b"a: " + b"[" * 20000 + b"]" * 20000 + b"\n",
}


def validate(launch: list[str], job: Path, cwd: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS in MB, and exit code of one `launch validate`."""
    started = time.perf_counter()
    process = subprocess.Popen([*launch, "validate", str(job)], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    from common import EXAMPLES, LAUNCH, ROOT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="launch-hostile-"))
    quickstart = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    quickstart["model"]["name_or_path"] = "gpt2"  # valid as written, no model build needed
    quickstart["data"]["path"] = str(EXAMPLES / "data" / "debian_describe.jsonl")
    files = {"quickstart (baseline)": folder / "quickstart.yaml"}
    files["quickstart (baseline)"].write_text(yaml.safe_dump(quickstart))
    for name, content in HOSTILE.items():
        files[name] = folder / f"{name}.yaml"
        files[name].write_bytes(content)
    results = {name: [] for name in files}
    for _ in range(args.runs):  # alternating, so drift hits every file alike
        for name, job in files.items():
            results[name].append(validate(LAUNCH, job, ROOT))
    base = statistics.median(seconds for seconds, _, _ in results["quickstart (baseline)"])
    report = {}
    for name, runs in results.items():
        seconds = [s for s, _, _ in runs]
        report[name] = {"median_s": round(statistics.median(seconds), 3),
                        "min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3),
                        "peak_mb": round(max(mb for _, mb, _ in runs)),
                        "exit_codes": sorted({code for _, _, code in runs}),
                        "time_vs_baseline": round(statistics.median(seconds) / base, 2)}
    print(json.dumps({"bench": "hostile_job_files", "runs": args.runs, "files": report}))


if __name__ == "__main__":
    main()
