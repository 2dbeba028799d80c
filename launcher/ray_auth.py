"""Ray token authentication for Jobs API calls (on by default for heads launch starts).

The token is looked up the way Ray does (RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then
~/.ray/auth_token), after the token of the head launch itself started, if any. It is sent as
`Authorization: Bearer`, and never written to a spec, a log or status.json. A token file must
be the user's own and 0600 (launcher.private_files).
"""

from __future__ import annotations

import os
from pathlib import Path

from launcher import local_head
from launcher.private_files import read_private

# Tokens of heads launch reaches through a port-forward (the kubernetes target), by address.
_forwarded: dict[str, str] = {}


def remember(address: str, token: str) -> None:
    """Use `token` for the head at `address` (a port-forward launch opened to a run's head)."""
    _forwarded[address.rstrip("/")] = token


def token_for(address: str) -> str | None:
    if address.rstrip("/") in _forwarded:
        return _forwarded[address.rstrip("/")]
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    candidates = []
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        candidates.append(Path(os.environ["RAY_AUTH_TOKEN_PATH"]))
    head = local_head.read_state()
    if head is not None and head.address.rstrip("/") == address.rstrip("/"):
        candidates.append(Path(head.token_path))
    candidates.append(Path("~/.ray/auth_token").expanduser())
    for path in candidates:
        if path.is_file() and (token := read_private(path, "the Ray token")):
            return token
    return None


def headers_for(address: str) -> dict[str, str]:
    token = token_for(address)
    return {"Authorization": f"Bearer {token}"} if token else {}
