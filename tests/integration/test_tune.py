"""Sweeps on the session's real Ray head: every trial is a real Ray Train run of the tiny model.

Kept small for 2 CPUs: one worker per trial, ZeRO-2 without offload, a few steps, at most two
trials of a sweep at once. The grid sweep holds a trial that crashes, and is stopped and
resumed midway, so one sweep answers three questions.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from launcher.spec.load import merge_overrides
from launcher.spec.models import StorageSpec
from launcher.storage import storage_for
from launcher.sweep_results import sweep_table
from tests.support.project import EXAMPLES, submitted_results, submitted_run_id

pytestmark = pytest.mark.integration

TRIAL = {"data": {"path": str(EXAMPLES / "data" / "debian_describe.jsonl"),
                  "validation_fraction": 0.05, "max_length": 64},
         "training": {"max_steps": 8, "batch_size_per_worker": 4, "logging_steps": 2,
                      "eval_steps": 4, "save_steps": 100, "warmup_ratio": 0.0,
                      "max_failures": 0},
         "scale": {"num_workers": 1}}
CRASHES = ["no_such_module"]  # a LoRA target that is not in the model: PEFT raises
GRID = [["c_attn"], CRASHES, ["c_attn", "c_proj"]]


def sweep_job(folder: Path, tiny_model: Path, ray_head, tune: dict,
              training: dict | None = None) -> Path:
    """The quickstart as a sweep of TRIAL-sized trials; results under `folder`/runs."""
    job = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    merge_overrides(job, {**TRIAL, "model": {"name_or_path": str(tiny_model)},
                          "storage": {"uri": str(folder / "runs")},
                          "target": {"address": ray_head.address},
                          "tune": {"metric": "eval_loss", "max_concurrent_trials": 2, **tune}})
    merge_overrides(job, {"training": training or {}})
    (folder / "job.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    return folder / "job.yaml"


ASHA_STEPS = 12
# Optuna suggests every trial's values and ASHA judges every evaluation: one sweep checks both.
ASHA = ({"search": "optuna", "num_samples": 4, "scheduler": "asha",
         "asha": {"grace_period": 2, "reduction_factor": 2},
         "space": {"training": {"learning_rate": {"loguniform": [1e-5, 3e-2]}},
                   "method": {"r": {"choice": [2, 4, 8]}}}},
        {"max_steps": ASHA_STEPS, "eval_steps": 2})
PBT = ({"num_samples": 2, "scheduler": "pbt",
        "pbt": {"perturbation_interval": 4, "resample_probability": 0.0},
        "space": {"training": {"learning_rate": {"loguniform": [1e-4, 5e-2]}}}},
       {"lr_scheduler": "constant"})


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, cli, tiny_model, ray_head) -> dict[str, tuple[Path, list[dict]]]:
    """The ASHA and the PBT sweep, submitted at once and followed to their ends: name -> (run
    folder, trials). Their trials queue for the head's 2 CPUs, so one trial's start-up (its
    Train controller and worker imports) overlaps another's training; one sweep after the other,
    each start-up left a core idle."""

    def run(name: str, tune: dict, training: dict) -> tuple[Path, list[dict]]:
        job = sweep_job(tmp_path_factory.mktemp(name), tiny_model, ray_head, tune, training)
        started = time.time()
        result = cli("submit", job, "--follow", timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        run_dir = submitted_results(result)
        trials = json.loads((run_dir / "tune" / "trials.json").read_text())
        print(f"\n{name}: {len(trials)} trials in {time.time() - started:.0f} s: "
              + ", ".join(f"{t['state']} after {t['steps']} steps" for t in trials))
        return run_dir, trials

    with ThreadPoolExecutor(2) as pool:
        asha, pbt = pool.submit(run, "asha", *ASHA), pool.submit(run, "pbt", *PBT)
        return {"asha": asha.result(), "pbt": pbt.result()}


@dataclass
class StoppedSweep:
    run_dir: Path
    trials: list[dict]
    resumed_output: str
    finished_at_stop: dict[str, str]  # trial folder -> its summary.json when the sweep stopped


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory, cli, tiny_model, ray_head) -> StoppedSweep:
    """The grid sweep the grid tests read: LoRA target modules {c_attn, one that is not in the
    model, c_attn and c_proj}, two trials at a time. The crashing trial runs beside the first,
    so the third starts well after the first: the driver is stopped once the first has
    finished and the third trains, and `launch submit --resume` ends the sweep."""
    job = sweep_job(tmp_path_factory.mktemp("grid"), tiny_model, ray_head, {
        "search": "grid", "space": {"method": {"target_modules": {"grid": GRID}}}})
    submitted = cli("submit", job)
    assert submitted.returncode == 0, submitted.stderr
    run_id, run_dir = submitted_run_id(submitted), submitted_results(submitted)

    def finished() -> dict[str, str]:
        return {p.parent.name: p.read_text() for p in (run_dir / "tune").glob("*/summary.json")}

    def one_trains_unfinished() -> bool:
        for spec in (run_dir / "tune").glob("*/spec.json"):
            trial, metrics = spec.parent, spec.parent / "metrics.jsonl"
            if (json.loads(spec.read_text())["method"]["target_modules"] != CRASHES
                    and not (trial / "summary.json").exists() and metrics.exists()
                    and '"loss"' in metrics.read_text()):
                return True
        return False

    deadline = time.time() + 400
    while not (finished() and one_trains_unfinished()):
        assert time.time() < deadline, cli("logs", run_id).stdout[-4000:]
        time.sleep(0.5)
    assert f"{run_id}: STOPPED" in cli("stop", run_id).stdout
    finished_at_stop = finished()

    resumed = cli("submit", job, "--resume", run_id, "--follow", timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    trials = json.loads((run_dir / "tune" / "trials.json").read_text())
    return StoppedSweep(run_dir, trials, resumed.stdout, finished_at_stop)


@pytest.mark.long
def test_a_grid_sweep_covers_exactly_the_grid(grid_sweep):
    """Long (about 2 minutes, in its set-up): the sweep all three grid tests read runs 3
    trials, 2 at a time, each a Ray Train run of its own, and is submitted twice."""
    configs = sorted(json.dumps(t["config"]) for t in grid_sweep.trials)
    assert configs == sorted(json.dumps({"method.target_modules": modules}) for modules in GRID)


def test_a_crashing_trial_is_failed_while_the_others_finish(grid_sweep):
    """A LoRA target that is not in the model makes PEFT raise in that trial's worker."""
    run_dir = grid_sweep.run_dir
    for trial in grid_sweep.trials:
        crashes = trial["config"]["method.target_modules"] == CRASHES
        assert trial["state"] == ("FAILED" if crashes else "COMPLETED"), trial
        if crashes:
            assert "no_such_module" in trial["error"]
        else:  # a completed trial is a whole run of its own
            folder = run_dir / "tune" / trial["trial_id"]
            assert json.loads((folder / "summary.json").read_text())["global_step"] == 8
            assert (folder / "model" / "adapter_config.json").is_file()
    best = json.loads((run_dir / "tune" / "best.json").read_text())
    assert best["config"]["method.target_modules"] != CRASHES
    assert (run_dir / "model" / "adapter_config.json").is_file()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "SUCCEEDED"


