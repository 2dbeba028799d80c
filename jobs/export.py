"""After training: loss curves to plots/ and the run's summary.json."""

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
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train loss"), ("eval_loss", "eval loss")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            steps, values = zip(*points)
            axes.plot(steps, values, marker="o" if key == "eval_loss" else None, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(storage.layout.run_id)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with tempfile.TemporaryDirectory() as scratch:
        png = Path(scratch) / "loss.png"
        figure.savefig(png, dpi=100)
        storage.upload_file(png, f"{PLOTS}/loss.png")
    plt.close(figure)


def write_summary(storage: RunStorage, summary: dict) -> None:
    storage.write_text(SUMMARY, json.dumps(summary, indent=2, default=str))
