"""seq2seq: an encoder-decoder writes the target text from the source text.
Evaluation generates the targets; metrics: ROUGE-1/2/L and BLEU."""

from __future__ import annotations

from jobs import metrics
from jobs.tasks.base import IGNORE_INDEX, Task, text


def encode_row(row, tokenizer, spec, labels=None) -> dict:
    encoded = dict(tokenizer(prompt(row, spec, tokenizer), truncation=True,
                             max_length=spec.max_length))
    labels = tokenizer(text_target=reference(row, spec), truncation=True,
                       max_length=spec.max_length)["input_ids"]
    # A BERT-style tokenizer (an encoder-decoder warm-started from BERT/MiniLM) starts every
    # text with [CLS], which such a model's decoder already starts from: learning to write it
    # again teaches the decoder to repeat it.
    if tokenizer.bos_token_id is None and labels[:1] == [tokenizer.cls_token_id]:
        labels = labels[1:]
    encoded["labels"] = labels
    return encoded


def prompt(row, spec, tokenizer) -> str:
    return text(row[spec.source_field])


def reference(row, spec) -> str:
    return text(row[spec.target_field])


def collator(tokenizer):
    from transformers import DataCollatorForSeq2Seq

    # The model builds its decoder inputs from the labels itself (shifted right).
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def metric_fn(tokenizer, labels=None):
    def decode(ids):
        import numpy as np

        # Generations and labels are padded with IGNORE_INDEX between batches.
        ids = np.where(ids < 0, tokenizer.pad_token_id, ids)
        return tokenizer.batch_decode(ids, skip_special_tokens=True)

    return lambda predictions, label_ids: metrics.text_overlap(decode(predictions),
                                                               decode(label_ids))


TASK = Task(name="seq2seq", model_class="AutoModelForSeq2SeqLM", peft_task_type="SEQ_2_SEQ_LM",
            encode_row=encode_row, collator=collator, metrics=metric_fn, prompt=prompt,
            reference=reference, generates_at_eval=True)
