"""After training: loss curves (a sweep's curves and scatter) to plots/, and summary.json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from launcher.layout import METRICS, PLOTS, SUMMARY

from jobs.storage import RunStorage


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


def write_summary(storage: RunStorage, summary: dict) -> None:
    storage.write_text(SUMMARY, json.dumps(summary, indent=2, default=str))
