"""A registry that hands work to another origin, as registries backed by object storage do.

`RedirectingRegistry` answers the OCI calls launch makes: it asks for a Basic login (or, with
`bearer_realm`, for a token from that realm), sends blob downloads on with a 307 to `storage`,
and gives upload locations on `storage`. `Storage` is the other origin (another port of
127.0.0.1): it serves and accepts blobs and records every request's headers, which is what the
tests read. Neither is a real registry: only the calls that move credentials are played.
"""

from __future__ import annotations

import base64
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import LoopbackHTTP

USER, PASSWORD = "pusher", "registry-secret-0123"
BLOB = b"layer bytes"


class Storage(LoopbackHTTP):
    def __init__(self):
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                seen.append((self.command, self.path, dict(self.headers)))

            def do_GET(self):
                self._record()
                self._answer(200, BLOB)

            def do_PUT(self):
                self._record()
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(201, b"")

            def _answer(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def authorizations(self) -> list[str]:
        return [headers["Authorization"] for _, _, headers in self.seen
                if "Authorization" in headers]


class RedirectingRegistry(LoopbackHTTP):
    def __init__(self, storage: Storage, bearer_realm: str | None = None):
        login = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        challenge = (f'Bearer realm="{bearer_realm}",service="registry"' if bearer_realm
                     else 'Basic realm="registry"')

        class Handler(BaseHTTPRequestHandler):
            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == login:
                    return True
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def _answer(self, code: int, **headers: str) -> None:
                self.send_response(code)
                for name, value in {"Content-Length": "0", **headers}.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()

            def do_GET(self):
                if not self._authorized():
                    return
                if "/blobs/" in self.path:  # on to the object store, as S3-backed registries do
                    self._answer(307, Location=f"{storage.url}/blobs/{self.path.rsplit('/', 1)[1]}"
                                 "?signature=presigned")
                else:
                    self._answer(200)

            def do_HEAD(self):
                if self._authorized():
                    self._answer(404)  # no blob yet: a push uploads it

            def do_POST(self):
                if self._authorized():
                    self._answer(202, Location=f"{storage.url}/uploads/1?state=opaque")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
