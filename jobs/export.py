"""After training: the model as the spec's `export` asks, a few sample generations, loss and
metric curves (a sweep's curves and scatter) to plots/, and summary.json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from jobs.storage import RunStorage
from launcher.contract import METRICS, PLOTS, SUMMARY, TrainingSummary


def export_model(saved: Path, out: Path, spec, task, tokenizer, labels: list[str] | None):
    """The model to put in model/, from what `trainer.save_model` wrote to `saved`: an adapter
    for PEFT methods, the whole model for methods that train the base weights.

    export.format `merged` folds the adapter into the base weights (PEFT merge_and_unload) and
    saves the full model, with the tokenizer, to `out`. Returns (the exported model loaded for
    generation, {kind, method, path}) where path is the folder to upload.
    """
    from peft import PeftModel

    from jobs.model import load_base_model

    kind = {"method": spec.method.type}
    if not (saved / "adapter_config.json").is_file():
        model = load_base_model(spec.model, task, tokenizer, labels, path=str(saved))
        return model, {**kind, "kind": "full-model", "path": str(saved)}
    model = PeftModel.from_pretrained(load_base_model(spec.model, task, tokenizer, labels),
                                      str(saved))
    if spec.export.format == "adapter":
        return model, {**kind, "kind": "adapter", "path": str(saved),
                       "base_model": spec.model.name_or_path}
    model = model.merge_and_unload()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model, {**kind, "kind": "merged", "path": str(out)}


def sample_generations(model, tokenizer, task, rows, data, count: int,
                       max_new_tokens: int) -> tuple[list[dict], dict]:
    """Greedy outputs of the model for the first `count` rows (prompt, reference, generated),
    and their ROUGE / BLEU against the references."""
    import torch

    from jobs.metrics import text_overlap

    encoder_decoder = model.config.is_encoder_decoder
    model.eval()
    samples = []
    for row in rows.select(range(min(count, len(rows)))):
        prompt = task.prompt(row, data, tokenizer)
        # The same tokens as in training: causal_lm prompts were encoded without specials.
        inputs = tokenizer(prompt, return_tensors="pt", truncation=True,
                           max_length=data.max_length, add_special_tokens=encoder_decoder)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)[0]
        if not encoder_decoder:  # a decoder's output starts with the prompt
            output = output[inputs["input_ids"].shape[1]:]
        samples.append({"prompt": prompt, "reference": task.reference(row, data),
                        "generated": tokenizer.decode(output, skip_special_tokens=True).strip()})
    if not samples:
        return samples, {}
    return samples, text_overlap([s["generated"] for s in samples],
                                 [s["reference"] for s in samples])


def read_metrics(storage: RunStorage) -> list[dict]:
    text = storage.read_text(METRICS) or ""
    return [json.loads(line) for line in text.splitlines() if line]


def plot_losses(storage: RunStorage, records: list[dict]) -> None:
    """plots/loss.png: training loss per logging step and evaluation loss where measured."""
    figure, axes = _pyplot().subplots(figsize=(7, 4))
    for key, label in (("loss", "train loss"), ("eval_loss", "eval loss")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            steps, values = zip(*points)
            axes.plot(steps, values, marker="o" if key == "eval_loss" else None, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(storage.layout.run_id)
    axes.legend()
    _upload(storage, figure, "loss.png")


def plot_eval_metrics(storage: RunStorage, records: list[dict]) -> None:
    """plots/eval_metrics.png: each evaluation metric the task computes (accuracy, F1, ROUGE,
    perplexity...) per evaluation step; none for a task whose only metric is the loss."""
    skipped = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
    names = sorted({key for r in records for key in r
                    if key.startswith("eval_") and key not in skipped and "[" not in key})
    if not names:
        return
    figure, axes = _pyplot().subplots(figsize=(7, 4))
    for name in names:
        points = [(r["step"], r[name]) for r in records if name in r]
        steps, values = zip(*points)
        axes.plot(steps, values, marker="o", label=name.removeprefix("eval_"))
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("metric")
    axes.set_title(storage.layout.run_id)
    axes.legend(fontsize="small")
    _upload(storage, figure, "eval_metrics.png")


def plot_sweep(storage: RunStorage, metric: str, trials: list[dict], param: str) -> None:
    """plots/sweep_curves.png: the metric per step of every trial (where it stopped shows);
    plots/sweep_<param>.png: each trial's final metric against the main swept field."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for trial in trials:
        if trial["curve"]:
            steps, values = zip(*trial["curve"])
            axes.plot(steps, values, marker=".", label=f"{trial['trial_id']} {trial['state']}")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(metric)
    axes.set_title(f"{storage.layout.run_id}: every trial")
    axes.legend(fontsize="small")
    _upload(storage, figure, "sweep_curves.png")

    figure, axes = plt.subplots(figsize=(7, 4))
    finished = [t for t in trials if t[metric] is not None]
    values = [t["config"][param] for t in finished]
    numeric = all(isinstance(v, (int, float)) for v in values)
    axes.scatter(values if numeric else [json.dumps(v) for v in values],
                 [t[metric] for t in finished])
    if numeric and values and min(values) > 0 and max(values) / min(values) >= 100:
        axes.set_xscale("log")
    axes.set_xlabel(param)
    axes.set_ylabel(f"final {metric}")
    axes.set_title(f"{storage.layout.run_id}: final {metric} by {param}")
    _upload(storage, figure, f"sweep_{param}.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def _upload(storage: RunStorage, figure, name: str) -> None:
    figure.axes[0].grid(alpha=0.3)
    figure.tight_layout()
    with tempfile.TemporaryDirectory() as scratch:
        png = Path(scratch) / name
        figure.savefig(png, dpi=100)
        storage.upload_file(png, f"{PLOTS}/{name}")
    _pyplot().close(figure)


def write_summary(storage: RunStorage, summary: TrainingSummary) -> None:
    """summary.json, in its contract's shape (launcher.contract); what was never set is left
    out (a training run's summary has no sweep fields)."""
    storage.write_text(SUMMARY, json.dumps(summary.model_dump(exclude_unset=True), indent=2,
                                           default=str))
