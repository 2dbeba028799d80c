"""Each task beyond the quickstart's causal_lm, and causal_lm on chat conversations, end to end
through `launch submit` on the session's Ray head: 2 CPU workers with DeepSpeed ZeRO-2, tiny
models, real Debian data; the task's metric moves the right way, and summary.json holds the
metrics, what was exported, and samples. The four runs are submitted at once (task_runs)."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.support.project import EXAMPLES, submitted_results

pytestmark = pytest.mark.integration


LORA = {"type": "lora", "r": 8, "alpha": 16}  # PEFT's default targets per architecture


def write_job(folder: Path, ray_head, job: dict) -> Path:
    """The quickstart with `job`'s sections replacing its own, results under `folder`/runs."""
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec.update({"method": LORA, **job})
    spec["storage"] = {"uri": str(folder / "runs")}
    spec["target"] = {"kind": "local", "address": ray_head.address}
    folder.mkdir()
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def finished(result: subprocess.CompletedProcess) -> tuple[dict, Path]:
    """A followed run that succeeded: its summary and run dir."""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    run_dir = submitted_results(result)
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def eval_records(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "eval_loss" in r]


def training(steps: int, learning_rate: float) -> dict:
    return {"max_steps": steps, "learning_rate": learning_rate, "batch_size_per_worker": 8,
            "logging_steps": 2, "eval_steps": steps // 2, "save_steps": steps,
            "warmup_ratio": 0.0}


def two_sections(folder: Path) -> Path:
    """The Debian descriptions of two sections (real rows of examples/data)."""
    rows = [json.loads(line) for line in
            (EXAMPLES / "data" / "debian_sections.jsonl").read_text().splitlines()]
    kept = [row for row in rows if row["label"] in ("math", "x11")]
    path = folder / "sections.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return path


CHAT = yaml.safe_load((EXAMPLES / "chat.yaml").read_text())


