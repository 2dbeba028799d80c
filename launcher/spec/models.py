"""The job spec: the one schema both halves share.

Imported by the launcher (validation, submission) and by `jobs` on the cluster (reading the
resolved spec.json), so it must stay free of heavy imports: pydantic only. The larger
sections live beside it: `target` (local / kubernetes) in target.py, `tune` in tune.py.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from launcher.spec.base import Section, located
from launcher.spec.data import DataSpec, Task
from launcher.spec.export import ExportSpec, check_export_fits_method
from launcher.spec.method import (
    LoraSpec,
    MethodSpec,
    check_method_fits_scale,
    check_method_fits_task,
)
from launcher.spec.target import RayTargetSpec, TargetSpec, default_kind
from launcher.spec.tune import TuneSpec

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ModelSpec(Section):
    """The base model to fine-tune."""

    name_or_path: str = Field(
        min_length=1,
        description="Hugging Face hub name (e.g. `gpt2`), or a folder holding the model "
        "config, weights and tokenizer (as `save_pretrained` writes it): local, or "
        "`s3://bucket/key` on the storage section's store (each node copies it to its disk "
        "once). Relative paths are resolved against the job file's folder.",
    )

    @property
    def location(self) -> Literal["local", "s3", "hub"]:
        """Where the job loads it from, once launch has made local paths absolute."""
        if self.name_or_path.startswith("s3://"):
            return "s3"
        return "local" if Path(self.name_or_path).is_absolute() else "hub"


class EarlyStoppingSpec(Section):
    """Stop training when an evaluation metric has not improved for `patience` evaluations."""

    metric: str = Field(
        "eval_loss", description="An evaluation metric as the Trainer logs it: `eval_loss`, "
        "or e.g. `eval_accuracy` where the task computes it.")
    mode: Literal["min", "max"] | None = Field(
        None, description="Whether lower or higher is better; unset means min for metrics "
        "ending in `loss` or `perplexity`, max otherwise.")
    patience: int = Field(3, ge=1, description="Evaluations without improvement before "
                          "stopping.")
    min_delta: float = Field(0.0, ge=0, description="The least change that counts as an "
                             "improvement.")

    @field_validator("metric")
    @classmethod
    def _is_an_evaluation_metric(cls, value: str) -> str:
        if not re.match(r"^eval_\w+$", value):
            raise ValueError("early stopping watches an evaluation metric, named as the "
                             "Trainer logs it: `eval_loss`, `eval_accuracy`, …")
        return value

    @property
    def lower_is_better(self) -> bool:
        if self.mode is not None:
            return self.mode == "min"
        return self.metric.endswith(("loss", "perplexity"))


class TrainingSpec(Section):
    """Optimisation settings, per the Hugging Face Trainer's meaning."""

    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the training split.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    warmup_steps: int | None = Field(
        None, ge=0, description="Steps spent warming up, instead of warmup_ratio.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    batch_size_per_worker: int = Field(8, ge=1, description="Micro-batch size on each worker.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Micro-batches accumulated per optimizer step."
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    logging_steps: int = Field(5, ge=1, description="Report metrics every N optimizer steps.")
    eval_steps: int | None = Field(
        None,
        ge=1,
        description="Evaluate every N steps during training. The validation split is always "
        "evaluated before and after training.",
    )
    save_steps: int = Field(
        50, ge=1, description="Checkpoint every N steps; the final step is always checkpointed."
    )
    seed: int = Field(42, ge=0, description="Seed for data splits, initialisation and shuffling.")
    max_failures: int = Field(
        3, ge=-1, description="Times a worker that died is recovered from by restarting the "
        "workers from the last checkpoint; -1 for no limit, 0 to fail at once. An exception of "
        "the job's own code (model or data that cannot be loaded) fails the run at once.",
    )
    checkpoint_upload: Literal["async", "sync"] = Field(
        "async", description="`async` uploads each checkpoint to storage in the background "
        "while training goes on (Ray Train's asynchronous upload), at the lowest CPU priority "
        "so that training keeps its CPUs (bench/checkpoint_transfer.py); `sync` waits for each "
        "upload.")
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Stop when an evaluation metric stops improving; the step it stops "
        "at is checkpointed and exported like a last step.")

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainingSpec:
        if self.warmup_steps is not None and self.warmup_ratio > 0:
            raise located("training.warmup_steps", "set warmup_steps or warmup_ratio, not both")
        return self

    @model_validator(mode="after")
    def _early_stopping_needs_evaluations(self) -> TrainingSpec:
        if self.early_stopping is not None and self.eval_steps is None:
            raise located("training.early_stopping", "early stopping watches evaluations "
                          "during training: set training.eval_steps")
        return self


