"""Bench: does a launch fine-tune learn what a plain Hugging Face run learns, and how good are
its fine-tunes of a real pretrained model on real text? One JSON line per part.

equivalence — tiny GPT-2 + LoRA, causal_lm on debian_describe.jsonl, final eval loss:
  (a) a plain Hugging Face Trainer in one process, no Ray, no DeepSpeed (bench/hf_loop.py --bare)
  (b) `launch submit`, 1 worker (ZeRO stage 0: no DeepSpeed)       goal |b/a - 1| <= 1%
  (c) `launch submit`, 2 workers, ZeRO-2, the same global batch     goal |c/b - 1| <= 2%
  All run the same seed, data, split and hyperparameters ((a) runs from (b)'s resolved spec).
classification — all-MiniLM-L6-v2 on debian_sections.jsonl, accuracy on the held-out
  validation split: the majority class, frozen encoder + head, LoRA, full fine-tune (each
  through launch)
summarization — debian_synopsis.jsonl, ROUGE-L on the held-out validation split: the lead
  sentence (the description's first sentence) vs a MiniLM-to-MiniLM encoder-decoder fine-tuned
  through launch, at each evaluation (it should rise)
The validation split only measures here (no early stopping, no model selection), so it is an
unbiased held-out set.

    python bench/finetune_quality.py                         # every part
    python bench/finetune_quality.py --parts equivalence     # the part bench/run_all runs

Starts its own Ray head (2 CPUs) and stops it. Sizes are small (2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import yaml
from training_overhead import without_ray

from common import CACHE, EXAMPLES, emit, launch, ray_head, write_job

sys.path.insert(0, str(EXAMPLES))
from minilm_path import minilm_path, save_encoder_decoder  # noqa: E402

DATA = EXAMPLES / "data"


def submit(job: Path) -> Path:
    """Run a job through launch to the end; its run folder."""
    run = launch("submit", str(job), "--follow")
    if run["state"] != "SUCCEEDED":
        raise SystemExit(f"{job.stem}: {run['state']}; see launch logs {run['run_id']}")
    return Path(run["results"])


def job_file(folder: Path, name: str, overrides: dict, replace: dict | None = None) -> Path:
    """common.write_job's quickstart with `overrides` merged in and `replace`'s sections
    swapped whole (a method or data section of another task keeps none of the quickstart's)."""
    path = write_job(folder, name, overrides)
    if replace:
        job = yaml.safe_load(path.read_text())
        job.update(replace)
        path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def final_eval_loss(metrics: Path) -> float:
    """The last evaluation's loss in a metrics.jsonl (launch's and hf_loop.py's alike)."""
    evals = [r for r in map(json.loads, metrics.read_text().splitlines()) if "eval_loss" in r]
    return evals[-1]["eval_loss"]


def equivalence(folder: Path, steps: int) -> dict:
    def job(name: str, workers: int, stage: int) -> Path:
        return job_file(folder, name, {
            # One evaluation before training and one at the last step: the number compared.
            "training": {"max_steps": steps, "eval_steps": steps, "save_steps": steps,
                         "logging_steps": max(steps // 4, 1),
                         "batch_size_per_worker": 8 // workers},  # global batch 8
            "scale": {"num_workers": workers, "deepspeed": {"stage": stage}}})

    one = submit(job("equiv-1w", workers=1, stage=0))
    plain = without_ray([sys.executable], one / "spec.json", folder / "plain", "--bare")
    two = submit(job("equiv-2w", workers=2, stage=2))
    losses = {"plain_hf": final_eval_loss(plain),
              "launch_1w": final_eval_loss(one / "metrics.jsonl"),
              "launch_2w_zero2": final_eval_loss(two / "metrics.jsonl")}
    return {"part": "equivalence", "steps": steps, "global_batch": 8,
            "eval_loss_before": [r for r in records(one) if "eval_loss" in r][0]["eval_loss"],
            **{f"eval_loss_{k}": v for k, v in losses.items()},
            "diff_1w_vs_plain": losses["launch_1w"] / losses["plain_hf"] - 1,
            "diff_2w_vs_1w": losses["launch_2w_zero2"] / losses["launch_1w"] - 1,
            "goal_abs_diff_1w": 0.01, "goal_abs_diff_2w": 0.02}


def held_out(run: Path):
    """The run's validation rows, rebuilt from its spec by the job's own loading code."""
    from jobs.data import load_splits
    from launcher.spec.models import JobSpec

    spec = JobSpec.model_validate_json((run / "spec.json").read_text())
    return load_splits(spec.data, spec.task, spec.training.seed), spec


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# The new head (pooler + classifier) trains at 1e-2 in every method, so what differs is only
# what else trains: nothing, LoRA adapters at 1e-3, or the whole encoder at 1e-4.
HEAD_LR = 1e-2
METHODS = {
    "frozen_head": ({"type": "freeze", "train_top_layers": 0}, HEAD_LR),
    "lora": ({"type": "lora", "r": 8, "alpha": 16, "dropout": 0.1, "head_lr_multiplier": 10,
              "target_modules": ["query", "key", "value", "dense"]}, HEAD_LR / 10),
    "full": ({"type": "full", "head_lr_multiplier": 100}, HEAD_LR / 100),
}


def classification(folder: Path, epochs: float) -> dict:
    data = {"path": str(DATA / "debian_sections.jsonl"), "validation_fraction": 0.2,
            "slice_field": "length", "max_length": 128}
    result = {"part": "classification", "epochs": epochs}
    for name, (method, rate) in METHODS.items():
        run = submit(job_file(folder, f"sections-{name.replace('_', '-')}", {
            "training": {"epochs": epochs, "learning_rate": rate, "batch_size_per_worker": 16,
                         "warmup_ratio": 0.1, "eval_steps": 10_000, "save_steps": 10_000,
                         "logging_steps": 10}},
            {"task": "seq_classification", "model": {"name_or_path": str(minilm_path())},
             "data": data, "method": method}))
        final = summary(run)["eval_after"]
        result[f"accuracy_{name}"] = final["eval_accuracy"]
        result[f"macro_f1_{name}"] = final["eval_f1"]
    splits, spec = held_out(run)
    labels = list(splits.train[spec.data.label_field])
    majority = max(set(labels), key=labels.count)
    gold = list(splits.validation[spec.data.label_field])
    result["accuracy_majority"] = gold.count(majority) / len(gold)
    result["held_out_rows"] = len(gold)
    return result


def lead_sentence(text: str) -> str:
    """The description's first sentence (or its first line, where that ends sooner)."""
    first_line = text.split("\n", 1)[0]
    return re.split(r"(?<=[.!?])\s+", first_line, maxsplit=1)[0]


def rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure with stemming: rouge-score, as the job's seq2seq metric uses it."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure
              for pred, ref in zip(predictions, references)]
    return sum(scores) / len(scores)


def summarization(folder: Path, epochs: float) -> dict:
    model = CACHE / "minilm2minilm"
    if not (model / "config.json").is_file():
        save_encoder_decoder(minilm_path(), model)
    run = submit(job_file(folder, "synopsis", {
        "training": {"epochs": epochs, "learning_rate": 1e-4, "batch_size_per_worker": 16,
                     "warmup_ratio": 0.1, "eval_steps": 30, "save_steps": 10_000,
                     "logging_steps": 10}},
        {"task": "seq2seq", "model": {"name_or_path": str(model)},
         "data": {"path": str(DATA / "debian_synopsis.jsonl"), "validation_fraction": 0.05,
                  "max_length": 128},
         "method": {"type": "full"}}))
    splits, spec = held_out(run)
    sources = list(splits.validation[spec.data.source_field])
    targets = list(splits.validation[spec.data.target_field])
    return {"part": "summarization", "epochs": epochs, "held_out_rows": len(targets),
            "rougeL_lead_sentence": rouge_l([lead_sentence(s) for s in sources], targets),
            "rougeL_model": summary(run)["eval_after"]["eval_rougeL"],
            "eval_rougeL_during_training": [[r["step"], r["eval_rougeL"]] for r in records(run)
                                            if "eval_rougeL" in r]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["equivalence", "classification",
                                                       "summarization"],
                        choices=["equivalence", "classification", "summarization"])
    parser.add_argument("--steps", type=int, default=80, help="equivalence: optimizer steps")
    parser.add_argument("--epochs", type=float, default=1.0,
                        help="classification and summarization: epochs per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp, ray_head():
        folder = Path(tmp)
        for part in args.parts:
            if part == "equivalence":
                emit(equivalence(folder, args.steps))
            elif part == "classification":
                emit(classification(folder, args.epochs))
            else:
                emit(summarization(folder, args.epochs))


if __name__ == "__main__":
    main()
