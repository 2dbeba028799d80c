"""The `export:` section: what the run leaves in model/ after training, and the sample
generations summary.json shows for generative tasks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from launcher.spec.base import Section, located

# PEFT methods whose adapter cannot be folded into the base weights (virtual tokens).
UNMERGEABLE = ("prefix", "prompt")


class ExportSpec(Section):
    """The final model in model/ (with its tokenizer), and a few sample generations."""

    format: Literal["adapter", "merged"] = Field(
        "adapter", description="`adapter`: only the trained adapter weights (small; load "
        "them onto the base model with PEFT). `merged`: the adapter folded into the base "
        "weights (PEFT merge_and_unload), a full model that loads without PEFT; not for "
        "prefix or prompt tuning. Methods that train the base weights (full, freeze) always "
        "export the full model.")
    sample_generations: int = Field(
        3, ge=0, le=100, description="causal_lm and seq2seq: greedy outputs of the exported "
        "model for this many validation rows go to summary.json (`samples`), with their "
        "ROUGE/BLEU against the references (`sample_metrics`).")
    max_new_tokens: int = Field(48, ge=1, le=4096,
                                description="Longest sample generation, in tokens.")


def check_export_fits_method(export: ExportSpec, method) -> None:
    if export.format == "merged" and method.type in UNMERGEABLE:
        raise located("export.format", f"method {method.type} adds virtual tokens, which "
                      "cannot be merged into the base weights: use format: adapter")
