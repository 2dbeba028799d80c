"""seq_classification: one class per text, from a head on the encoder (or decoder).
Metrics: accuracy, macro precision / recall / F1."""

from __future__ import annotations

from jobs import metrics
from jobs.tasks.base import Task, first_tensor, text

UNSEEN = -1  # a validation row whose class the training split never had


def encode_row(row, tokenizer, spec, labels: list[str]) -> dict:
    encoded = dict(tokenizer(text(row[spec.text_field]), truncation=True,
                             max_length=spec.max_length))
    label = str(row[spec.label_field])
    encoded["labels"] = labels.index(label) if label in labels else UNSEEN
    return encoded


def keep(encoded: dict) -> bool:
    return encoded["labels"] != UNSEEN


def collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def reduce_logits(logits, labels):
    return first_tensor(logits).argmax(dim=-1)


def metric_fn(tokenizer, labels: list[str]):
    return lambda predictions, label_ids: metrics.classification(predictions, label_ids,
                                                                 len(labels))


TASK = Task(name="seq_classification", model_class="AutoModelForSequenceClassification",
            peft_task_type="SEQ_CLS", encode_row=encode_row, keep=keep, collator=collator,
            metrics=metric_fn, reduce_logits=reduce_logits, label_field="label_field")
