"""The spec's `tune` section: a Ray Tune sweep over training and method fields."""

from __future__ import annotations

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
    scheduler: Literal["none", "asha"] = Field(
        "none", description="`none`: every trial runs to the end; `asha`: stop the trials that "
        "are behind at each rung (settings in `asha`).")
    asha: AshaSpec | None = Field(None, description="Settings of the asha scheduler; defaults "
                                  "apply when it is unset.")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials running at once. Unset means as many as the cluster's "
        "CPUs and GPUs hold: each trial is one Ray Train run with `scale:`'s workers "
        "(fractional gpus_per_worker let several trials share a GPU).")

    @model_validator(mode="after")
    def _coherent(self) -> TuneSpec:
        if not any(self.space.values()):
            raise located("tune.space", "the search space is empty: sweep at least one field, "
                           "e.g. training: learning_rate: loguniform: [1e-4, 1e-2]")
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
        if self.scheduler == "asha" and self.asha is None:
            self.asha = AshaSpec()
        if self.scheduler != "asha" and self.asha is not None:
            raise located("tune.asha", "used only with scheduler: asha")
        return self

    def params(self) -> dict[str, SearchParam]:
        """Every swept field by its location, e.g. `tune.space.training.learning_rate`."""
        return {f"tune.space.{section}.{name}": param
                for section, fields in self.space.items() for name, param in fields.items()}
