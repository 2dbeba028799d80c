"""The `method:` section: which weights train and how (PEFT adapters or the full model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from launcher.spec.base import Section


class LoraSpec(Section):
    """LoRA adapters through PEFT."""

    type: Literal["lora"] = Field("lora", description="Fine-tuning method.")
    r: int = Field(8, ge=1, le=1024, description="Rank of the LoRA update matrices.")
    alpha: float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description="Module names to adapt, or `all-linear`. Unset means PEFT's default for "
        "the architecture (e.g. attention projections).",
    )
