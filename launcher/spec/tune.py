"""The spec's `tune` section: a Ray Tune sweep over training and method fields."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from launcher.spec.base import Section, located

SEARCH_KINDS = ("choice", "grid", "uniform", "loguniform", "randint")


class SearchParam(Section):
    """One dimension of a sweep's search space: exactly one of its keys."""

    choice: list[Any] | None = Field(None, min_length=1,
                                     description="Each trial samples one of these values.")
    grid: list[Any] | None = Field(None, min_length=1,
                                   description="Every value is run (one grid dimension).")
    uniform: tuple[float, float] | None = Field(None, description="[low, high]: a float drawn "
                                                "uniformly.")
    loguniform: tuple[float, float] | None = Field(
        None, description="[low, high] with low > 0: a float drawn uniformly on a log scale "
        "(learning rates, weight decay).")
    randint: tuple[int, int] | None = Field(None, description="[low, high): an integer drawn "
                                            "uniformly, high excluded (as in Ray Tune).")

    @model_validator(mode="after")
    def _one_kind(self) -> SearchParam:
        given = [kind for kind in SEARCH_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SEARCH_KINDS)}")
        if self.kind in ("uniform", "loguniform", "randint"):
            low, high = self.args
            if low >= high:
                raise ValueError(f"{self.kind}: low must be below high (got [{low}, {high}])")
            if self.kind == "loguniform" and low <= 0:
                raise ValueError("loguniform: low must be above 0")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in SEARCH_KINDS if getattr(self, kind) is not None)

    @property
    def args(self) -> list:
        return list(getattr(self, self.kind))

    def extremes(self) -> list:
        """Values a trial can get that together show whether a field accepts the range."""
        if self.kind in ("choice", "grid"):
            return self.args
        low, high = self.args
        return [low, high - 1] if self.kind == "randint" else [low, high]


class AshaSpec(Section):
    """ASHA (asynchronous successive halving): stop the trials that are behind at each rung."""

    grace_period: int = Field(10, ge=1, description="Optimizer steps every trial runs before "
                              "ASHA may stop it (the first rung).")
    reduction_factor: float = Field(2, gt=1, description="At each rung only the best "
                                    "1/reduction_factor of the trials go on.")
    max_t: int | None = Field(None, ge=1, description="Optimizer steps of a trial that is never "
                              "stopped; unset means training.max_steps.")


# What PBT may perturb: fields a trial can change when it resumes from another trial's checkpoint.
# The learning rate is rescaled in the restored optimizer and schedule (jobs.callbacks), and
# clipping reads max_grad_norm at every step. Other fields shape the model (method.r: a
# checkpoint with another r cannot load), live in the restored optimizer state
# (weight_decay), or change what a step is (batch sizes).
PBT_MUTABLE = ("training.learning_rate", "training.max_grad_norm")


class PbtSpec(Section):
    """Population Based Training: at every perturbation the trials behind continue from a
    checkpoint of a trial ahead, with perturbed hyperparameters."""

    perturbation_interval: int = Field(10, ge=1, description="Optimizer steps between "
                                       "perturbations: each trial trains this many steps, then "
                                       "PBT may replace it with a perturbed copy of a better one.")
    hyperparam_mutations: list[str] | None = Field(
        None, description="Swept fields PBT perturbs, e.g. `[training.learning_rate]`: "
        "uniform or loguniform ones among " + ", ".join(PBT_MUTABLE) + ". Unset means every "
        "such field of `space`. Other swept fields keep their sampled value, and a copied "
        "trial takes its source's.")
    quantile_fraction: float = Field(0.25, gt=0, le=0.5, description="The bottom fraction of "
                                     "trials that copy one of the top fraction.")
    resample_probability: float = Field(0.25, ge=0, le=1, description="Chance that a "
                                        "perturbation draws a new value from the space instead "
                                        "of multiplying the value by 0.8 or 1.2.")


SCHEDULER_SETTINGS = {"asha": AshaSpec, "pbt": PbtSpec}  # scheduler → its settings section


