"""causal_lm: a decoder learns the response to a prompt, or the assistant's turns of a chat
conversation (data.messages_field, jobs.tasks.chat); by default only response tokens count
towards the loss. Metric: perplexity."""

from __future__ import annotations

from jobs import metrics
from jobs.tasks import chat
from jobs.tasks.base import IGNORE_INDEX, Task, first_tensor, text


def encode_row(row, tokenizer, spec, labels=None) -> dict:
    """input_ids/attention_mask/labels; prompt tokens get IGNORE_INDEX labels."""
    if spec.messages_field:
        return chat.encode_row(row, tokenizer, spec)
    prompt_text = prompt(row, spec, tokenizer)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(text(row[spec.response_field]), add_special_tokens=False)["input_ids"]
    response_ids = response_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[: spec.max_length]
    prompt_labels = prompt_ids if spec.train_on_prompt else [IGNORE_INDEX] * len(prompt_ids)
    labels = (prompt_labels + response_ids)[: spec.max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def prompt(row, spec, tokenizer) -> str:
    if spec.messages_field:
        return chat.prompt(row, spec, tokenizer)
    return spec.prompt_template.replace("{prompt}", text(row[spec.prompt_field]))


def reference(row, spec) -> str:
    if spec.messages_field:
        return chat.reference(row, spec)
    return text(row[spec.response_field])


def keep(encoded: dict) -> bool:
    # A prompt longer than max_length leaves no response token to learn from.
    return any(label != IGNORE_INDEX for label in encoded["labels"])


def collator(tokenizer):
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def reduce_logits(logits, labels):
    """Per row: [summed negative log-likelihood of its labelled tokens, their count].

    Two numbers a row instead of the vocabulary-wide logits, and per-row sums are what
    perplexity per slice needs.
    """
    import torch

    logits = first_tensor(logits)
    logits = logits[:, -labels.shape[1]:]  # prompt tuning prepends virtual tokens
    predicted, targets = logits[:, :-1].float(), labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(predicted.transpose(1, 2), targets,
                                            ignore_index=IGNORE_INDEX, reduction="none")
    return torch.stack([nll.sum(dim=1), (targets != IGNORE_INDEX).sum(dim=1).float()], dim=1)


def metric_fn(tokenizer, labels):
    return lambda predictions, label_ids: metrics.perplexity(predictions[:, 0], predictions[:, 1])


TASK = Task(name="causal_lm", model_class="AutoModelForCausalLM", peft_task_type="CAUSAL_LM",
            encode_row=encode_row, keep=keep, collator=collator, metrics=metric_fn,
            reduce_logits=reduce_logits, prompt=prompt, reference=reference,
            loss_takes_token_count=True)
