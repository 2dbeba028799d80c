"""`launch validate` on a 1 GiB JSON-lines file against the same job on the example data.

validate reads a bounded sample of a data file (launcher/spec/data_sample.py), so its time
should not grow with the file: the ratio is the large file's median wall time over the small
one's, from alternating runs in one process tree. The large file is made once and cached.

    python bench/validate_large.py [--gib 1] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

import yaml

from common import CACHE, EXAMPLES, LAUNCH, ROOT


def big_file(gib: float) -> Path:
    path = CACHE / f"validate-{gib:g}gib.jsonl"
    if path.is_file():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = (EXAMPLES / "data" / "debian_describe.jsonl").read_bytes()
    with path.open("wb") as out:
        while out.tell() < gib * (1 << 30):
            out.write(rows)
    return path


def job(folder: Path, data: Path, name: str) -> Path:
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec["model"]["name_or_path"] = "gpt2"
    spec["data"]["path"] = str(data)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def seconds(job_file: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*LAUNCH, "validate", str(job_file)], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    large_data = big_file(args.gib)
    small = job(CACHE, EXAMPLES / "data" / "debian_describe.jsonl", "validate-small")
    large = job(CACHE, large_data, "validate-large")
    times = {"small": [], "large": []}
    for _ in range(args.runs):  # alternating, so drift hits both alike
        times["small"].append(seconds(small))
        times["large"].append(seconds(large))
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.3f} s "
              f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} runs)")
    ratio = statistics.median(times["large"]) / statistics.median(times["small"])
    size = large_data.stat().st_size / (1 << 30)
    print(f"validate {size:.2f} GiB / example data: {ratio:.2f}x")


if __name__ == "__main__":
    main()
