"""`tune:` sections that cannot run fail at `launch validate`: one located line each, exit 2."""

from __future__ import annotations

import pytest

from launcher.spec.load import load_spec
from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

JOB = f"""\
name: sweep-test
model:
  name_or_path: gpt2
data:
  path: {EXAMPLES / "data" / "debian_describe.jsonl"}
training:
  max_steps: 40
  eval_steps: 10
"""
PBT = "tune:\n  metric: eval_loss\n  scheduler: pbt\n  num_samples: 2\n"
LR = "  space:\n    training:\n      learning_rate: {loguniform: [0.0001, 0.01]}\n"

# (case id, tune section, text on the line the error points at, words the message says)
CASES = [
    ("empty-space", "tune:\n  metric: eval_loss\n  space: {}\n", "space:",
     "the search space is empty"),
    ("empty-section", "tune:\n  metric: eval_loss\n  space:\n    training: {}\n", "space:",
     "the search space is empty"),
    ("unknown-field", "tune:\n  metric: eval_loss\n  space:\n    training:\n"
     "      learning_rat: {choice: [0.1]}\n", "learning_rat:",
     "`training` has no field `learning_rat`; did you mean `learning_rate`?"),
    ("unknown-section", "tune:\n  metric: eval_loss\n  space:\n    scale:\n"
     "      num_workers: {choice: [1, 2]}\n", "scale:", "'training' or 'method'"),
    ("value-the-field-refuses", "tune:\n  metric: eval_loss\n  space:\n    method:\n"
     "      dropout: {uniform: [0.0, 1.5]}\n", "dropout:", "1.5 does not fit method.dropout"),
    ("two-kinds", "tune:\n  metric: eval_loss\n  space:\n    method:\n"
     "      r: {choice: [4], grid: [8]}\n", "r: {", "give exactly one of choice, grid"),
    ("low-above-high", "tune:\n  metric: eval_loss\n  space:\n    method:\n"
     "      r: {randint: [16, 4]}\n", "r: {", "low must be below high"),
    ("sampler-typo", "tune:\n  metric: eval_loss\n  space:\n    method:\n"
     "      r: {choise: [4, 8]}\n", "choise", "unknown key; did you mean `choice`?"),
    ("space-as-a-list", "tune:\n  metric: eval_loss\n  space: [training.learning_rate]\n",
     "space:", "expected `key: value` entries, not a list. Fields to sweep"),
    ("max-of-a-loss", "tune:\n  metric: eval_loss\n  mode: max\n" + LR, "mode: max",
     "eval_loss is a loss: the best trial has the lowest, so use mode: min"),
    ("grid-with-num-samples", "tune:\n  metric: eval_loss\n  search: grid\n  num_samples: 3\n"
     "  space:\n    method:\n      r: {grid: [4, 8]}\n", "num_samples: 3",
     "search grid runs every grid point once"),
    ("grid-search-with-a-range", "tune:\n  metric: eval_loss\n  search: grid\n" + LR,
     "learning_rate:",
     "search grid takes only `grid` values"),
    ("optuna-with-grid", "tune:\n  metric: eval_loss\n  search: optuna\n  space:\n"
     "    method:\n      r: {grid: [4, 8]}\n", "r: {", "use choice instead of grid"),
    ("asha-without-metric", "tune:\n  scheduler: asha\n" + LR, "tune:",
     "tune.metric: required key is missing"),
    ("unknown-metric", "tune:\n  metric: accuracy\n" + LR, "metric: accuracy",
     "'eval_loss' or 'loss'"),
    ("asha-settings-without-asha", "tune:\n  metric: eval_loss\n  asha:\n    grace_period: 5\n"
     + LR, "asha:", "used only with scheduler: asha"),
    ("asha-grace-beyond-max-t", "tune:\n  metric: eval_loss\n  scheduler: asha\n  asha:\n"
     "    grace_period: 40\n" + LR, "asha:", "grace_period (40) must be below max_t (40)"),
    ("unknown-scheduler", "tune:\n  metric: eval_loss\n  scheduler: hyperband\n" + LR,
     "scheduler: hyperband", "'none', 'asha' or 'pbt'"),
    ("pbt-without-metric", "tune:\n  scheduler: pbt\n  num_samples: 2\n" + LR, "tune:",
     "tune.metric: required key is missing"),
    ("pbt-with-optuna", PBT + "  search: optuna\n" + LR, "search: optuna",
     "scheduler pbt explores by itself"),
    ("pbt-with-grid", PBT + "  search: grid\n" + LR, "search: grid", "use search random"),
    ("pbt-one-trial", PBT.replace("2", "1") + LR, "num_samples: 1", "needs a population"),
    ("pbt-mutates-lora-r", PBT + "  pbt:\n    hyperparam_mutations: [method.r]\n" + LR
     + "    method:\n      r: {choice: [4, 8]}\n", "hyperparam_mutations",
     "PBT cannot change method.r"),
    ("pbt-mutates-a-choice", PBT + "  pbt:\n    hyperparam_mutations: "
     "[training.learning_rate]\n  space:\n    training:\n"
     "      learning_rate: {choice: [0.001, 0.01]}\n", "hyperparam_mutations",
     "sweep it with uniform or loguniform"),
    ("pbt-mutates-an-unswept-field", PBT + "  pbt:\n    hyperparam_mutations: "
     "[training.max_grad_norm]\n" + LR, "hyperparam_mutations",
     "training.max_grad_norm is not swept"),
    ("pbt-nothing-to-perturb", PBT + "  space:\n    method:\n      r: {choice: [4, 8]}\n",
     "scheduler: pbt", "nothing to perturb"),
    ("pbt-interval-beyond-max-steps", PBT + "  pbt:\n    perturbation_interval: 40\n" + LR,
     "pbt:", "perturbation_interval (40) must be below training.max_steps (40)"),
    ("pbt-population-beyond-concurrency", PBT.replace("2", "4") + "  max_concurrent_trials: 2\n"
     + LR, "max_concurrent_trials: 2", "trains its whole population at once (4 trials)"),
    ("pbt-settings-without-pbt", "tune:\n  metric: eval_loss\n  pbt: {}\n" + LR, "pbt:",
     "used only with scheduler: pbt"),
]


