"""token_classification: one tag per word (e.g. BIO entity tags). Words are split into
sub-word tokens; the first token of a word carries its tag, the others are ignored by the
loss and the metrics. Metrics: entity-level precision / recall / F1 (seqeval), token accuracy."""

from __future__ import annotations

from jobs import metrics
from jobs.data import DataError
from jobs.tasks.base import IGNORE_INDEX, Task, first_tensor


def encode_row(row, tokenizer, spec, labels: list[str]) -> dict:
    words, tags = row[spec.tokens_field], row[spec.tags_field]
    if len(words) != len(tags):
        raise DataError(f"a row has {len(words)} words in `{spec.tokens_field}` but "
                        f"{len(tags)} tags in `{spec.tags_field}`; give one tag per word")
    encoded = tokenizer([str(word) for word in words], is_split_into_words=True,
                        truncation=True, max_length=spec.max_length)
    ids = {label: i for i, label in enumerate(labels)}
    aligned, previous = [], None
    for word in encoded.word_ids():
        first_piece = word is not None and word != previous
        aligned.append(ids.get(str(tags[word]), IGNORE_INDEX) if first_piece else IGNORE_INDEX)
        previous = word
    return {**encoded, "labels": aligned}


def keep(encoded: dict) -> bool:
    return any(label != IGNORE_INDEX for label in encoded["labels"])


def collator(tokenizer):
    from transformers import DataCollatorForTokenClassification

    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE_INDEX)


def reduce_logits(logits, labels):
    return first_tensor(logits).argmax(dim=-1)


def metric_fn(tokenizer, labels: list[str]):
    def compute(predictions, label_ids):
        predicted, gold = [], []
        for row_predictions, row_labels in zip(predictions, label_ids):
            kept = [(p, g) for p, g in zip(row_predictions, row_labels) if g != IGNORE_INDEX]
            predicted.append([labels[p] for p, _ in kept])
            gold.append([labels[g] for _, g in kept])
        return metrics.entities(predicted, gold)

    return compute


TASK = Task(name="token_classification", model_class="AutoModelForTokenClassification",
            peft_task_type="TOKEN_CLS", encode_row=encode_row, keep=keep, collator=collator,
            metrics=metric_fn, reduce_logits=reduce_logits, label_field="tags_field",
            labels_per_word=True)