class TuneSpec(Section):
    """A sweep: many trials, each a Ray Train run of this job with other hyperparameters."""

    metric: Literal["eval_loss", "loss"] = Field(
        description="What ranks the trials: `eval_loss` (validation loss at each evaluation) "
        "or `loss` (training loss at each logging step).")
    mode: Literal["min", "max"] = Field("min", description="Whether the best trial has the "
                                        "lowest (`min`, for losses) or the highest metric.")
    space: dict[Literal["training", "method"], dict[str, SearchParam]] = Field(
        description="Fields to sweep, by section, e.g. `training: {learning_rate: {loguniform: "
        "[1e-4, 1e-2]}}` or `method: {r: {choice: [4, 8, 16]}}`; each takes one of choice, "
        "grid, uniform, loguniform, randint. Other fields keep the job's values.")
    search: Literal["random", "grid", "optuna"] = Field(
        "random", description="`random`: sample the space (grid dimensions are enumerated); "
        "`grid`: every combination of the `grid` values, once; `optuna`: Optuna's TPE picks "
        "each trial from the results so far.")
    num_samples: int = Field(1, ge=1, description="Trials to run (random, optuna); with `grid` "
                             "dimensions under random search, passes over the grid.")
    scheduler: Literal["none", "asha", "pbt"] = Field(
        "none", description="`none`: every trial runs to the end; `asha`: stop the trials that "
        "are behind at each rung (settings in `asha`); `pbt`: Population Based Training, the "
        "trials behind continue from the checkpoints of those ahead with perturbed values "
        "(settings in `pbt`).")
    asha: AshaSpec | None = Field(None, description="Settings of the asha scheduler; defaults "
                                  "apply when it is unset.")
    pbt: PbtSpec | None = Field(None, description="Settings of the pbt scheduler; defaults "
                                "apply when it is unset.")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials running at once. Unset means as many as the cluster's "
        "CPUs and GPUs hold: each trial is one Ray Train run with `scale:`'s workers "
        "(fractional gpus_per_worker let several trials share a GPU).")

    @model_validator(mode="after")
    def _coherent(self) -> TuneSpec:
        if self.mode == "max":  # every metric a sweep can rank by is a loss
            raise located("tune.mode", f"{self.metric} is a loss: the best trial has the "
                           "lowest, so use mode: min (or leave mode out)")
        if not any(self.space.values()):
            raise located("tune.space", "the search space is empty: sweep at least one field, "
                           "e.g. training: learning_rate: loguniform: [1e-4, 1e-2]")
        for name, settings in SCHEDULER_SETTINGS.items():  # the chosen one's, defaults if unset
            if self.scheduler == name and getattr(self, name) is None:
                setattr(self, name, settings())
            if self.scheduler != name and getattr(self, name) is not None:
                raise located(f"tune.{name}", f"used only with scheduler: {name}")
        if self.pbt is not None:
            self._check_pbt()
        for loc, param in self.params().items():
            if self.search == "grid" and param.kind != "grid":
                raise located(loc, f"search grid takes only `grid` values (got {param.kind}); "
                               "use search random to sample it")
            if self.search == "optuna" and param.kind == "grid":
                raise located(loc, "search optuna picks its own points: use choice instead "
                               "of grid")
        if self.search == "grid" and self.num_samples != 1:
            raise located("tune.num_samples", "search grid runs every grid point once; remove "
                           "num_samples, or use search random to repeat the grid")
        return self

    def _check_pbt(self) -> None:
        if self.search != "random":
            raise located("tune.search", f"scheduler pbt explores by itself, perturbing and "
                           f"copying trials as they train: use search random (it draws the "
                           f"first population), not {self.search}")
        if self.trial_count() < 2:
            raise located("tune.num_samples", "scheduler pbt needs a population to compare: "
                           "set num_samples to 2 or more")
        if self.max_concurrent_trials and self.trial_count() > self.max_concurrent_trials:
            raise located("tune.max_concurrent_trials", f"scheduler pbt trains its whole "
                           f"population at once ({self.trial_count()} trials): raise "
                           f"max_concurrent_trials or lower num_samples")
        continuous = [key for key, p in self.fields().items()
                      if p.kind in ("uniform", "loguniform")]
        if self.pbt.hyperparam_mutations is None:
            self.pbt.hyperparam_mutations = [key for key in continuous if key in PBT_MUTABLE]
            if not self.pbt.hyperparam_mutations:
                raise located("tune.scheduler", "scheduler pbt has nothing to perturb: sweep "
                               "one of " + ", ".join(PBT_MUTABLE) + " with uniform or "
                               "loguniform")
        for key in self.pbt.hyperparam_mutations:
            if key not in self.fields():
                raise located("tune.pbt.hyperparam_mutations", f"{key} is not swept: add it "
                               "to tune.space, or remove it here")
            if key not in PBT_MUTABLE:
                raise located("tune.pbt.hyperparam_mutations", f"PBT cannot change {key} "
                               "while a trial trains (a copied checkpoint fixes it, e.g. "
                               "method.r shapes the adapter); it perturbs only "
                               + ", ".join(PBT_MUTABLE))
            if key not in continuous:
                raise located("tune.pbt.hyperparam_mutations", f"PBT perturbs {key} by "
                               "factors 0.8 and 1.2: sweep it with uniform or loguniform")

    def check_pbt_fits(self, training) -> None:
        """PBT counts optimizer steps and restarts each trial at every perturbation."""
        if self.pbt is None:
            return
        interval = self.pbt.perturbation_interval
        if training.max_steps is None:
            raise located("tune.pbt", "PBT counts optimizer steps: set training.max_steps")
        if interval >= training.max_steps:
            raise located("tune.pbt", f"perturbation_interval ({interval}) must be below "
                           f"training.max_steps ({training.max_steps}), or PBT never perturbs")
        if self.metric == "loss" and interval < training.logging_steps:
            raise located("tune.pbt", f"PBT compares the last logged loss: "
                           f"perturbation_interval ({interval}) must be at least "
                           f"training.logging_steps ({training.logging_steps})")
        if training.early_stopping is not None:
            raise located("training.early_stopping", "scheduler pbt already ends weak "
                           "lineages by copying better trials, and restarts each trial at "
                           "every perturbation (its patience would restart too): remove "
                           "early_stopping")

    def trial_count(self) -> int:
        """Trials the sweep runs under search random: num_samples passes over the grid."""
        return self.num_samples * math.prod(
            len(p.args) for p in self.params().values() if p.kind == "grid")

    def fields(self) -> dict[str, SearchParam]:
        """Every swept field by its dotted name, e.g. `training.learning_rate`."""
        return {loc.removeprefix("tune.space."): p for loc, p in self.params().items()}

    def params(self) -> dict[str, SearchParam]:
        """Every swept field by its location, e.g. `tune.space.training.learning_rate`."""
        return {f"tune.space.{section}.{name}": param
                for section, fields in self.space.items() for name, param in fields.items()}