@pytest.mark.parametrize("tune,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_sweep_gives_one_located_line(tmp_path, cli, tune, needle, words):
    assert_one_located_line(cli, tmp_path / "job.yaml", JOB + tune, needle, words)


def test_asha_needs_a_horizon_and_evaluations(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(JOB.replace("  max_steps: 40\n", "") + "tune:\n  metric: eval_loss\n"
                   "  scheduler: asha\n" + LR)
    assert "set asha.max_t or training.max_steps" in cli("validate", job).stderr
    job.write_text(JOB.replace("  eval_steps: 10\n", "") + "tune:\n  metric: eval_loss\n"
                   "  scheduler: asha\n" + LR)
    assert "set training.eval_steps" in cli("validate", job).stderr


def test_a_valid_sweep_resolves_its_defaults(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(JOB + "tune:\n  metric: eval_loss\n  scheduler: asha\n  num_samples: 4\n"
                   + LR + "    method:\n      r: {choice: [4, 8]}\n"
                   "      target_modules: {choice: [[c_attn], all-linear]}\n")
    tune = load_spec(job).tune
    assert (tune.mode, tune.search, tune.asha.grace_period, tune.asha.max_t) == \
        ("min", "random", 10, 40)  # max_t defaults to training.max_steps
    assert list(tune.params()) == ["tune.space.training.learning_rate", "tune.space.method.r",
                                   "tune.space.method.target_modules"]


def test_pbt_needs_max_steps_and_no_early_stopping(tmp_path, cli):
    job = tmp_path / "job.yaml"
    job.write_text(JOB.replace("  max_steps: 40\n", "") + PBT + LR)
    assert "PBT counts optimizer steps: set training.max_steps" in cli("validate", job).stderr
    job.write_text(JOB + "  early_stopping: {metric: eval_loss, patience: 2}\n" + PBT + LR)
    assert "remove early_stopping" in cli("validate", job).stderr


def test_pbt_perturbs_the_continuous_fields_it_can_change_by_default(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(JOB + PBT + LR + "      weight_decay: {uniform: [0.0, 0.1]}\n"
                   "    method:\n      r: {choice: [4, 8]}\n")
    pbt = load_spec(job).tune.pbt
    assert pbt.hyperparam_mutations == ["training.learning_rate"]
    assert (pbt.perturbation_interval, pbt.quantile_fraction, pbt.resample_probability) == \
        (10, 0.25, 0.25)
