"""What launch reads from any Ray head's dashboard over plain HTTP (no Ray import, so a
client-only install can ask): whether it answers, its Ray version, and its nodes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def probe(address: str, headers: dict[str, str]) -> int | None:
    """HTTP status of the Jobs API version endpoint, or None when nothing answers."""
    return _get(address, "/api/version", headers)[0]


def ray_version(address: str, headers: dict[str, str]) -> str | None:
    """The Ray version of the head at `address`, or None when it does not tell."""
    body = _json(address, "/api/version", headers)
    return body.get("ray_version") if isinstance(body, dict) else None


def alive_nodes(address: str, headers: dict[str, str]) -> list[dict] | None:
    """The cluster's live nodes as Ray's state API lists them (`ray list nodes`): each with
    its `resources_total`; None when the head does not tell."""
    body = _json(address, "/api/v0/nodes?limit=10000&detail=false", headers)
    try:
        nodes = body["data"]["result"]["result"]
    except (KeyError, TypeError):
        return None
    return [node for node in nodes if node.get("state") == "ALIVE"]


def _json(address: str, path: str, headers: dict[str, str]) -> object:
    status, body = _get(address, path, headers)
    try:
        return json.loads(body) if status == 200 else None
    except ValueError:
        return None


def _get(address: str, path: str, headers: dict[str, str]) -> tuple[int | None, bytes]:
    request = urllib.request.Request(f"{address.rstrip('/')}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (urllib.error.URLError, OSError):
        return None, b""
