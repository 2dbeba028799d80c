"""The run's storage from the client side: local folders, or S3-compatible stores via boto3.

Also what a job needs to reach the same store: the standard AWS environment variables, with
the credentials in a 0600 file whose path (never the secret) travels in the job's runtime env.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import secrets
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from launcher.contract import S3_PATH_STYLE_ENV
from launcher.errors import LaunchError
from launcher.private_files import write_private
from launcher.settings import launch_home
from launcher.spec.models import StorageSpec


class Storage(ABC):
    """Reads and writes objects by URI under one storage root."""

    @abstractmethod
    def read_text(self, uri: str) -> str | None: ...

    @abstractmethod
    def write_text(self, uri: str, text: str) -> None: ...

    def read_json(self, uri: str, missing=None):
        """A JSON file of the run (`missing` when it is not there)."""
        text = self.read_text(uri)
        if text is None:
            return missing
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise LaunchError(f"{uri} is not valid JSON ({err}); the run's storage is "
                              "damaged") from None

    @abstractmethod
    def list(self, uri: str) -> list[str]:
        """Names (relative to `uri`) of every object below it."""

    def download(self, uri: str, dest: Path, exclude: tuple[str, ...] = ()) -> int:
        """Copy every object below `uri` (but names starting with `exclude`) into `dest`.

        Whoever can write into the bucket (every training pod) chooses the names: all are
        checked to land inside `dest` before anything is written."""
        names = [name for name in self.list(uri) if not name.startswith(exclude)]
        paths = [inside(dest, name, uri) for name in names]
        for name, path in zip(names, paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.copy_to(f"{uri.rstrip('/')}/{name}", path)
        return len(names)

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether `uri` is an object, or a folder holding objects."""

    @abstractmethod
    def copy_to(self, uri: str, path: Path) -> None:
        """Copy one object to a local file."""

    @abstractmethod
    def delete_tree(self, uri: str) -> None: ...

    @abstractmethod
    def check(self, root: str) -> None:
        """Raise LaunchError unless objects can be written, read and deleted under `root`."""


def inside(dest: Path, name: str, source: str) -> Path:
    """`dest/name`, unless `name` is absolute, has a `..` segment or lands outside `dest`."""
    parts = name.replace("\\", "/").split("/")
    path = dest / name
    root = dest.resolve()
    if name.startswith("/") or ".." in parts or not path.resolve().is_relative_to(root):
        raise LaunchError(f"refusing to download {source.rstrip('/')}/{name}: its name leads "
                          f"outside {dest}; nothing was downloaded")
    return path


class LocalStorage(Storage):
    def read_text(self, uri: str) -> str | None:
        try:
            return Path(uri).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_text(self, uri: str, text: str) -> None:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_text(text, encoding="utf-8")

    def list(self, uri: str) -> list[str]:
        """Files below `uri`; a symlink counts only where it points inside the run folder."""
        root = Path(uri)
        real = root.resolve()
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.resolve().is_relative_to(real))

    def exists(self, uri: str) -> bool:
        return Path(uri).exists()

    def copy_to(self, uri: str, path: Path) -> None:
        shutil.copy2(uri, path)

    def delete_tree(self, uri: str) -> None:
        shutil.rmtree(uri, ignore_errors=True)

    def check(self, root: str) -> None:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LaunchError(f"cannot create the storage folder {root}: {err.strerror}") from None


