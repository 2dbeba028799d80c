"""After training: loss curves to plots/ and the run's summary.json."""

from __future__ import annotations

import json

from launcher.layout import RunLayout


def read_metrics(layout: RunLayout) -> list[dict]:
    if not layout.metrics.exists():
        return []
    return [json.loads(line) for line in layout.metrics.read_text().splitlines() if line]


def plot_losses(layout: RunLayout, records: list[dict]) -> None:
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
    axes.set_title(layout.root.name)
    axes.grid(alpha=0.3)
    axes.legend()
    layout.plots.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(layout.plots / "loss.png", dpi=100)
    plt.close(figure)


def write_summary(layout: RunLayout, summary: dict) -> None:
    layout.summary.write_text(json.dumps(summary, indent=2, default=str))
