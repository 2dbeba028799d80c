"""causal_lm on chat rows (data.messages_field): each conversation is rendered with the
tokenizer's chat template, and the loss is on the assistant's turns (with train_on_prompt, on
every token).

Which tokens are the assistant's is found for any template, as TRL- and axolotl-style masking
does: an assistant message's tokens start where the conversation before it, rendered with the
generation prompt, ends, and stop where the conversation through it ends. Each such beginning
must render as the start of the whole conversation, which holds for templates that render a
turn without looking at the turns after it.
"""

from __future__ import annotations

from jobs.data import DataError
from jobs.tasks.base import IGNORE_INDEX
from launcher.spec.chat import conversation_problem

# A conversation every chat template renders: a template that cannot fails before any row.
PROBE = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}]


def use_chat_template(tokenizer, template: str | None) -> None:
    """Give `tokenizer` the spec's `template` when there is one, and check it can render."""
    if template is not None:
        tokenizer.chat_template = template
    if not tokenizer.chat_template:
        raise DataError(f"the tokenizer of {tokenizer.name_or_path} has no chat template to "
                        "render data.messages_field with: set data.chat_template to one (a "
                        "Jinja string; examples/chat.yaml has a ChatML one)")
    render(tokenizer, PROBE)


def encode_row(row, tokenizer, spec) -> dict:
    """input_ids/attention_mask/labels; tokens outside assistant turns get IGNORE_INDEX labels
    unless spec.train_on_prompt."""
    messages = conversation(row, spec)
    text = render(tokenizer, messages)
    ids = _ids(tokenizer, text)
    learned = [spec.train_on_prompt] * len(ids)
    for start, end in _assistant_spans(tokenizer, messages, text, ids):
        learned[start:end] = [True] * (end - start)
    if ids[-1:] != [tokenizer.eos_token_id]:  # as after a response: the model learns to stop
        answered = bool(messages) and messages[-1]["role"] == "assistant"
        ids.append(tokenizer.eos_token_id)
        learned.append(spec.train_on_prompt or answered)
    ids = ids[: spec.max_length]
    labels = [token if learn else IGNORE_INDEX for token, learn in zip(ids, learned)]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def prompt(row, spec, tokenizer) -> str:
    """The conversation up to its last assistant message, ready for the model to answer."""
    messages = conversation(row, spec)
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"),
               default=len(messages))
    return render(tokenizer, messages[:last], generation_prompt=True)


def reference(row, spec) -> str:
    """The last assistant message: the answer to prompt()."""
    answers = [m["content"] for m in conversation(row, spec) if m["role"] == "assistant"]
    return answers[-1] if answers else ""


def conversation(row, spec) -> list[dict]:
    """The row's messages, checked, with only their role and content: `datasets` gives every
    message each key any message in the file has (None where absent), which a template would
    render."""
    messages = row[spec.messages_field]
    problem = conversation_problem(messages)
    if problem:
        raise DataError(f"`{spec.messages_field}` holds a row that is no conversation: {problem}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render(tokenizer, messages: list[dict], generation_prompt: bool = False) -> str:
    from jinja2 import TemplateError  # transformers renders chat templates with jinja2

    try:
        return tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except TemplateError as err:
        raise DataError(f"the chat template cannot render a conversation: {err}") from err


def _assistant_spans(tokenizer, messages, text: str, ids: list[int]) -> list[tuple[int, int]]:
    """(start, end) in `ids`, the tokens of `text`, of each assistant message's tokens: its
    content and the template's end of turn."""

    def boundary(before: list[dict], generation_prompt: bool = False) -> int:
        prefix = render(tokenizer, before, generation_prompt)
        if not text.startswith(prefix):
            raise DataError("the chat template renders the start of a conversation unlike the "
                            "same start in the whole conversation, so the assistant's tokens "
                            "cannot be found: set data.chat_template to a template that renders "
                            "each turn the same whatever follows")
        # A token that spans the boundary belongs to what follows it.
        return _shared_length(_ids(tokenizer, prefix), ids)

    return [(boundary(messages[:index], generation_prompt=True), boundary(messages[:index + 1]))
            for index, message in enumerate(messages) if message["role"] == "assistant"]


def _ids(tokenizer, text: str) -> list[int]:
    # A template writes the special tokens it wants (a BOS...): the tokenizer adds none.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _shared_length(prefix: list[int], ids: list[int]) -> int:
    """How many first tokens `prefix` and `ids` share."""
    return next((i for i, (a, b) in enumerate(zip(prefix, ids)) if a != b),
                min(len(prefix), len(ids)))
