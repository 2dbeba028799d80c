"""Chat rows (data.messages_field) in the job: the chat template, labels on the assistant's turns
only, truncation, cleaning of conversations, sample prompts. The real training of
examples/chat.yaml, learning the assistant's turns, is tests/integration/test_task_runs.py."""

from __future__ import annotations

import json

import pytest
import yaml

from jobs.data import DataError, load_splits
from jobs.model import load_tokenizer
from jobs.tasks import IGNORE_INDEX, encode, task_for
from launcher.spec.data import DataSpec
from launcher.spec.models import JobSpec, ModelSpec
from tests.support.project import EXAMPLES

CHAT = EXAMPLES / "data" / "debian_chat.jsonl"
EXAMPLE = yaml.safe_load((EXAMPLES / "chat.yaml").read_text())
CHATML = EXAMPLE["data"]["chat_template"]
CAUSAL_LM = task_for("causal_lm")
TWO_EXCHANGES = [
    {"role": "system", "content": "You know Debian."},
    {"role": "user", "content": "What is vim for?"},
    {"role": "assistant", "content": "Editing text."},
    {"role": "user", "content": "Which section?"},
    {"role": "assistant", "content": "editors"},
]


def chat_spec(**settings) -> DataSpec:
    return DataSpec(**{"path": str(CHAT), "messages_field": "messages",
                       "chat_template": CHATML, **settings})


def conversations(*messages_of_rows):
    import datasets

    return datasets.Dataset.from_list([{"messages": messages} for messages in messages_of_rows])


def chatml(messages) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def decoded(tokenizer, row, learned: bool) -> str:
    """The text of the tokens that are (or are not) learned."""
    return tokenizer.decode([token for token, label in zip(row["input_ids"], row["labels"])
                             if (label != IGNORE_INDEX) == learned])


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(ModelSpec(name_or_path=str(tiny_model)), chat_spec())


