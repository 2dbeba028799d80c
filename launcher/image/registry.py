"""A small client for the OCI distribution API: manifests and blobs in one repository.

Plain urllib, so the base install needs nothing more. Auth follows the registry's
`WWW-Authenticate` challenge (Basic, or Bearer tokens from the registry's token service) with
credentials from LAUNCH_REGISTRY_USERNAME / LAUNCH_REGISTRY_PASSWORD or the docker/podman auth
files. Every byte sent is counted, so callers can say what a push cost.

Credentials go only to the registry's own origin (scheme, host and port): not along a
redirect to object storage, not to an upload location on another host, and not to a token
service on another origin over plain http.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from launcher.errors import LaunchError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))
CHUNK = 1 << 20


@dataclass(frozen=True)
class Manifest:
    media_type: str
    body: bytes
    digest: str

    @property
    def data(self) -> dict:
        return json.loads(self.body)


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0][1:]
    return name in ("localhost", "::1") or name.startswith("127.")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: what a credential is scoped to."""
    parts = urllib.parse.urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but drop Authorization where one leaves the origin asked: registries
    send blob downloads on to object storage, which must not see the registry login."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(newurl) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginRedirects())


class Registry:
    """One registry host; `insecure` means plain HTTP."""

    def __init__(self, host: str, insecure: bool | None = None):
        self.host = host
        self.insecure = is_loopback(host) if insecure is None else insecure
        self.base_url = f"{'http' if self.insecure else 'https'}://{host}"
        self.origin = origin(self.base_url)
        self.bytes_sent = 0
        self._authorization: str | None = None

    # -- manifests ------------------------------------------------------------------------
    def manifest(self, repo: str, reference: str, platform: str | None = None) -> Manifest | None:
        """The image manifest at `reference` (tag or digest), resolving an index to
        `platform` (e.g. linux/amd64); None when the registry does not have it."""
        response = self._request("GET", f"/v2/{repo}/manifests/{reference}",
                                 headers={"Accept": ACCEPT}, missing_ok=True)
        if response is None:
            return None
        status, headers, body = response
        media_type = headers.get("Content-Type", "").split(";")[0] or json.loads(body).get(
            "mediaType", OCI_MANIFEST)
        found = Manifest(media_type, body, headers.get("Docker-Content-Digest")
                         or sha256_digest(body))
        if media_type not in INDEXES or platform is None:
            return found
        wanted = dict(zip(("os", "architecture", "variant"), platform.split("/")))
        for entry in found.data.get("manifests", []):
            entry_platform = entry.get("platform", {})
            if all(entry_platform.get(key) == value for key, value in wanted.items()):
                return self.manifest(repo, entry["digest"])
        offered = [f"{p.get('os')}/{p.get('architecture')}"
                   for p in (e.get("platform", {}) for e in found.data.get("manifests", []))]
        raise LaunchError(f"{self.host}/{repo}:{reference} has no {platform} image (it has "
                          f"{', '.join(offered) or 'none'}); set image.platform")

    def has_manifest(self, repo: str, reference: str) -> bool:
        return self._request("HEAD", f"/v2/{repo}/manifests/{reference}",
                             headers={"Accept": ACCEPT}, missing_ok=True) is not None

    def put_manifest(self, repo: str, tag: str, media_type: str, body: bytes) -> str:
        self._request("PUT", f"/v2/{repo}/manifests/{tag}", data=body,
                      headers={"Content-Type": media_type})
        return sha256_digest(body)

    def check_push(self, repo: str) -> None:
        """Raise unless the registry answers and lets us push to `repo`: a blob upload is
        started and cancelled, so nothing is written."""
        self._request("GET", "/v2/")
        _, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/", data=b"")
        if headers.get("Location"):
            self._request("DELETE", urllib.parse.urljoin(self.base_url, headers["Location"]),
                          missing_ok=True)

    # -- blobs ------------------------------------------------------------------------------
    def blob(self, repo: str, digest: str) -> bytes:
        return self._request("GET", f"/v2/{repo}/blobs/{digest}")[2]

    def has_blob(self, repo: str, digest: str) -> bool:
        return self._request("HEAD", f"/v2/{repo}/blobs/{digest}", missing_ok=True) is not None

    def push_blob(self, repo: str, source: BinaryIO, size: int, digest: str,
                  on_bytes: Callable[[int], None] | None = None) -> bool:
        """Upload a blob unless the repository has it; True when bytes were sent."""
        if self.has_blob(repo, digest):
            return False
        _, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/", data=b"")
        location = urllib.parse.urljoin(self.base_url, headers["Location"])
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={urllib.parse.quote(digest)}"
        self._request("PUT", url, data=_CountingReader(source, on_bytes), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(size)})
        return True

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path_or_url: str, data=None, headers=None,
                 missing_ok: bool = False, retried: bool = False):
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        request = urllib.request.Request(url, data=data, method=method,
                                         headers=dict(headers or {}))
        if self._authorization and origin(url) == self.origin:
            request.add_header("Authorization", self._authorization)
        try:
            with _OPENER.open(request, timeout=120) as response:
                if data is not None:
                    counted = isinstance(data, _CountingReader)
                    self.bytes_sent += data.count if counted else len(data)
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            if err.code == 401 and not retried:
                self._authorization = self._answer(err.headers.get("WWW-Authenticate", ""))
                if isinstance(data, _CountingReader):
                    data.rewind()
                return self._request(method, path_or_url, data, headers, missing_ok, True)
            if err.code == 404 and missing_ok:
                return None
            detail = _error_detail(err)
            if err.code in (401, 403):
                raise LaunchError(f"{self.host} refused {method} {urllib.parse.urlsplit(url).path}"
                                  f" (HTTP {err.code}{detail}); log in with `docker login "
                                  f"{self.host}` or set LAUNCH_REGISTRY_USERNAME and "
                                  "LAUNCH_REGISTRY_PASSWORD") from None
            raise LaunchError(f"registry {self.host}: {method} {urllib.parse.urlsplit(url).path} "
                              f"failed with HTTP {err.code}{detail}") from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, ssl.SSLError):
                raise LaunchError(f"registry {self.host}: TLS failed ({reason.reason}); for a "
                                  "plain-HTTP registry set image.insecure: true") from None
            raise LaunchError(f"registry {self.host} is unreachable at {self.base_url} "
                              f"({reason}); start it or fix image.repository") from None

    def _answer(self, challenge: str) -> str:
        """The Authorization header that answers a 401's WWW-Authenticate challenge."""
        user, password = _credentials(self.host)
        if challenge.lower().startswith("basic"):
            if user is None:
                raise LaunchError(f"{self.host} wants a login: run `docker login {self.host}` "
                                  "or set LAUNCH_REGISTRY_USERNAME and LAUNCH_REGISTRY_PASSWORD")
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in params:
            raise LaunchError(f"{self.host} sent an authentication challenge launch does not "
                              f"understand: {challenge!r}")
        realm = params["realm"]
        if origin(realm)[0] != "https" and origin(realm) != self.origin:
            raise LaunchError(f"{self.host} sends logins to {realm}, plain http on another "
                              "host: launch sends registry credentials elsewhere only over "
                              "https; fix the registry's token service address")
        query = urllib.parse.urlencode({k: v for k, v in params.items() if k != "realm"})
        request = urllib.request.Request(f"{realm}?{query}")
        if user is not None:
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        try:
            with _OPENER.open(request, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise LaunchError(f"{self.host}'s token service refused the login (HTTP "
                              f"{err.code}); check the registry credentials") from None
        return f"Bearer {answer.get('token') or answer['access_token']}"


class _CountingReader:
    """A file-like body for urllib that counts (and reports) the bytes read from it."""

    def __init__(self, source: BinaryIO, on_bytes: Callable[[int], None] | None):
        self.source, self.on_bytes, self.count = source, on_bytes, 0
        self.start = source.tell()

    def read(self, size: int = CHUNK) -> bytes:
        chunk = self.source.read(min(size if size > 0 else CHUNK, CHUNK))
        self.count += len(chunk)
        if self.on_bytes and chunk:
            self.on_bytes(len(chunk))
        return chunk

    def rewind(self) -> None:
        self.source.seek(self.start)
        self.count = 0


def _credentials(host: str) -> tuple[str | None, str | None]:
    """Registry login from the environment, else the docker / podman auth files."""
    if os.environ.get("LAUNCH_REGISTRY_USERNAME"):
        return os.environ["LAUNCH_REGISTRY_USERNAME"], os.environ.get("LAUNCH_REGISTRY_PASSWORD")
    files = [Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.insert(0, Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    for path in files:
        try:
            auths = json.loads(path.read_text()).get("auths", {})
        except (OSError, ValueError):
            continue
        for key in (host, f"https://{host}", f"http://{host}"):
            encoded = auths.get(key, {}).get("auth")
            if encoded:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
                return user, password
    return None, None


def _error_detail(err: urllib.error.HTTPError) -> str:
    try:
        errors = json.loads(err.read()).get("errors") or []
    except (ValueError, AttributeError):
        return ""
    return f": {errors[0].get('message')}" if errors else ""