class S3Storage(Storage):
    def __init__(self, settings: StorageSpec, connect_timeout_s: float = 5):
        import boto3
        from botocore.config import Config

        if settings.endpoint_url:
            # Not AWS: never ask cloud instance metadata for credentials.
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        session = boto3.Session(profile_name=settings.profile)
        self.settings = settings
        self.credentials = session.get_credentials()
        self.client = session.client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region,
            config=Config(s3={"addressing_style": "path" if settings.path_style else "virtual"},
                          connect_timeout=connect_timeout_s,
                          retries={"max_attempts": 3, "mode": "standard"}))

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bucket, key

    def read_text(self, uri: str) -> str | None:
        bucket, key = self.split(uri)
        try:
            body = self._call(self.client.get_object, Bucket=bucket, Key=key)["Body"]
            return body.read().decode()
        except _NotFound:
            return None

    def write_text(self, uri: str, text: str) -> None:
        bucket, key = self.split(uri)
        self._call(self.client.put_object, Bucket=bucket, Key=key, Body=text.encode())

    def list(self, uri: str) -> list[str]:
        bucket, prefix = self.split(uri.rstrip("/") + "/")
        keys = self._call(self._list_keys, Bucket=bucket, Prefix=prefix)
        return sorted(key[len(prefix):] for key in keys if not key.endswith("/"))

    def _list_keys(self, Bucket: str, Prefix: str) -> list[str]:  # noqa: N803 (boto3's names)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=Bucket, Prefix=Prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def exists(self, uri: str) -> bool:
        bucket, key = self.split(uri)
        try:
            self._call(self.client.head_object, Bucket=bucket, Key=key)
            return True
        except _NotFound:
            pass
        listed = self._call(self.client.list_objects_v2, Bucket=bucket,
                            Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return listed.get("KeyCount", 0) > 0

    def copy_to(self, uri: str, path: Path) -> None:
        bucket, key = self.split(uri)
        self._call(self.client.download_file, Bucket=bucket, Key=key, Filename=str(path))

    def delete_tree(self, uri: str) -> None:
        bucket, prefix = self.split(uri.rstrip("/") + "/")
        for name in self.list(uri):
            self._call(self.client.delete_object, Bucket=bucket, Key=prefix + name)

    def check(self, root: str) -> None:
        if self.credentials is None:
            raise LaunchError("no S3 credentials: set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, or storage.profile")
        bucket, _ = self.split(root)
        try:  # some stores create a missing bucket on the first PUT: ask first
            self._call(self.client.head_bucket, Bucket=bucket)
        except _NotFound:
            raise LaunchError(f"bucket `{bucket}` does not exist at "
                              f"{self.settings.endpoint_url or 'AWS S3'}; create it or fix "
                              "storage.uri") from None
        # A probe of its own: submissions checking the same store at once must not read or
        # delete each other's.
        probe = f"{root.rstrip('/')}/.launch-probe-{secrets.token_hex(8)}"
        self.write_text(probe, "probe")
        if self.read_text(probe) != "probe":
            raise LaunchError(f"wrote {probe} but could not read it back")
        bucket, key = self.split(probe)
        self._call(self.client.delete_object, Bucket=bucket, Key=key)

    def _call(self, method, *args, **kwargs):
        """One S3 call, with botocore's errors turned into one line a user can act on."""
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            ProfileNotFound,
        )

        where = self.settings.endpoint_url or "AWS S3"
        try:
            return method(*args, **kwargs)
        except EndpointConnectionError:
            raise LaunchError(f"cannot reach the S3 endpoint {where}; is the store running "
                              "and storage.endpoint_url right?") from None
        except (NoCredentialsError, ProfileNotFound) as err:
            raise LaunchError(f"no usable S3 credentials ({err})") from None
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            bucket = kwargs.get("Bucket") or (args[0] if args else "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise _NotFound() from None
            if code == "NoSuchBucket":
                raise LaunchError(f"bucket `{bucket}` does not exist at {where}; create it or "
                                  "fix storage.uri") from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
                raise LaunchError(f"{where} refused the S3 credentials ({code}); check "
                                  "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                                  "storage.profile") from None
            raise LaunchError(f"S3 error from {where}: {code or err}") from None


class _NotFound(Exception):
    """An object that does not exist (read as None by callers)."""


def storage_for(settings: StorageSpec) -> Storage:
    return S3Storage(settings) if settings.is_s3 else LocalStorage()


def s3_environment(settings: StorageSpec, endpoint_url: str | None = None) -> dict[str, str]:
    """The non-secret variables a job needs to reach an S3 store (credentials come apart).

    `endpoint_url` overrides settings.endpoint_url where the job sees the store at another
    address than this machine does (a pod in a cluster).
    """
    endpoint_url = endpoint_url or settings.endpoint_url
    env = {"AWS_REGION": settings.region, "AWS_DEFAULT_REGION": settings.region,
           S3_PATH_STYLE_ENV: "true" if settings.path_style else "false"}
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
        # A custom endpoint means no cloud instance metadata: never probe for it.
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def job_environment(settings: StorageSpec, storage: Storage,
                    shares_this_machine: bool) -> dict[str, str]:
    """Environment a job needs to reach `settings`' store: standard AWS variables only.

    A cluster that shares this machine's files gets this machine's credentials as a file; one
    elsewhere could not open that file, and uses its nodes' own credentials (this machine's
    never leave it)."""
    if not isinstance(storage, S3Storage):
        return {}
    env = s3_environment(settings)
    if not shares_this_machine:
        return env
    credentials = storage.credentials.get_frozen_credentials()
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(_credentials_file(credentials))
    env["AWS_PROFILE"] = "launch"
    return env


def _credentials_file(credentials) -> Path:
    """A 0600 AWS credentials file holding these credentials as profile `launch`."""
    digest = hashlib.sha256(f"{credentials.access_key}:{credentials.secret_key}".encode())
    path = launch_home() / "credentials" / f"{digest.hexdigest()[:16]}.ini"
    if not path.exists():
        write_private(path, aws_credentials_file(credentials.access_key, credentials.secret_key,
                                                 credentials.token, profile="launch"))
    return path


def aws_credentials_file(access_key: str, secret_key: str, session_token: str | None = None,
                         profile: str = "default") -> str:
    """The text of an AWS shared-credentials file (what AWS_SHARED_CREDENTIALS_FILE names)."""
    config = configparser.ConfigParser()
    config[profile] = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
    if session_token:
        config[profile]["aws_session_token"] = session_token
    text = io.StringIO()
    config.write(text)
    return text.getvalue()
