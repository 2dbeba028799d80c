"""`launch validate` on chat rows (data.messages_field): settings that cannot work and rows that
are no conversations fail with one located line; the chat example validates."""

from __future__ import annotations

import json

import pytest

from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

CHAT = EXAMPLES / "data" / "debian_chat.jsonl"
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def job(data=CHAT, task: str = "causal_lm", extra: str = "") -> str:
    return (f"name: chat-test\ntask: {task}\nmodel:\n  name_or_path: gpt2\n"
            f"data:\n  path: {data}\n  messages_field: messages\n{extra}")


def rows_file(tmp, messages_of_row_2) -> str:
    """Chat rows whose second row holds `messages_of_row_2`."""
    good = json.loads(CHAT.read_text(encoding="utf-8").splitlines()[0])
    rows = [good, {"messages": messages_of_row_2}, good]
    path = tmp / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


USER = {"role": "user", "content": "What is vim for?"}
# (case id, job file text (given tmp_path), text on the error's line, words the message says)
CASES = [
    ("only-causal-lm", lambda tmp: job(EXAMPLES / "data" / "debian_synopsis.jsonl", "seq2seq"),
     "messages_field",
     "chat conversations train task causal_lm, not seq2seq"),
    ("prompt-template-too", lambda tmp: job(extra="  prompt_template: 'Q: {prompt}\\nA: '\n"),
     "prompt_template", "with messages_field the chat template renders the conversation"),
    ("template-without-messages", lambda tmp: job().replace("  messages_field: messages\n", "")
     + f"  chat_template: \"{TEMPLATE}\"\n", "chat_template", "set data.messages_field"),
    ("column-missing", lambda tmp: job(EXAMPLES / "data" / "debian_describe.jsonl"),
     "messages_field", "column `messages` is not in debian_describe.jsonl"),
    ("not-a-list", lambda tmp: job(rows_file(tmp, "What is vim for?")), "messages_field",
     "`messages` in row 2 of rows.jsonl: not a list of {role, content} messages (got str)"),
    ("unknown-role", lambda tmp: job(rows_file(tmp, [USER, {"role": "tool", "content": "x"}])),
     "messages_field", "message 2 has role 'tool'; use system, user, assistant"),
    ("no-content", lambda tmp: job(rows_file(tmp, [USER, {"role": "assistant"}])),
     "messages_field", "message 2 (assistant) has no text `content`"),
    ("no-assistant-turn", lambda tmp: job(rows_file(tmp, [USER])), "messages_field",
     "row 2 of rows.jsonl: no assistant message"),
]


@pytest.mark.parametrize("make,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_chat_settings_give_one_located_line(tmp_path, cli, make, needle, words):
    assert_one_located_line(cli, tmp_path / "job.yaml", make(tmp_path), needle, words)


def test_the_chat_example_validates(cli):
    result = cli("validate", EXAMPLES / "chat.yaml")
    # The tiny model is built by a script, so only the model folder may be missing.
    problems = [line for line in result.stderr.splitlines() if "not a model directory" not in line]
    assert problems == [] and result.returncode in (0, 2)
