"""The training a launch job does, without Ray: the same data, tokenizer, model + LoRA,
Hugging Face Trainer arguments and metrics callback as jobs/train.py's worker, in one plain
process (`--bare`: no DeepSpeed either) or in each process `torchrun` starts (with the
DeepSpeed config launch generates). Writes metrics.jsonl into --out like a run does.

    python bench/hf_loop.py --spec RUN/spec.json --out DIR [--bare]
    torchrun --nproc-per-node 2 bench/hf_loop.py --spec RUN/spec.json --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from launcher.layout import METRICS, RunLayout
from launcher.spec.models import JobSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="metrics.jsonl goes here")
    parser.add_argument("--bare", action="store_true", help="no DeepSpeed: a plain HF loop")
    args = parser.parse_args()

    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer

    from jobs.callbacks import MetricsFileCallback
    from jobs.data import IGNORE_INDEX, load_splits, tokenize
    from jobs.model import load_model, load_tokenizer
    from jobs.storage import RunStorage
    from jobs.train import training_arguments

    spec = JobSpec.model_validate_json(args.spec.read_text())
    rank = int(os.environ.get("RANK", "0"))
    scratch = Path(tempfile.mkdtemp(prefix=f"hf-loop-rank{rank}-"))
    tokenizer = load_tokenizer(spec.model)
    splits = load_splits(spec.data, spec.task, spec.training.seed)
    train_set = tokenize(splits.train, tokenizer, spec.data)
    eval_set = tokenize(splits.validation, tokenizer, spec.data)
    training_args = training_arguments(spec, scratch)
    if args.bare:
        training_args = dataclasses.replace(training_args, deepspeed=None)
    trainer = Trainer(
        model=load_model(spec.model, spec.method), args=training_args,
        train_dataset=train_set, eval_dataset=eval_set,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True,
                                             label_pad_token_id=IGNORE_INDEX),
        processing_class=tokenizer,
        callbacks=[MetricsFileCallback(RunStorage(RunLayout(str(args.out.resolve()))),
                                       scratch / METRICS, rank == 0)])
    trainer.remove_callback(PrinterCallback)
    trainer.train()


if __name__ == "__main__":
    main()
