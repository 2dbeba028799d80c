"""The `data:` section: where the rows are and which columns hold what each task reads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from launcher.spec.base import Section

Task = Literal["causal_lm", "seq_classification", "token_classification", "seq2seq"]


class DataSpec(Section):
    """The training rows: a file, and the columns the task reads (unused ones are ignored)."""

    path: str = Field(
        min_length=1,
        description="Local .jsonl, .json, .csv or .parquet file with one example per row. "
        "Relative paths are resolved against the job file's folder.",
    )
    prompt_field: str = Field("prompt", min_length=1,
                              description="causal_lm: column holding the prompt.")
    response_field: str = Field(
        "response", min_length=1,
        description="causal_lm: column holding the response the model learns."
    )
    text_field: str = Field("text", min_length=1,
                            description="seq_classification: column holding the text.")
    label_field: str = Field("label", min_length=1,
                             description="seq_classification: column holding the label.")
    tokens_field: str = Field("tokens", min_length=1, description="token_classification: "
                              "column holding the list of words.")
    tags_field: str = Field("tags", min_length=1, description="token_classification: column "
                            "holding one tag per word.")
    source_field: str = Field("source", min_length=1,
                              description="seq2seq: column holding the input text.")
    target_field: str = Field("target", min_length=1,
                              description="seq2seq: column holding the text to produce.")
    prompt_template: str = Field(
        "{prompt}\n",
        description="How a prompt is shown to the model; `{prompt}` is replaced by the prompt "
        "text and the response follows directly.",
    )
    train_on_prompt: bool = Field(
        False,
        description="Also compute the loss on prompt tokens. By default only response tokens "
        "count.",
    )
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of rows held out for evaluation (fixed seed)."
    )
    max_length: int = Field(
        256, ge=8, le=65536, description="Examples are truncated to this many tokens."
    )

    @field_validator("prompt_template")
    @classmethod
    def _template_has_prompt(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("must contain `{prompt}` where the prompt text goes")
        return value

    def columns_for(self, task: Task) -> dict[str, str]:
        """The spec field → column name pairs the task reads from every row."""
        names = {"causal_lm": ("prompt_field", "response_field"),
                 "seq_classification": ("text_field", "label_field"),
                 "token_classification": ("tokens_field", "tags_field"),
                 "seq2seq": ("source_field", "target_field")}[task]
        return {name: getattr(self, name) for name in names}
