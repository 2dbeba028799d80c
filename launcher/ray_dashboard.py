"""What launch asks any Ray head's dashboard over plain HTTP (no Ray import, so a client-only
install can ask, and `launch status | list | stop | logs` start in a fraction of a second):
whether it answers, its Ray version, its nodes, and the Jobs API's jobs.

Submitting stays with Ray's JobSubmissionClient (it packs and uploads the job's code), and so
does following a log (a websocket)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def probe(address: str, headers: dict[str, str]) -> int | None:
    """HTTP status of the Jobs API version endpoint, or None when nothing answers."""
    return _request(address, "/api/version", headers)[0]


def ray_version(address: str, headers: dict[str, str]) -> str | None:
    """The Ray version of the head at `address`, or None when it does not tell."""
    body = _json(address, "/api/version", headers)[1]
    return body.get("ray_version") if isinstance(body, dict) else None


def alive_nodes(address: str, headers: dict[str, str]) -> list[dict] | None:
    """The cluster's live nodes as Ray's state API lists them (`ray list nodes`): each with
    its `resources_total`; None when the head does not tell."""
    body = _json(address, "/api/v0/nodes?limit=10000&detail=false", headers)[1]
    try:
        nodes = body["data"]["result"]["result"]
    except (KeyError, TypeError):
        return None
    return [node for node in nodes if node.get("state") == "ALIVE"]


# The Jobs API waits on the head's job manager, which a busy head answers slowly.
JOBS_TIMEOUT_S = 30


def jobs_api(address: str, headers: dict[str, str], path: str,
             method: str = "GET") -> tuple[int | None, object]:
    """HTTP status and JSON body of a Jobs API call (`path` after /api/jobs/)."""
    return _json(address, f"/api/jobs/{path}", headers, method, JOBS_TIMEOUT_S)


def _json(address: str, path: str, headers: dict[str, str], method: str = "GET",
          timeout_s: float = 3) -> tuple[int | None, object]:
    """The status (None when nothing answers) and the JSON body (None unless 200)."""
    status, body = _request(address, path, headers, method, timeout_s)
    try:
        return status, json.loads(body) if status == 200 else None
    except ValueError:
        return status, None


def _request(address: str, path: str, headers: dict[str, str], method: str = "GET",
             timeout_s: float = 3) -> tuple[int | None, bytes]:
    request = urllib.request.Request(f"{address.rstrip('/')}{path}", headers=headers,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (urllib.error.URLError, OSError):
        return None, b""