@pytest.fixture(scope="module")
def task_runs(ray_head, tiny_model, tiny_bert, tiny_bart, package_tags, cli,
              tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every task's run, submitted at once with `launch submit --follow`, as four users would:
    Ray queues their workers on the 2 CPUs, so one run's start-up (its driver, Ray Train's
    controller, the workers' imports) overlaps another's training. One after another, each
    start-up left a core idle."""
    folder = tmp_path_factory.mktemp("tasks")
    jobs = {
        "seq_classification": {
            "name": "sections", "task": "seq_classification",
            "model": {"name_or_path": str(tiny_model)},
            "data": {"path": str(two_sections(folder)), "slice_field": "length",
                     "validation_fraction": 0.2, "test_fraction": 0.1, "max_length": 64},
            "training": training(10, 0.005), "export": {"format": "merged"}},
        "token_classification": {
            "name": "package-tags", "task": "token_classification",
            "model": {"name_or_path": str(tiny_bert)},
            "method": {**LORA, "target_modules": "all-linear"},
            "data": {"path": str(package_tags), "max_length": 64, "validation_fraction": 0.2},
            "training": training(8, 0.02)},
        "seq2seq": {
            "name": "synopsis", "task": "seq2seq",
            "model": {"name_or_path": str(tiny_bart)},
            "data": {"path": str(EXAMPLES / "data" / "debian_synopsis.jsonl"),
                     "max_length": 48, "validation_fraction": 0.02},
            "method": {"type": "full"},
            "training": training(8, 0.003),
            "export": {"sample_generations": 2, "max_new_tokens": 12}},
        "chat": {
            **CHAT, "model": {"name_or_path": str(tiny_model)},
            "data": {**CHAT["data"], "path": str(EXAMPLES / "data" / "debian_chat.jsonl"),
                     "validation_fraction": 0.05},
            "training": {**CHAT["training"], "max_steps": 20, "eval_steps": 20,
                         "save_steps": 20},
            "export": {"sample_generations": 2, "max_new_tokens": 8}},
    }
    paths = [write_job(folder / name, ray_head, job) for name, job in jobs.items()]
    with ThreadPoolExecutor(len(paths)) as pool:
        results = pool.map(lambda path: cli("submit", path, "--follow", timeout=900), paths)
    return dict(zip(jobs, results))


@pytest.mark.long
def test_sequence_classification(task_runs):
    """A classifier head on the tiny GPT-2, LoRA, per-slice metrics, a test split, merged
    export.

    Long (2.5 to 4 minutes, in its set-up): the four task runs all four tests read, each a Ray
    Train run of 2 workers with its own start-up."""
    summary, run_dir = finished(task_runs["seq_classification"])
    before, after = summary["eval_before"], summary["eval_after"]
    print(f"\nseq_classification: eval loss {before['eval_loss']:.3f} -> "
          f"{after['eval_loss']:.3f}, accuracy {before['eval_accuracy']:.3f} -> "
          f"{after['eval_accuracy']:.3f}")
    assert after["eval_loss"] < before["eval_loss"]
    for name in ("accuracy", "precision", "recall", "f1"):
        assert 0 <= after[f"eval_{name}"] <= 1
        for length in ("short", "medium", "long"):
            assert f"eval_{name}[length={length}]" in after
    assert summary["labels"] == ["math", "x11"]
    # the test split, evaluated once after training, with its slices
    assert {"test_loss", "test_accuracy", "test_f1", "test_accuracy[length=short]"} <= set(
        summary["test"])
    assert "eval_accuracy" in eval_records(run_dir)[-1]  # in metrics.jsonl too
    assert summary["exported"]["kind"] == "merged"

    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    assert model.config.id2label == {0: "math", 1: "x11"}  # the classes travel with the model
    assert not (run_dir / "model" / "adapter_config.json").exists()


def test_token_classification(task_runs):
    """Word tags on a tiny BERT with LoRA on all linear layers but the head, which trains in
    full: tag accuracy rises; entity F1 is reported."""
    summary, run_dir = finished(task_runs["token_classification"])
    before, after = summary["eval_before"], summary["eval_after"]
    print(f"\ntoken_classification: eval loss {before['eval_loss']:.3f} -> "
          f"{after['eval_loss']:.3f}, tag accuracy {before['eval_accuracy']:.3f} -> "
          f"{after['eval_accuracy']:.3f}, entity F1 {after['eval_f1']:.3f}")
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_accuracy"] > before["eval_accuracy"]
    assert {"eval_precision", "eval_recall", "eval_f1"} <= set(after)
    assert summary["labels"] == ["B-PKG", "O"]
    assert summary["exported"]["kind"] == "adapter"
    from safetensors import safe_open

    with safe_open(run_dir / "model" / "adapter_model.safetensors", "pt") as weights:
        head = [key for key in weights.keys() if ".classifier." in key]
    assert head and not any("lora_" in key for key in head)  # the whole head, not adapted
    assert summary["samples"] == []  # nothing to generate for a tagger


def test_seq2seq(task_runs):
    """A tiny BART, fully fine-tuned, writes synopses: the loss drops, ROUGE/BLEU are scored on
    generations, and summary.json shows sample generations."""
    summary, run_dir = finished(task_runs["seq2seq"])
    before, after = summary["eval_before"], summary["eval_after"]
    print(f"\nseq2seq: eval loss {before['eval_loss']:.3f} -> {after['eval_loss']:.3f}, "
          f"ROUGE-L {before['eval_rougeL']:.3f} -> {after['eval_rougeL']:.3f}")
    assert after["eval_loss"] < before["eval_loss"]
    assert {"eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_bleu"} <= set(after)
    assert summary["exported"]["kind"] == "full-model"
    assert len(summary["samples"]) == 2
    assert all(sample["prompt"] and sample["reference"] for sample in summary["samples"])

    from transformers import AutoModelForSeq2SeqLM

    assert AutoModelForSeq2SeqLM.from_pretrained(run_dir / "model").config.is_encoder_decoder


def test_chat(task_runs):
    """examples/chat.yaml as shipped (LoRA, ChatML template, 2 workers, ZeRO-2), 20 steps:
    the loss on the assistant's turns drops by a fifth, the samples answer each held-out
    conversation's last question, and the exported tokenizer keeps the template."""
    rows = [json.loads(line) for line in
            (EXAMPLES / "data" / "debian_chat.jsonl").read_text().splitlines()]
    summary, run_dir = finished(task_runs["chat"])
    before, after = summary["eval_before"], summary["eval_after"]
    print(f"\nchat: eval loss {before['eval_loss']:.3f} -> {after['eval_loss']:.3f}")
    assert after["eval_loss"] < before["eval_loss"] * 0.8 and "eval_perplexity" in after
    last_answers = {[m["content"] for m in row["messages"] if m["role"] == "assistant"][-1]
                    for row in rows}
    assert len(summary["samples"]) == 2
    for sample in summary["samples"]:
        assert sample["prompt"].endswith("<|im_start|>assistant\n")
        assert sample["reference"] in last_answers and isinstance(sample["generated"], str)

    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(run_dir / "model").chat_template == \
        CHAT["data"]["chat_template"]
