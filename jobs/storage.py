"""The run's storage from the cluster side: one pyarrow filesystem for local paths and s3://.

S3 settings come from the standard AWS environment the launcher puts in the job's runtime env
(AWS_ENDPOINT_URL, AWS_REGION, AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE, and
LAUNCH_S3_PATH_STYLE), so the same code reads spec.json before it knows the spec. Ray Train
checkpoints go through the same filesystem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.fs

from launcher.contract import S3_PATH_STYLE_ENV, STATUS, RunLayout, merged_status


class RunStorage:
    def __init__(self, layout: RunLayout):
        self.layout = layout
        if layout.root.startswith("s3://"):
            self.filesystem, self.root = s3_filesystem(), layout.root.removeprefix("s3://")
        else:
            self.filesystem, self.root = pyarrow.fs.FileSystem.from_uri(layout.root)
        self._local = isinstance(self.filesystem, pyarrow.fs.LocalFileSystem)

    def path(self, name: str) -> str:
        """The path of `name` inside the filesystem (no scheme), e.g. for Ray's storage_path."""
        return f"{self.root}/{name}"

    def read_text(self, name: str) -> str | None:
        try:
            with self.filesystem.open_input_stream(self.path(name)) as stream:
                return stream.read().decode("utf-8")
        except FileNotFoundError:
            return None

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self.path(name)
        if self._local:
            self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        # S3 PUTs are atomic; locally, write aside and rename so readers never see half a file.
        target = f"{path}.tmp" if self._local else path
        with self.filesystem.open_output_stream(target) as stream:
            stream.write(data)
        if self._local:
            self.filesystem.move(target, path)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def upload_file(self, local: Path, name: str) -> None:
        self.write_bytes(name, local.read_bytes())

    def upload_dir(self, local: Path, name: str) -> None:
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            self.upload_file(file, f"{name}/{file.relative_to(local).as_posix()}")

    def write_status(self, state: str, **fields) -> None:
        current = json.loads(self.read_text(STATUS) or "{}")
        self.write_text(STATUS, json.dumps(merged_status(current, state, **fields), indent=2))


def s3_filesystem() -> pyarrow.fs.FileSystem:
    """S3 from the standard AWS environment, patient enough to ride out a store restart."""
    return PatientS3FileSystem(
        endpoint_override=os.environ.get("AWS_ENDPOINT_URL"),
        region=os.environ.get("AWS_REGION"),
        force_virtual_addressing=os.environ.get(S3_PATH_STYLE_ENV, "true") != "true",
    )


class PatientS3FileSystem(pyarrow.fs.S3FileSystem):
    """An S3FileSystem that retries with exponential backoff over about a minute, in every
    process it is pickled into.

    Ray Train pickles the storage filesystem into its controller and workers, and a plain
    S3FileSystem comes back from a pickle with pyarrow's default 3 attempts (its retry
    strategy is not part of the pickle). This one pickles its settings and is rebuilt from
    them. It stays an S3FileSystem, so Ray keeps treating it as S3 (single-threaded uploads).
    """

    def __init__(self, **settings):
        super().__init__(**settings,
                         retry_strategy=pyarrow.fs.AwsStandardS3RetryStrategy(max_attempts=12))
        self.settings = settings

    def __reduce__(self):
        return _rebuild_patient_s3, (self.settings,)


def _rebuild_patient_s3(settings: dict) -> PatientS3FileSystem:
    return PatientS3FileSystem(**settings)
