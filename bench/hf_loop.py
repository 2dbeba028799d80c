"""The training a launch job does, without Ray: the same data, tokenizer, model and method,
Hugging Face Trainer and metrics callback as jobs/train.py's worker (jobs.train.build), in one
plain process (`--bare`: no DeepSpeed either) or in each process `torchrun` starts (with the
DeepSpeed config launch generates). Writes metrics.jsonl into --out like a run does.

    python bench/hf_loop.py --spec RUN/spec.json --out DIR [--bare]
    torchrun --nproc-per-node 2 bench/hf_loop.py --spec RUN/spec.json --out DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launcher.contract import METRICS, RunLayout
from launcher.spec.models import JobSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="metrics.jsonl goes here")
    parser.add_argument("--bare", action="store_true", help="no DeepSpeed: a plain HF loop")
    args = parser.parse_args()

    from jobs.callbacks import MetricsFileCallback
    from jobs.storage import RunStorage
    from jobs.train import build

    spec = JobSpec.model_validate_json(args.spec.read_text())
    rank = int(os.environ.get("RANK", "0"))
    scratch = Path(tempfile.mkdtemp(prefix=f"hf-loop-rank{rank}-"))
    metrics = MetricsFileCallback(RunStorage(RunLayout(str(args.out.resolve()))),
                                  scratch / METRICS, rank == 0)
    build(spec, scratch, callbacks=[metrics], deepspeed=not args.bare).trainer.train()


if __name__ == "__main__":
    main()