def test_only_the_assistant_turns_and_the_final_eos_are_learned(tokenizer):
    encoded, _ = encode(CAUSAL_LM, conversations(TWO_EXCHANGES), tokenizer, chat_spec())
    row = encoded[0]
    assert tokenizer.decode(row["input_ids"]) == chatml(TWO_EXCHANGES) + "<|endoftext|>"
    assert decoded(tokenizer, row, learned=True) == (
        "Editing text.<|im_end|>\neditors<|im_end|>\n<|endoftext|>")
    assert decoded(tokenizer, row, learned=False) == (
        "<|im_start|>system\nYou know Debian.<|im_end|>\n<|im_start|>user\nWhat is vim for?"
        "<|im_end|>\n<|im_start|>assistant\n<|im_start|>user\nWhich section?<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_every_example_row_learns_exactly_its_assistant_messages(tokenizer):
    rows = [json.loads(line) for line in CHAT.read_text(encoding="utf-8").splitlines()[:60]]
    encoded, _ = encode(CAUSAL_LM, conversations(*(r["messages"] for r in rows)), tokenizer,
                        chat_spec())
    assert len(encoded) == 60
    for row, raw in zip(encoded, rows):
        answers = [m["content"] for m in raw["messages"] if m["role"] == "assistant"]
        assert decoded(tokenizer, row, learned=True) == (
            "".join(f"{answer}<|im_end|>\n" for answer in answers) + "<|endoftext|>")


def test_train_on_prompt_learns_every_token(tokenizer):
    encoded, _ = encode(CAUSAL_LM, conversations(TWO_EXCHANGES), tokenizer,
                        chat_spec(train_on_prompt=True))
    assert encoded[0]["labels"] == encoded[0]["input_ids"]


def test_truncation_keeps_max_length_and_drops_rows_left_without_an_assistant_token(tokenizer):
    before_answer = len(tokenizer(chatml(TWO_EXCHANGES[:2]) + "<|im_start|>assistant\n")
                        ["input_ids"])
    spec = chat_spec(max_length=before_answer + 3)  # the first answer's first 3 tokens
    long_question = [{"role": "user", "content": "What is vim for? " * 20}, TWO_EXCHANGES[2]]
    encoded, _ = encode(CAUSAL_LM, conversations(TWO_EXCHANGES, long_question), tokenizer, spec)
    assert len(encoded) == 1  # the long question leaves no answer token within max_length
    row = encoded[0]
    assert len(row["input_ids"]) == len(row["labels"]) == before_answer + 3
    assert "Editing text.<|im_end|>\n".startswith(decoded(tokenizer, row, learned=True))
    assert row["labels"][before_answer] == row["input_ids"][before_answer] != IGNORE_INDEX


def test_the_sample_prompt_is_the_conversation_up_to_its_last_answer(tokenizer):
    row = conversations(TWO_EXCHANGES)[0]
    spec = chat_spec()
    assert CAUSAL_LM.prompt(row, spec, tokenizer) == (
        chatml(TWO_EXCHANGES[:4]) + "<|im_start|>assistant\n")
    assert CAUSAL_LM.reference(row, spec) == "editors"


def test_a_tokenizer_without_a_chat_template_fails_with_one_actionable_line(tiny_model):
    with pytest.raises(DataError, match="has no chat template .* set data.chat_template") as err:
        load_tokenizer(ModelSpec(name_or_path=str(tiny_model)),
                       DataSpec(path=str(CHAT), messages_field="messages"))
    assert "\n" not in str(err.value)


def test_the_job_checks_the_chat_template_before_any_worker_starts(tiny_model, tmp_path):
    """jobs.run.run reads the data and the template before ray.init (no Ray here)."""
    from jobs.run import run

    spec = JobSpec.model_validate({**EXAMPLE, "model": {"name_or_path": str(tiny_model)},
                                   "data": {"path": str(CHAT), "messages_field": "messages"}})
    with pytest.raises(DataError, match="no chat template"):
        run(spec, storage=None)


@pytest.mark.parametrize("template,words", [
    ("{% for m in messages %}{{ m['content'] }}", "cannot render a conversation"),
    # The message count up front: a conversation's start renders unlike the whole one's.
    ("{{ messages | length }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
     "renders the start of a conversation unlike"),
], ids=["broken-jinja", "looks-ahead"])
def test_templates_that_cannot_mask_fail_with_the_reason(tiny_model, template, words):
    spec = chat_spec(chat_template=template)
    with pytest.raises(DataError, match=words):
        tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)), spec)
        encode(CAUSAL_LM, conversations(TWO_EXCHANGES), tokenizer, spec)


def test_a_message_with_another_role_is_refused(tokenizer):
    tool = TWO_EXCHANGES[:2] + [{"role": "tool", "content": "vim 9.0"}]
    with pytest.raises(DataError, match="message 3 has role 'tool'"):
        encode(CAUSAL_LM, conversations(tool), tokenizer, chat_spec())


def test_cleaning_reads_a_conversation_as_its_contents(tmp_path):
    def chat(answer, question="What is vim for?"):
        return {"messages": [{"role": "user", "content": question},
                             {"role": "assistant", "content": answer}]}

    rows = [chat(f"  Answer number {i}, long enough.\n") for i in range(8)]
    rows[0]["messages"].insert(0, {"role": "system", "content": ""})  # optional: kept
    rows += [
        chat("   "),  # drop_empty, once stripped
        chat("Answer number 1, long enough."),  # dedupe, once stripped
        chat("ok", question="Hi"),  # min_chars: "Hi\nok" is 5 characters
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = chat_spec(path=str(path), validation_fraction=0.25,
                     clean={"dedupe": True, "min_chars": 10})
    splits = load_splits(spec, "causal_lm", seed=0)
    assert splits.report["dropped"] == {"drop_empty": 1, "min_chars": 1, "dedupe": 1}
    kept = list(splits.train["messages"]) + list(splits.validation["messages"])
    assert sorted(m[-1]["content"] for m in kept) == [f"Answer number {i}, long enough."
                                                      for i in range(8)]
