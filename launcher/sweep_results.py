"""A sweep's trials as `launch results` shows them: one row per trial, best first.

Read from the run's storage alone (tune/trials.json, written by jobs.tune at the end of the
sweep), so it works after the cluster is gone.
"""

from __future__ import annotations

import json

from launcher.contract import TRIALS, RunLayout
from launcher.storage import Storage


def sweep_table(storage: Storage, run_dir: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(headers, rows) of the trials table, sorted by the sweep's metric; no rows if the run
    is not a sweep (or its sweep has not ended yet)."""
    trials = storage.read_json(RunLayout(run_dir).uri(TRIALS))
    if trials is None:
        return (), []
    metric = next(key for key in trials[0] if key in ("eval_loss", "loss")) if trials else "metric"
    params = sorted({name for trial in trials for name in trial["config"]})
    headers = ("TRIAL", "STATE", metric.upper(), "STEPS", *params)
    rows = [(t["trial_id"], t["state"], _show(t.get(metric)), str(t["steps"]),
             *(_show(t["config"].get(name)) for name in params)) for t in trials]
    if any("perturbations" in t for t in trials):  # PBT: the trials each one continued
        headers += ("COPIED",)
        rows = [row + (_copies(t.get("perturbations", [])),) for row, t in zip(rows, trials)]
    return headers, rows


def _copies(perturbations: list[dict]) -> str:
    """`a1b2_00001@4 a1b2_00000@8`: whose checkpoint the trial continued, from which step."""
    return " ".join(f"{p['from_trial']}@{p['step']}" for p in perturbations) or "-"


def _show(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)