class DeepSpeedSpec(Section):
    """DeepSpeed ZeRO settings; the launcher generates the DeepSpeed config from them."""

    stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO stage: 0 off, 1 optimizer state, "
                                       "2 + gradients, 3 + parameters.")
    offload_optimizer: bool = Field(False, description="Keep optimizer state in CPU memory.")
    offload_params: bool = Field(False, description="Keep parameters in CPU memory (stage 3).")

    @model_validator(mode="after")
    def _offload_needs_zero(self) -> DeepSpeedSpec:
        if self.offload_params and self.stage != 3:
            raise ValueError("offload_params needs stage: 3")
        if self.offload_optimizer and self.stage == 0:
            raise ValueError("offload_optimizer needs stage 1, 2 or 3")
        return self


class ScaleSpec(Section):
    """How many Ray Train workers, what each gets, and how they share the model."""

    num_workers: int = Field(2, ge=1, le=4096, description="Ray Train workers (one process each).")
    num_nodes: int = Field(
        1, ge=1, le=4096, description="Ray nodes the workers spread over: 1 packs them on one "
        "node; as many as num_workers puts each on its own node (STRICT_SPREAD); in between "
        "spreads them. More than 1 needs s3:// storage, which every node reaches.")
    cpus_per_worker: float = Field(1, gt=0, description="CPUs reserved for each worker.")
    gpus_per_worker: float = Field(0, ge=0, description="GPUs reserved for each worker.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Training precision; fp16 needs GPUs."
    )
    deepspeed: DeepSpeedSpec = Field(
        default_factory=DeepSpeedSpec, description="DeepSpeed ZeRO settings."
    )

    @property
    def placement_strategy(self) -> str:
        """Ray's placement strategy for the workers' bundles."""
        if self.num_nodes == 1:
            return "PACK"
        return "STRICT_SPREAD" if self.num_nodes == self.num_workers else "SPREAD"

    @model_validator(mode="after")
    def _nodes_hold_workers(self) -> ScaleSpec:
        if self.num_nodes > self.num_workers:
            raise ValueError(f"num_nodes ({self.num_nodes}) is more than num_workers "
                             f"({self.num_workers}): a node without a worker trains nothing")
        return self

    @model_validator(mode="after")
    def _fp16_needs_gpu(self) -> ScaleSpec:
        if self.precision == "fp16" and self.gpus_per_worker == 0:
            raise ValueError("precision fp16 needs gpus_per_worker > 0; use bf16 or fp32 on CPU")
        return self


class StorageSpec(Section):
    """Where every result of a run is kept: <uri>/<job name>/<run id>/.

    Credentials never go in the job file: they come from the environment
    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or an AWS profile.
    """

    uri: str = Field(
        "./runs",
        min_length=1,
        description="A local directory (relative paths are resolved against the job file's "
        "folder) or `s3://bucket/prefix` on any S3-compatible store.",
    )
    endpoint_url: str | None = Field(
        None,
        description="S3 endpoint for stores other than AWS, e.g. http://127.0.0.1:8333 "
        "(SeaweedFS) or http://minio:9000. Unset means AWS.",
    )
    region: str = Field("us-east-1", min_length=1, description="S3 region.")
    path_style: bool = Field(
        True, description="Path-style addressing (http://host/bucket/key), which most "
        "S3-compatible stores need; false for virtual-hosted style.",
    )
    profile: str | None = Field(
        None, description="AWS profile (in ~/.aws/credentials) holding the credentials; "
        "unset means the environment or the default profile.",
    )

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        value = value.removeprefix("file://")
        if value.startswith("s3://"):
            bucket = value[5:].split("/", 1)[0]
            if not S3_BUCKET.match(bucket):
                raise ValueError(f"`{bucket}` is not a valid S3 bucket name (3-63 lowercase "
                                 "letters, digits, '.' or '-')")
            return value.rstrip("/")
        if value.startswith("s3:"):  # s3:/bucket or s3:bucket would be a local folder
            raise ValueError(f"write s3://{value[3:].lstrip('/')} (two slashes after s3:)")
        if "://" in value:
            raise ValueError("use a local path or s3://bucket/prefix")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL, e.g. http://127.0.0.1:8333")
        return value

    @model_validator(mode="after")
    def _s3_settings_need_s3(self) -> StorageSpec:
        s3_only = {name for name in ("endpoint_url", "profile") if getattr(self, name)}
        if s3_only and not self.is_s3:
            raise ValueError(f"{', '.join(sorted(s3_only))}: used only with an s3:// uri")
        return self

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


