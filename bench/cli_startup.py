"""Bench: wall time of `launch --help` and `launch validate job.yaml` (a `launch init`
starter), each the median of a few runs of the installed `launch` command. Goal ≤ 0.5 s:
ray, torch, boto3 and kubernetes load only inside the commands that need them. The ratio is
time ÷ goal (≤ 1 meets it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit

GOAL_S = 0.5


def wall_time(command: list[str], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    launch = str(Path(sys.executable).with_name("launch"))
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        job = Path(tmp) / "job.yaml"
        subprocess.run([launch, "init", str(job)], check=True, stdout=subprocess.DEVNULL)
        python_s = wall_time([sys.executable, "-c", "pass"], args.repeat)
        help_s = wall_time([launch, "--help"], args.repeat)
        validate_s = wall_time([launch, "validate", str(job)], args.repeat)
    emit({"bench": "cli_startup", "ratio_help_vs_goal": help_s / GOAL_S,
          "ratio_validate_vs_goal": validate_s / GOAL_S, "goal_s": GOAL_S, "help_s": help_s,
          "validate_s": validate_s, "bare_python_s": python_s})


if __name__ == "__main__":
    main()