def test_a_stopped_sweep_resumes_with_submit_resume(grid_sweep):
    """`launch submit --resume` restores the stopped sweep from storage (Tuner.restore): a
    finished trial keeps its result and is not trained again; the rest run to their end."""
    assert "[launch] resuming the sweep" in grid_sweep.resumed_output
    for trial, summary in grid_sweep.finished_at_stop.items():
        assert (grid_sweep.run_dir / "tune" / trial / "summary.json").read_text() == summary
    completed = [t for t in grid_sweep.trials if t["state"] == "COMPLETED"]
    assert len(completed) == 2 > len(grid_sweep.finished_at_stop)  # one finished after resume


@pytest.mark.long
def test_asha_stops_optuna_suggestions_early_and_best_is_the_top_completed_row(sweeps):
    """ASHA's first rung is at step 2, so a trial stopped there has 10 steps left to save: a
    stop reaches the trial's workers a few steps late on 2 busy CPUs (Tune kills the trial's
    driver, then Ray Train its workers).

    Long (2 to 4 minutes, in its set-up): the ASHA and PBT sweeps both tests read. ASHA needs
    trials to compare, 4 here, 2 at a time, each a Ray Train run of its own; PBT's are below."""
    run_dir, trials = sweeps["asha"]
    assert len(trials) == 4
    assert sum(t["steps"] for t in trials) < 4 * ASHA_STEPS  # ASHA cut at least one short
    assert any(t["state"] == "STOPPED" for t in trials)

    # Optuna's suggestions: each trial its own rate, in range, and r among the choices.
    rates = [t["config"]["training.learning_rate"] for t in trials]
    assert len(set(rates)) == 4 and all(1e-5 <= rate <= 3e-2 for rate in rates)
    assert all(t["config"]["method.r"] in (2, 4, 8) for t in trials)
    # Tune keeps the Optuna study with the experiment: what a restored sweep goes on from.
    assert list((run_dir / "tune").glob("searcher-state-*.pkl"))
    for trial in trials:  # and each trial's folder says what it ran with
        spec = json.loads((run_dir / "tune" / trial["trial_id"] / "spec.json").read_text())
        assert spec["training"]["learning_rate"] == trial["config"]["training.learning_rate"]
        assert spec["method"]["r"] == trial["config"]["method.r"] and spec["tune"] is None

    headers, rows = sweep_table(storage_for(StorageSpec(uri=str(run_dir.parents[1]))),
                                str(run_dir))
    assert headers[:4] == ("TRIAL", "STATE", "EVAL_LOSS", "STEPS")
    values = [float(row[2]) for row in rows]
    assert values == sorted(values)  # best first
    # best.json names the best trial that ran to its end, the first COMPLETED row: a trial
    # ASHA stopped shows the loss of its last rung, which can be lower.
    best = json.loads((run_dir / "tune" / "best.json").read_text())
    top = next(row for row in rows if row[1] == "COMPLETED")
    assert top[0] == best["trial_id"]
    assert float(top[2]) == pytest.approx(best["value"], rel=1e-3)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_trial"] == best["trial_id"] and summary["trials_stopped"] >= 1
    assert summary["search"] == "optuna" and summary["scheduler"] == "asha"
    for plot in ("sweep_curves.png", "sweep_training.learning_rate.png"):
        assert (run_dir / "plots" / plot).read_bytes()[:4] == b"\x89PNG"