class ImageSpec(Section):
    """The container image that holds the job (see docker/Dockerfile).

    Two stages: a runtime image (Ray base + the pinned training stack), tagged by the hash of
    what it holds, and the job image (runtime + a code layer: the `jobs` package, the files
    the spec names, the resolved spec), tagged by the digest of its build context. An
    unchanged job is never rebuilt or pushed again.
    """

    repository: str = Field(
        min_length=1,
        description="Where the image is pushed, without a tag: `REGISTRY/PATH`, e.g. "
        "`127.0.0.1:5000/launch/my-job` or `ghcr.io/my-org/finetunes`. The registry host "
        "is always written out (no Docker Hub default).",
    )
    builder: Literal["auto", "docker", "oci"] = Field(
        "auto",
        description="`docker`: build the Dockerfile with docker (or buildah where no Docker "
        "engine runs) and push. `oci`: no daemon; append the code layer to the runtime image "
        "already in the registry. `auto`: `oci` when that runtime image exists, else `docker`.",
    )
    base: str | None = Field(
        None,
        description="The Ray image the runtime stage builds FROM. Unset picks the pinned "
        "rayproject/ray CPU tag, or its CUDA tag when scale.gpus_per_worker > 0.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="Extra files or folders (relative to the job file's folder) copied into "
        "the image next to the data and model the spec names. A `.launchignore` there "
        "(.dockerignore syntax) excludes paths.",
    )
    insecure: bool | None = Field(
        None,
        description="Talk plain HTTP to the registry. Unset means true only for registries "
        "on localhost / 127.0.0.1.",
    )
    platform: str = Field(
        "linux/amd64",
        pattern=r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$",
        description="Platform picked from a multi-arch base image.",
    )
    max_context_mb: int = Field(
        2048, ge=1, description="Refuse build contexts larger than this (MiB); the error names "
        "the biggest files.",
    )

    @field_validator("repository")
    @classmethod
    def _has_registry_host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        host, _, path = value.partition("/")
        if not path or not ("." in host or ":" in host or host == "localhost"):
            raise ValueError("write the registry host first, e.g. 127.0.0.1:5000/launch/my-job")
        if ":" in path or "@" in path:
            raise ValueError("give the repository without a tag or digest; launch tags images "
                             "by their content")
        if not re.match(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", path):
            raise ValueError(f"`{path}` is not a valid repository path (lowercase letters, "
                             "digits, '.', '_', '-' and '/')")
        return value


class JobSpec(Section):
    """A fine-tuning job: everything `launch submit` needs."""

    name: str = Field(
        description="Job name: lowercase letters, digits and '-', at most 40 characters; "
        "it names the run ids and the results folder.",
    )
    task: Task = Field(
        "causal_lm", description="What the model learns: `causal_lm` (a response to a "
        "prompt), `seq_classification` (a label per text), `token_classification` (a tag per "
        "word), `seq2seq` (an encoder-decoder writing a target from a source).")
    model: ModelSpec = Field(description="The base model.")
    data: DataSpec = Field(description="The training data.")
    method: MethodSpec = Field(default_factory=LoraSpec, description="The fine-tuning "
                               "method, by `type`: full, freeze, lora, qlora, prefix, prompt, ia3.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimisation.")
    scale: ScaleSpec = Field(default_factory=ScaleSpec, description="Workers and DeepSpeed.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Where results go.")
    target: TargetSpec = Field(default_factory=RayTargetSpec, description="Where the job runs: "
                               "a Ray cluster (`kind: ray`) or Kubernetes (`kind: kubernetes`).")
    image: ImageSpec | None = Field(
        None, description="The container image to build and push; needed by targets that run "
        "the job from an image (kubernetes). Unset for ray targets, which ship the code with "
        "the Ray job instead.",
    )
    export: ExportSpec = Field(default_factory=ExportSpec, description="The final model "
                               "(adapter or merged) and sample generations.")
    tune: TuneSpec | None = Field(
        None, description="A hyperparameter sweep (Ray Tune): each trial trains this job with "
        "other values of the swept fields; the best trial's model is the run's model.")

    @model_validator(mode="after")
    def _export_fits_the_method(self) -> JobSpec:
        check_export_fits_method(self.export, self.method)
        return self

    @model_validator(mode="after")
    def _method_fits_the_scale(self) -> JobSpec:
        check_method_fits_scale(self.method, self.scale)
        return self

    @model_validator(mode="after")
    def _method_fits_the_task(self) -> JobSpec:
        check_method_fits_task(self.method, self.task)
        return self

    @model_validator(mode="after")
    def _nodes_share_storage(self) -> JobSpec:
        if self.scale.num_nodes > 1 and not self.storage.is_s3:
            raise PydanticCustomError(
                "shared_storage", "multi-node training needs shared storage: storage.uri is a "
                "folder on one machine, so each node would keep its own checkpoints and a "
                "restarted worker could not find them; use s3://", {"loc": "scale.num_nodes"})
        return self

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind_defaults_to_ray(cls, value):
        return default_kind(value)

    @model_validator(mode="after")
    def _target_gets_what_it_needs(self) -> JobSpec:
        """An image for targets that run one; s3:// storage for clusters that cannot read
        this machine's folders."""
        needs = self.target.capabilities
        kind = self.target.kind
        if needs.runs_from_image and self.image is None:
            raise PydanticCustomError(
                "target_needs", f"kind {kind} runs the job from an image: add an `image` "
                "section (image.repository)", {"loc": "target.kind"})
        if not needs.shares_this_machine and not self.storage.is_s3:
            raise PydanticCustomError(
                "target_needs", f"kind {kind} needs storage.uri on s3:// (the cluster at "
                f"{self.target.where} cannot reach a folder on this machine)",
                {"loc": "storage.uri"})
        return self

    @model_validator(mode="after")
    def _sweep_fits_the_job(self) -> JobSpec:
        """The swept fields exist and accept their values; ASHA and PBT know a trial's length."""
        if self.tune is None:
            return self
        for loc, param in self.tune.params().items():
            section, name = loc.split(".")[2:]
            current = getattr(self, section)
            fields = list(type(current).model_fields)
            if name not in fields:
                hint = difflib.get_close_matches(name, fields, n=1)
                guess = f"did you mean `{hint[0]}`? " if hint else ""
                raise located(loc, f"`{section}` has no field `{name}`; {guess}fields: "
                               f"{', '.join(fields)}")
            for value in param.extremes():
                try:
                    type(current).model_validate({**current.model_dump(), name: value})
                except ValidationError as err:
                    problem = err.errors(include_url=False)[0]["msg"]
                    raise located(loc, f"{value!r} does not fit {section}.{name}: "
                                   f"{problem.removeprefix('Value error, ')}") from None
        self.tune.check_pbt_fits(self.training)
        asha = self.tune.asha
        if asha is None:
            return self
        if asha.max_t is None and self.training.max_steps is None:
            raise located("tune.asha", "ASHA counts optimizer steps: set asha.max_t or "
                           "training.max_steps")
        asha.max_t = asha.max_t or self.training.max_steps
        if asha.grace_period >= asha.max_t:
            raise located("tune.asha", f"grace_period ({asha.grace_period}) must be below "
                           f"max_t ({asha.max_t}), or ASHA never stops a trial")
        if self.tune.metric == "eval_loss" and self.training.eval_steps is None:
            raise located("tune.scheduler", "asha compares eval_loss during training: set "
                           "training.eval_steps (at most asha.grace_period)")
        return self

    @field_validator("name")
    @classmethod
    def _name_is_an_id(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("use lowercase letters, digits and '-' (not at the ends), at most "
                             "40 characters, e.g. `my-finetune`")
        return value
