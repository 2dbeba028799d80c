"""The `method:` section: which weights train and how (PEFT adapters, freezing, the full model).

One class per method, told apart by `type` (a pydantic discriminated union). Checks that need
another section (GPUs for qlora, DeepSpeed settings, the task's head) are in
`check_method_fits_scale` and `check_method_fits_task`, which JobSpec calls.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from launcher.spec.base import Section, located

if TYPE_CHECKING:
    from launcher.spec.models import ScaleSpec


class DifferentialLR(Section):
    """Learning rates that differ across the model, through optimizer parameter groups."""

    type: str  # each method narrows it to its name; declared here so it is listed first
    head_lr_multiplier: float = Field(
        1.0, gt=0, le=1000, description="The head's learning rate is training.learning_rate "
        "times this: the weights outside the embeddings and the transformer blocks (a new "
        "classifier, the final norm; a causal LM's head tied to its embeddings counts as "
        "embeddings).")
    layer_lr_decay: float = Field(
        1.0, gt=0, le=1, description="Layer-wise decay: block i of L gets learning_rate × "
        "decay^(L-1-i), so the top block trains at the full rate and lower ones slower; the "
        "embeddings get decay^L. 1 disables it.")

    @property
    def differential_lr(self) -> bool:
        return self.head_lr_multiplier != 1 or self.layer_lr_decay != 1


class FullSpec(DifferentialLR):
    """Full fine-tuning: every weight trains."""

    type: Literal["full"] = Field("full", description="Fine-tuning method.")


class FreezeSpec(DifferentialLR):
    """Full fine-tuning of part of the model: the embeddings and lower blocks stay frozen.

    The blocks are the model's stack of transformer layers (GPT-2's `h`, BERT's
    `encoder.layer`, T5's `encoder.block` and `decoder.block`, each counted on its own).
    """

    type: Literal["freeze"] = Field("freeze", description="Fine-tuning method.")
    freeze_embeddings: bool = Field(True, description="Freeze the token and position "
                                    "embeddings (and a head tied to them).")
    freeze_first_layers: int | None = Field(
        None, ge=0, description="Freeze the first N transformer blocks; the rest train.")
    train_top_layers: int | None = Field(
        None, ge=0, description="Train only the top K transformer blocks and the head; 0 "
        "trains only the head.")

    @model_validator(mode="after")
    def _one_depth(self) -> FreezeSpec:
        if self.freeze_first_layers is not None and self.train_top_layers is not None:
            raise ValueError("give freeze_first_layers or train_top_layers, not both")
        if (not self.freeze_embeddings and self.freeze_first_layers in (None, 0)
                and self.train_top_layers is None):
            raise ValueError("this freezes nothing: set freeze_first_layers or "
                             "train_top_layers, or use type: full")
        return self


class LoraSpec(Section):
    """LoRA adapters through PEFT; the base model stays frozen."""

    type: Literal["lora"] = Field("lora", description="Fine-tuning method.")
    r: int = Field(8, ge=1, le=1024, description="Rank of the LoRA update matrices.")
    alpha: float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description="Module names to adapt, or `all-linear` (every linear layer but the output "
        "layer and a classifier's head, which trains in full). Unset means PEFT's default for "
        "the architecture (e.g. attention projections).",
    )
    modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full beside the adapters and saved with them, "
        "e.g. [score]. Classification heads are added by PEFT for those tasks.")
    head_lr_multiplier: float = Field(
        1.0, gt=0, le=1000, description="The modules_to_save (a new head) train at "
        "training.learning_rate times this; the adapters at the learning rate.")

    @property
    def differential_lr(self) -> bool:
        return self.head_lr_multiplier != 1


class QLoraSpec(LoraSpec):
    """LoRA on a base model loaded in 4-bit (bitsandbytes); needs CUDA GPUs."""

    type: Literal["qlora"] = Field("qlora", description="Fine-tuning method.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    double_quant: bool = Field(True, description="Also quantize the quantization constants.")
    compute_dtype: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", description="Dtype the 4-bit weights are dequantized to for matmuls.")


class PrefixTuningSpec(Section):
    """Prefix tuning: trained key/value vectors prepended at every attention layer."""

    type: Literal["prefix"] = Field("prefix", description="Fine-tuning method.")
    num_virtual_tokens: int = Field(20, ge=1, le=1024, description="Length of the prefix.")
    prefix_projection: bool = Field(False, description="Reparametrize the prefix through an "
                                    "MLP (more stable, more parameters while training).")


class PromptTuningSpec(Section):
    """Prompt tuning: trained soft-prompt embeddings prepended to the input."""

    type: Literal["prompt"] = Field("prompt", description="Fine-tuning method.")
    num_virtual_tokens: int = Field(20, ge=1, le=1024, description="Length of the soft prompt.")
    init_text: str | None = Field(
        None, min_length=1, description="Start the soft prompt from this text's token "
        "embeddings (e.g. `Describe the package:`); unset starts from random vectors.")


class IA3Spec(Section):
    """IA3: trained vectors that rescale activations of chosen modules."""

    type: Literal["ia3"] = Field("ia3", description="Fine-tuning method.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None, description="Modules whose activations are rescaled; unset means PEFT's default "
        "for the architecture.")
    feedforward_modules: list[str] | None = Field(
        None, description="The target modules that are feed-forward layers (their input is "
        "rescaled instead of their output); unset means PEFT's default.")
    modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full beside the IA3 vectors and saved with them.")

    @model_validator(mode="after")
    def _feedforward_among_targets(self) -> IA3Spec:
        if self.feedforward_modules is None:
            return self
        if not isinstance(self.target_modules, list):
            raise ValueError("feedforward_modules needs target_modules as a list naming them")
        if extra := sorted(set(self.feedforward_modules) - set(self.target_modules)):
            raise ValueError(f"feedforward_modules must be among target_modules; not there: "
                             f"{', '.join(extra)}")
        return self


# The module names PEFT trains in full (modules_to_save) on classification tasks, whatever the
# architecture: BERT's `classifier`, GPT-2's or Llama's `score`.
CLASSIFIER_HEADS = ("classifier", "score")
CLASSIFIER_TASKS = ("seq_classification", "token_classification")


def modules_trained_in_full(method: MethodSpec, classifier: bool) -> list[str]:
    """The method's modules_to_save, and a classifier's head: what trains whole, never adapted."""
    saved = list(getattr(method, "modules_to_save", None) or [])
    return saved + [head for head in CLASSIFIER_HEADS if classifier and head not in saved]


METHODS = (FullSpec, FreezeSpec, LoraSpec, QLoraSpec, PrefixTuningSpec, PromptTuningSpec,
           IA3Spec)
METHOD_TYPES = [cls.model_fields["type"].default for cls in METHODS]


def _known_type(value):
    """Default to LoRA when `type` is left out; name the closest type when it is misspelt."""
    if not isinstance(value, dict):
        return value
    kind = value.get("type", "lora")
    if kind not in METHOD_TYPES:
        hint = difflib.get_close_matches(str(kind), METHOD_TYPES, n=1)
        guess = f"did you mean `{hint[0]}`? " if hint else ""
        raise located("method.type", f"unknown method `{kind}`; {guess}methods: "
                      f"{', '.join(METHOD_TYPES)}")
    return {**value, "type": kind}


MethodSpec = Annotated[
    Union[FullSpec, FreezeSpec, LoraSpec, QLoraSpec, PrefixTuningSpec, PromptTuningSpec,
          IA3Spec],
    Field(discriminator="type"),
    BeforeValidator(_known_type),
]


def check_method_fits_scale(method: MethodSpec, scale: ScaleSpec) -> None:
    """Refuse methods the job's workers cannot run, at validate time rather than on the cluster."""
    deepspeed = scale.deepspeed
    if isinstance(method, QLoraSpec):
        if scale.gpus_per_worker == 0:
            raise located("method.type", "qlora loads the model in 4-bit with bitsandbytes, "
                          "which needs CUDA: set scale.gpus_per_worker > 0, or use type: lora "
                          "on CPU")
        if deepspeed.stage == 3:
            raise located("scale.deepspeed.stage", "qlora keeps the 4-bit base model whole "
                          "on each GPU; use ZeRO stage 0-2 (the adapters are what trains)")
    if getattr(method, "differential_lr", False) and deepspeed.offload_optimizer:
        raise located("scale.deepspeed.offload_optimizer", "offload_optimizer makes DeepSpeed "
                      "build its own optimizer with one learning rate, so head_lr_multiplier / "
                      "layer_lr_decay would be ignored: turn one of them off")


def check_method_fits_task(method: MethodSpec, task: str) -> None:
    """Refuse adapters on a module that also trains in full (a classifier's head or one in
    modules_to_save): PEFT cannot do both to one module."""
    targets = getattr(method, "target_modules", None)
    if not isinstance(targets, list):
        return  # all-linear or PEFT's default: jobs.methods leaves those modules out
    whole = set(modules_trained_in_full(method, task in CLASSIFIER_TASKS))
    for name in targets:
        if clash := whole & set(name.split(".")):
            why = ("is in modules_to_save" if clash & set(method.modules_to_save or [])
                   else f"is the classifier head, which {task} trains in full")
            raise located("method.target_modules", f"`{name}` {why}, so it cannot also get "
                          "adapters: take it out of target_modules")
