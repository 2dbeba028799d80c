"""What launch asks any Ray head's dashboard over plain HTTP, as Ray's own job client does but
without importing Ray (1.5 s of CPU, and a client-only install has none): whether it answers,
its Ray version, its nodes, the Jobs API (submit, status, logs, stop, list) and the runtime-env
packages a job's code travels in."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request


def probe(address: str, headers: dict[str, str]) -> int | None:
    """HTTP status of the Jobs API version endpoint, or None when nothing answers."""
    return _request(address, "/api/version", headers)[0]


def head_version(address: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """From one request: the HTTP status of the Jobs API version endpoint (None when nothing
    answers) and the head's Ray version (None when it does not tell)."""
    status, body = _json(address, "/api/version", headers)
    return status, body.get("ray_version") if isinstance(body, dict) else None


def alive_nodes(address: str, headers: dict[str, str]) -> list[dict] | None:
    """The cluster's live nodes as Ray's state API lists them (`ray list nodes`): each with
    its `resources_total`; None when the head does not tell."""
    body = _json(address, "/api/v0/nodes?limit=10000&detail=false", headers)[1]
    try:
        nodes = body["data"]["result"]["result"]
    except (KeyError, TypeError):
        return None
    return [node for node in nodes if node.get("state") == "ALIVE"]


# The Jobs API waits on the head's job manager, which a busy head answers slowly; a submission
# also waits (up to 10 s, then answers NO_AGENT) for the head's job agent.
JOBS_TIMEOUT_S = 30
SUBMIT_TIMEOUT_S = 60
JSON = {"Content-Type": "application/json"}


def jobs_api(address: str, headers: dict[str, str], path: str,
             method: str = "GET") -> tuple[int | None, object]:
    """HTTP status and JSON body of a Jobs API call (`path` after /api/jobs/)."""
    return _json(address, f"/api/jobs/{path}", headers, method, JOBS_TIMEOUT_S)


def submit_job(address: str, headers: dict[str, str], request: dict) -> tuple[int | None, str]:
    """POST a job (Ray's JobSubmitRequest as JSON): the status and the body, which on an error
    is the head's reason."""
    status, body = _request(address, "/api/jobs/", {**headers, **JSON}, "POST", SUBMIT_TIMEOUT_S,
                            json.dumps(request).encode())
    return status, body.decode(errors="replace")


def has_package(address: str, headers: dict[str, str], name: str) -> int | None:
    """200 when the head holds the runtime-env package `name` (asking also keeps it from being
    collected for a while), 404 when not."""
    return _request(address, f"/api/packages/gcs/{name}", headers, "GET", JOBS_TIMEOUT_S)[0]


def put_package(address: str, headers: dict[str, str], name: str,
                data: bytes) -> tuple[int | None, str]:
    """Upload a runtime-env package: the status and, on an error, the head's reason."""
    status, body = _request(address, f"/api/packages/gcs/{name}", headers, "PUT",
                            JOBS_TIMEOUT_S, data)
    return status, body.decode(errors="replace")


def _json(address: str, path: str, headers: dict[str, str], method: str = "GET",
          timeout_s: float = 3) -> tuple[int | None, object]:
    """The status (None when nothing answers) and the JSON body (None unless 200)."""
    status, body = _request(address, path, headers, method, timeout_s)
    try:
        return status, json.loads(body) if status == 200 else None
    except ValueError:
        return status, None


def _request(address: str, path: str, headers: dict[str, str], method: str = "GET",
             timeout_s: float = 3, data: bytes | None = None) -> tuple[int | None, bytes]:
    """The status (None when nothing answers) and the body, an error's too."""
    request = urllib.request.Request(f"{address.rstrip('/')}{path}", data=data,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with contextlib.suppress(Exception):  # the reason is a nicety; the status decides
            return err.code, err.read()
        return err.code, b""
    except (urllib.error.URLError, OSError):
        return None, b""
