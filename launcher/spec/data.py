"""The `data:` section: where the rows are and which columns hold what each task reads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from launcher.spec.base import Section, located

Task = Literal["causal_lm", "seq_classification", "token_classification", "seq2seq"]


class CleanSpec(Section):
    """Cleaning rules, applied in this order to the columns the task reads, before the data is
    split; a conversation's text is its messages' contents. summary.json counts the rows each
    rule dropped (`data.dropped`)."""

    strip: bool = Field(True, description="Trim whitespace at both ends of every text value.")
    drop_empty: bool = Field(True, description="Drop rows where a column the task reads is "
                             "missing, null or empty (a conversation: has no message, or a "
                             "user or assistant message without text).")
    min_chars: int | None = Field(None, ge=1, description="Drop rows whose text (the task's "
                                  "columns together) has fewer characters.")
    max_chars: int | None = Field(None, ge=1, description="Drop rows whose text (the task's "
                                  "columns together) has more characters.")
    dedupe: bool = Field(False, description="Drop rows equal to an earlier row in every column "
                         "the task reads.")
    near_dedupe: bool = Field(
        False, description="Drop rows whose text equals an earlier row's once both are "
        "lowercased, stripped of punctuation and digits, and whitespace is collapsed.")

    @model_validator(mode="after")
    def _min_below_max(self) -> CleanSpec:
        if self.min_chars and self.max_chars and self.min_chars > self.max_chars:
            raise located("data.clean.min_chars", f"min_chars ({self.min_chars}) is above "
                          f"max_chars ({self.max_chars}): every row would be dropped")
        return self


class DataSpec(Section):
    """The training rows: where they are, the columns the task reads (others are ignored),
    how they are cleaned, and how they are split."""

    path: str = Field(
        min_length=1,
        description="Where the rows are: a local .jsonl, .json, .csv or .parquet file, a "
        "folder written by `datasets`' `save_to_disk`, the same on `s3://bucket/key` (read "
        "with the storage section's S3 settings), or a Hugging Face hub dataset name such as "
        "`org/name`. Relative paths are resolved against the job file's folder.",
    )
    subset: str | None = Field(None, min_length=1, description="Hub datasets only: the "
                               "configuration to load (`name` in `datasets.load_dataset`).")
    split: str = Field("train", min_length=1, description="The split read from a hub dataset "
                       "or a saved DatasetDict; launch holds out validation and test rows "
                       "from it.")
    prompt_field: str = Field("prompt", min_length=1,
                              description="causal_lm: column holding the prompt.")
    response_field: str = Field(
        "response", min_length=1,
        description="causal_lm: column holding the response the model learns."
    )
    messages_field: str | None = Field(
        None, min_length=1,
        description="causal_lm: a column of chat conversations, each a list of `{role, "
        "content}` messages (role system, user or assistant), read instead of prompt_field "
        "and response_field. They are rendered with the tokenizer's chat template, and the loss "
        "is on the assistant's turns only unless train_on_prompt.")
    chat_template: str | None = Field(
        None, min_length=1,
        description="With messages_field: a Jinja chat template (Hugging Face's format, as in "
        "a tokenizer's `chat_template`) that renders the conversations. It replaces the "
        "tokenizer's own and is saved with the exported tokenizer; needed when the tokenizer "
        "has none.")
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
        description="Also compute the loss on prompt tokens (with messages_field: on the "
        "system and user turns too). By default only response (assistant) tokens count.",
    )
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Fraction of rows held out for evaluation (fixed seed)."
    )
    test_fraction: float = Field(
        0.0, ge=0, lt=1, description="Fraction of rows held out for one evaluation after "
        "training (fixed seed); its metrics (`test_loss`, `test_<metric>`) go to summary.json "
        "under `test`.")
    stratify: bool | None = Field(
        None, description="Keep each label's share of rows the same in every split. Unset: "
        "on for seq_classification (the only task with one label per row), off otherwise.")
    clean: CleanSpec = Field(default_factory=CleanSpec, description="Cleaning rules.")
    slice_field: str | None = Field(
        None, min_length=1, description="A column to group the evaluation rows by (e.g. a "
        "length bucket or a source): every metric is also reported per value of it, as "
        "`eval_<metric>[<column>=<value>]`.")
    max_length: int = Field(
        256, ge=8, le=65536, description="Examples are truncated to this many tokens."
    )

    @model_validator(mode="after")
    def _rows_left_to_train(self) -> DataSpec:
        if self.validation_fraction + self.test_fraction >= 1:
            raise located("data.test_fraction", f"validation_fraction + test_fraction "
                          f"({self.validation_fraction} + {self.test_fraction}) must be below 1, "
                          "or no rows are left to train on")
        return self

    @model_validator(mode="after")
    def _one_way_to_show_a_prompt(self) -> DataSpec:
        if self.messages_field is None:
            if self.chat_template is not None:
                raise located("data.chat_template", "a chat template renders conversations: "
                              "set data.messages_field to the column holding them, or remove "
                              "chat_template")
            return self
        if self.prompt_template != type(self).model_fields["prompt_template"].default:
            raise located("data.prompt_template", "prompt_template shows prompt_field rows; "
                          "with messages_field the chat template renders the conversation: "
                          "remove one of them")
        return self

    @field_validator("prompt_template")
    @classmethod
    def _template_has_prompt(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("must contain `{prompt}` where the prompt text goes")
        return value

    def columns_for(self, task: Task) -> dict[str, str]:
        """The spec field → column name pairs the task reads from every row."""
        if task == "causal_lm" and self.messages_field:
            return {"messages_field": self.messages_field}
        names = {"causal_lm": ("prompt_field", "response_field"),
                 "seq_classification": ("text_field", "label_field"),
                 "token_classification": ("tokens_field", "tags_field"),
                 "seq2seq": ("source_field", "target_field")}[task]
        return {name: getattr(self, name) for name in names}

    def stratify_column(self, task: Task) -> str | None:
        """The column whose value shares the splits keep, or None for plain random splits."""
        if task == "seq_classification" and self.stratify is not False:
            return self.label_field
        return None

    @property
    def location(self) -> Literal["local", "s3", "hub"]:
        """Where `path` points, once the spec loader has made every local path absolute."""
        if self.path.startswith("s3://"):
            return "s3"
        return "local" if self.path.startswith("/") else "hub"
