"""What a chat row (data.messages_field) holds: a list of `{role, content}` messages, as Hugging
Face chat templates take them. `launch validate` checks a local file's first rows with it, the
job every row it encodes."""

from __future__ import annotations

ROLES = ("system", "user", "assistant")


def conversation_problem(value) -> str | None:
    """What makes `value` no conversation, in a few words; None when it is one."""
    if not isinstance(value, list):
        return f"not a list of {{role, content}} messages (got {type(value).__name__})"
    for number, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            return f"message {number} is not a {{role, content}} mapping"
        role = message.get("role")
        if role not in ROLES:
            return f"message {number} has role {role!r}; use {', '.join(ROLES)}"
        if not isinstance(message.get("content"), str):
            return f"message {number} ({role}) has no text `content`"
    return None


def has_assistant_turn(messages: list[dict]) -> bool:
    return any(message["role"] == "assistant" for message in messages)
