"""A stand-in for a Kubernetes API server with the KubeRay operator, at the HTTP level.

No API server can run on the machines these tests run on (no kube-apiserver, k3s, kind or kwok
in apt, PyPI or npm: see ../shared/ENVIRONMENT.md), so this plain HTTP server answers the
requests the official `kubernetes` client sends for the calls launch makes (launcher/kube/
client.py): RayJobs (create, get, list, patch, delete), Secrets (create), pods (list, log) and
events (list). It keeps what was created, checks the bearer token, answers 403 to a call the
given Role does not grant (as RBAC does: the launcher's own k8s/launcher-rbac.yaml), refuses a
RayJob that breaks the KubeRay v1.7.0 CRD schema (HTTP 422, as a strict API server would),
collects the objects a deleted owner owned (garbage collection), and plays the part of the
KubeRay operator as far as a test tells it to: the statuses a new RayJob walks through (taken
from the recorded shapes in tests/launcher/kube/samples/), the pods it gets, `spec.suspend`
turning into `Suspended`.

What it does not do: port-forward (a websocket upgrade it answers with 400, as an API server
without the pods/portforward verb would refuse it), watches, or scheduling of any kind. It
stands in for the API so the launcher's side of each seam runs exactly as a user runs it.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

from .loopback_http import LoopbackHTTP

ROUTE = re.compile(r"^/(?:apis/ray\.io/v1|api/v1)/namespaces/(?P<ns>[^/]+)/(?P<resource>"
                   r"rayjobs|secrets|pods|events)(?:/(?P<name>[^/]+))?(?:/(?P<sub>log))?$")
KINDS = {"rayjobs": "RayJob", "secrets": "Secret", "pods": "Pod", "events": "Event"}
VERBS = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}  # GET: get or list


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeAPIStandIn(LoopbackHTTP):
    """One API server on 127.0.0.1; `kubeconfig()` writes a file the official client reads."""

    def __init__(self, validate_rayjob: Callable[[dict], list[str]] | None = None,
                 role: dict | None = None):
        self.token = secrets.token_hex(16)
        self.validate_rayjob = validate_rayjob
        # (verb, resource) pairs the Role grants; None: everything.
        self.granted = None if role is None else {
            (verb, resource) for rule in role["rules"] for resource in rule["resources"]
            for verb in rule["verbs"]}
        self.objects: dict[str, dict[tuple[str, str], dict]] = {kind: {} for kind in KINDS}
        self.logs: dict[str, str] = {}  # pod name → its log
        self.requests: list[tuple[str, str]] = []  # (method, path) in the order they came
        # The operator's part: statuses a new RayJob walks through, one per GET of it, and
        # the pods (and events) it gets when created.
        self.statuses: list[dict] = []
        self.on_create: Callable[[dict], None] = lambda rayjob: None
        self._progress: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def kubeconfig(self, path: Path, context: str = "stand-in") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": "launcher", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context,
                                                        "user": "launcher"}}]}))
        return path

    # What a test reads and arranges
    def get(self, resource: str, name: str, namespace: str = "default") -> dict | None:
        return self.objects[resource].get((namespace, name))

    def names(self, resource: str) -> list[str]:
        return sorted(name for _, name in self.objects[resource])

    def add(self, resource: str, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        obj.setdefault("apiVersion", "ray.io/v1" if resource == "rayjobs" else "v1")
        obj.setdefault("kind", KINDS[resource])
        self.objects[resource][(meta["namespace"], meta["name"])] = obj
        return obj

    def set_status(self, name: str, status: dict, namespace: str = "default") -> None:
        """Move a RayJob to `status` now (and stop walking the scripted ones)."""
        with self._lock:
            self._progress.pop(name, None)
            self.objects["rayjobs"][(namespace, name)]["status"] = copy.deepcopy(status)

    def pods_of(self, rayjob: dict, status: dict, cluster: str) -> list[dict]:
        """The head and worker pods KubeRay makes from a RayJob's templates, in `status`."""
        spec = rayjob["spec"]["rayClusterSpec"]
        groups = [("head", spec["headGroupSpec"]["template"], 1)] + [
            ("worker", group["template"], group["replicas"])
            for group in spec["workerGroupSpecs"]]
        pods = []
        for node_type, template, replicas in groups:
            for index in range(replicas):
                labels = {**template["metadata"]["labels"], "ray.io/cluster": cluster,
                          "ray.io/node-type": node_type}
                pods.append({"metadata": {"name": f"{cluster}-{node_type}-{index}",
                                          "namespace": rayjob["metadata"]["namespace"],
                                          "labels": labels},
                             "spec": copy.deepcopy(template["spec"]),
                             "status": copy.deepcopy(status)})
        return pods

    # HTTP
    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the test reads api.requests instead
                pass

            def _answer(self, code: int, body: dict | str) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                api.requests.append((method, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    return self._answer(401, _status(401, "Unauthorized", "Unauthorized"))
                route = ROUTE.match(url.path)
                if route is None or self.headers.get("Upgrade"):
                    return self._answer(400 if route else 404, _status(
                        400 if route else 404, "BadRequest" if route else "NotFound",
                        f"the stand-in does not serve {method} {url.path}"))
                with api._lock:
                    code, answer = api._dispatch(method, route.groupdict(),
                                                 parse_qs(url.query), body)
                self._answer(code, answer)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler

    def _dispatch(self, method: str, route: dict, query: dict, body) -> tuple[int, dict | str]:
        resource, ns, name = route["resource"], route["ns"], route["name"]
        verb = VERBS.get(method) or ("get" if name else "list")
        checked = f"{resource}/{route['sub']}" if route["sub"] else resource
        if self.granted is not None and (verb, checked) not in self.granted:
            return 403, _status(403, "Forbidden", f'{checked} "{name or ""}" is forbidden: '
                                f'cannot {verb} resource "{checked}" in the namespace "{ns}"')
        store = self.objects[resource]
        if name is None and method == "GET":
            return 200, self._list(resource, ns, query)
        if name is None and method == "POST":
            return self._create(resource, ns, body)
        obj = store.get((ns, name))
        if obj is None:
            return 404, _status(404, "NotFound", f'{resource} "{name}" not found')
        if route["sub"] == "log":
            return 200, self.logs.get(name, "")
        if method == "GET":
            if resource == "rayjobs" and self._progress.get(name):
                obj["status"] = self._progress[name].pop(0)
            return 200, obj
        if method == "PATCH":
            _merge(obj, body)
            if resource == "rayjobs" and obj["spec"].get("suspend"):
                self._progress.pop(name, None)  # the operator suspends the job
                obj["status"] = {**obj.get("status", {}), "jobDeploymentStatus": "Suspended"}
            return 200, obj
        if method == "DELETE":
            self._delete(resource, ns, name)
            return 200, _status(200, "Success", "deleted")
        return 405, _status(405, "MethodNotAllowed", method)

    def _list(self, resource: str, ns: str, query: dict) -> dict:
        items = [obj for (where, _), obj in self.objects[resource].items() if where == ns]
        for selector in query.get("labelSelector", []):
            wanted = dict(term.split("=", 1) for term in selector.split(","))
            items = [obj for obj in items if all(
                obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
        for selector in query.get("fieldSelector", []):
            field, value = selector.split("=", 1)
            assert field == "involvedObject.kind", f"the stand-in does not select on {field}"
            items = [obj for obj in items if obj["involvedObject"]["kind"] == value]
        limit = int(query.get("limit", ["0"])[0])
        return {"apiVersion": "v1", "kind": f"{KINDS[resource]}List", "metadata": {},
                "items": items[:limit] if limit else items}

    def _create(self, resource: str, ns: str, body: dict) -> tuple[int, dict]:
        name = body["metadata"]["name"]
        if (ns, name) in self.objects[resource]:
            return 409, _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
        if resource == "rayjobs" and self.validate_rayjob:
            errors = self.validate_rayjob(body)
            if errors:
                return 422, _status(422, "Invalid", "; ".join(errors))
        obj = self.add(resource, {**body, "metadata": {**body["metadata"], "namespace": ns}})
        if resource == "rayjobs":
            self._progress[name] = copy.deepcopy(self.statuses)
            self.on_create(obj)
        return 201, obj

    def _delete(self, resource: str, ns: str, name: str) -> None:
        """Delete an object and, as the garbage collector does, everything it owned."""
        uid = self.objects[resource].pop((ns, name))["metadata"]["uid"]
        for kind, store in self.objects.items():
            for key, obj in list(store.items()):
                owners = obj["metadata"].get("ownerReferences", [])
                if key[0] == ns and any(owner["uid"] == uid for owner in owners):
                    self._delete(kind, ns, key[1])


def _merge(target: dict, patch: dict) -> None:
    """JSON merge patch (RFC 7386), what the client sends for a dict body."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success" if code < 400 else "Failure", "message": message,
            "reason": reason, "code": code}
