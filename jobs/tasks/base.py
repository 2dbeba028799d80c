"""What every task provides, and the helpers the task modules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

IGNORE_INDEX = -100  # the label value Hugging Face losses (and the metrics here) skip


@dataclass(frozen=True)
class Task:
    """One kind of fine-tune: the model class it loads and how its rows become model inputs.

    encode_row(row, tokenizer, data_spec, labels) -> dict   one raw row to model inputs
    keep(encoded) -> bool                                  drops rows left with nothing to learn
    collator(tokenizer)                                     pads a batch
    metrics(tokenizer, labels) -> fn(predictions, label_ids) -> {name: value}
    reduce_logits(logits, labels)                           what evaluation keeps of the logits
    """

    name: str
    model_class: str  # the transformers Auto class that loads the base model
    peft_task_type: str  # PEFT's TaskType for adapters on that model
    encode_row: Callable
    collator: Callable
    metrics: Callable
    keep: Callable | None = None
    reduce_logits: Callable | None = None
    # classification: the spec field naming the column of classes, and whether it holds one
    # class per row or a list of them (one per word)
    label_field: str | None = None
    labels_per_word: bool = False
    # generative tasks: prompt(row, data_spec, tokenizer) and reference(row, data_spec) give
    # the model's input text and the expected output, for sample generations; `generates_at_eval`:
    # evaluation predicts by generate() (Seq2SeqTrainer) instead of from the logits
    prompt: Callable | None = None
    reference: Callable | None = None
    generates_at_eval: bool = False
    # The model's loss divides by the token count the Trainer passes (num_items_in_batch). The
    # Trainer then multiplies the loss by the number of processes, which only that division
    # undoes: for any other loss the reported loss and the gradients would grow with workers.
    loss_takes_token_count: bool = False

    def trainer_base(self):
        """The Hugging Face Trainer class to train with: Seq2SeqTrainer where evaluation
        generates."""
        from transformers import Seq2SeqTrainer, Trainer

        return Seq2SeqTrainer if self.generates_at_eval else Trainer

    def arguments(self, args, data):
        """`args` (TrainingArguments), as Seq2SeqTrainingArguments that generate at evaluation
        (up to data.max_length tokens) where the task evaluates by generating."""
        if not self.generates_at_eval:
            return args
        from dataclasses import fields

        from transformers import Seq2SeqTrainingArguments

        values = {field.name: getattr(args, field.name) for field in fields(args) if field.init}
        return Seq2SeqTrainingArguments(**values, predict_with_generate=True,
                                        generation_max_length=data.max_length)


def text(value) -> str:
    return "" if value is None else str(value).strip()


def first_tensor(logits):
    """Models may return (logits, extra outputs...); evaluation wants the logits."""
    return logits[0] if isinstance(logits, (tuple, list)) else logits