def test_pbt_continues_the_trial_behind_from_the_one_ahead_with_a_perturbed_rate(sweeps):
    """Two trials, two segments of 4 steps. At step 4 PBT ranks them, and the trial behind goes
    on from the other's checkpoint with its learning rate times 0.8 or 1.2, which the restored
    optimizer really trains with: a constant schedule logs the rate as it is. The sweep is
    three Ray Train runs: the copy restarts the trial behind."""
    run_dir, trials = sweeps["pbt"]
    assert [t["state"] for t in trials] == ["COMPLETED"] * 2
    [copied] = [t for t in trials if t["perturbations"]]
    [ahead] = [t for t in trials if t is not copied]
    [copy] = copied["perturbations"]
    assert (copy["step"], copy["from_trial"]) == (4, ahead["trial_id"])
    was, now = (values["training.learning_rate"] for values in
                (copy["from_values"], copy["values"]))
    assert now in (pytest.approx(was * 0.8), pytest.approx(was * 1.2))
    assert copied["config"]["training.learning_rate"] == now
    records = [json.loads(line) for line in
               (run_dir / "tune" / copied["trial_id"] / "metrics.jsonl").read_text().splitlines()]
    rates = [r["learning_rate"] for r in records if "learning_rate" in r and r["step"] > 4]
    assert rates and rates == [pytest.approx(now)] * len(rates)
    assert json.loads((run_dir / "tune" / copied["trial_id"] / "summary.json").read_text())[
        "global_step"] == 8
    for trial in trials:  # each trial's Tune pointer folder went with its end
        assert not Path(tempfile.gettempdir(), f"launch-pbt-{trial['trial_id']}").exists()

    best = json.loads((run_dir / "tune" / "best.json").read_text())
    assert (best["trial_id"], best["value"]) == (trials[0]["trial_id"], trials[0]["eval_loss"])
    assert best["config"] == trials[0]["config"]
    assert best["checkpoint"] == trials[0]["checkpoint"] and "/checkpoints/from_step_" in \
        best["checkpoint"]
    headers, rows = sweep_table(storage_for(StorageSpec(uri=str(run_dir.parents[1]))),
                                str(run_dir))  # what `launch results` shows
    assert headers[-1] == "COPIED"
    assert {row[0]: row[-1] for row in rows} == {copied["trial_id"]: f"{ahead['trial_id']}@4",
                                                 ahead["trial_id"]: "-"}
