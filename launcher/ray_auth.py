"""Ray token authentication for Jobs API calls (on by default for heads launch starts).

Which token goes where:
- a head launch started gets the token launch made for it (LAUNCH_HOME/auth_token);
- a KubeRay run's head, reached through a port-forward, the token launch made for that run;
- your own token, looked up the way Ray does (RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then
  ~/.ray/auth_token), only to an address you named yourself: `--address`, or
  RAY_API_SERVER_ADDRESS / RAY_ADDRESS / LAUNCH_RAY_ADDRESS, or one you so named for an
  earlier submission (kept in LAUNCH_HOME/ray_addresses.json). An address that only a job file
  names gets no token: a job file from elsewhere must not be able to collect yours.
A token is sent as `Authorization: Bearer` and never written to a spec, a log or status.json.
A token file must be the user's own and 0600 (launcher.private_files).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from launcher import local_head
from launcher.private_files import read_private, write_private
from launcher.settings import launch_home
from launcher.spec.target import ADDRESS_VARIABLES, DEFAULT_ADDRESS, HTTP_URL

FIX_WITHHELD = "if it is your cluster, pass it as --address (or set RAY_ADDRESS to it)"
FIX_REFUSED = ("set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to its token (a head launch started "
               "keeps it in LAUNCH_HOME/auth_token)")
# Tokens of heads launch reaches through a port-forward (the kubernetes target), by address.
_forwarded: dict[str, str] = {}
# Addresses this command was given with --address.
_named: set[str] = set()


def remember(address: str, token: str) -> None:
    """Use `token` for the head at `address` (a port-forward launch opened to a run's head)."""
    _forwarded[_key(address)] = token


def name(address: str) -> None:
    """The user named `address` for this command (--address): their token may go there."""
    _named.add(_key(address))


def keep_named(address: str) -> None:
    """After a submission: an address the user named stays theirs for later commands (status,
    logs, stop) and job files, whatever the environment then."""
    kept = _kept()
    if user_named(address) and _key(address) not in kept:
        write_private(_kept_path(), json.dumps(sorted({*kept, _key(address)}), indent=2))


def user_named(address: str) -> bool:
    key = _key(address)
    return key in _named or key in _environment_addresses() or key in _kept()


def token_for(address: str) -> str | None:
    key = _key(address)
    if key in _forwarded:
        return _forwarded[key]
    head = local_head.read_state()
    own_head = head is not None and _key(head.address) == key
    if not (own_head or user_named(address)):
        return None
    return _token(Path(head.token_path) if own_head else None)


def dashboard_token_file(address: str) -> str | None:
    """The token file a browser needs for the dashboard at `address`, when it is the head
    launch started here (its dashboard asks for the token before it shows anything)."""
    head = local_head.read_state()
    return head.token_path if head is not None and _key(head.address) == _key(address) \
        else None


def headers_for(address: str) -> dict[str, str]:
    token = token_for(address)
    return {"Authorization": f"Bearer {token}"} if token else {}


def withheld(address: str) -> bool:
    """Whether the user has a token that launch does not send to `address` (a job file's)."""
    return token_for(address) is None and _token() is not None


def refusal(address: str, status: int) -> str:
    """One line for a head that refused launch (HTTP `status`): why, and what to do."""
    if withheld(address):
        return (f"the Ray head at {address} wants a token, and launch sends yours only to an "
                f"address you named yourself, not to one only a job file names: {FIX_WITHHELD}")
    return (f"the Ray head at {address} refused launch's token (HTTP {status}): {FIX_REFUSED}")


def _token(head_token: Path | None = None) -> str | None:
    """RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, the own head's token file, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    candidates = [Path(os.environ["RAY_AUTH_TOKEN_PATH"])] \
        if os.environ.get("RAY_AUTH_TOKEN_PATH") else []
    candidates += [head_token] if head_token else []
    candidates.append(Path("~/.ray/auth_token").expanduser())
    for path in candidates:
        if path.is_file() and (token := read_private(path, "the Ray token")):
            return token
    return None


def _environment_addresses() -> set[str]:
    """The addresses launch uses when no job file names one: Ray's and launch's variables, else
    the embedded head's default."""
    named = {_key(os.environ[variable]) for variable in ADDRESS_VARIABLES
             if HTTP_URL.match(os.environ.get(variable, ""))}
    return named or {DEFAULT_ADDRESS}


def _kept_path() -> Path:
    return launch_home() / "ray_addresses.json"


def _kept() -> set[str]:
    try:
        return set(json.loads(_kept_path().read_text()))
    except (FileNotFoundError, ValueError):
        return set()


def _key(address: str) -> str:
    return address.rstrip("/")
