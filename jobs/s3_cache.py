"""Copies of s3:// files and folders on a node's disk: data and models that the libraries
read from local paths (`datasets`, `from_pretrained`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


class FetchError(Exception):
    """The object or folder cannot be read from the store."""


def fetch(uri: str) -> Path:
    """Copy an s3:// file or folder to a local cache once per version, and return its path.

    The workers on a node share one copy: each writes aside and renames into place, and a
    changed object (size or modification time) gets a new copy.
    """
    import pyarrow.fs

    from jobs.storage import s3_filesystem  # the job's S3 settings, as its results use

    filesystem, key = s3_filesystem(), uri.removeprefix("s3://").rstrip("/")
    try:
        info = filesystem.get_file_info(key)
        if info.type == pyarrow.fs.FileType.NotFound:
            raise FetchError(f"no object or folder at {uri}")
        listed = (filesystem.get_file_info(pyarrow.fs.FileSelector(key, recursive=True))
                  if info.type == pyarrow.fs.FileType.Directory else [info])
        files = [f for f in listed if f.type == pyarrow.fs.FileType.File]
        version = hashlib.sha256(repr(sorted((f.path, f.size, f.mtime_ns) for f in files))
                                 .encode()).hexdigest()[:16]
        cache = Path(tempfile.gettempdir()) / "launch-data" / version
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=cache.parent))
            try:
                for file in files:  # S3 has no folders to copy: make each file's parent here
                    target = scratch / Path(key).name / Path(file.path).relative_to(key)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    pyarrow.fs.copy_files(file.path, str(target), source_filesystem=filesystem,
                                          destination_filesystem=pyarrow.fs.LocalFileSystem())
                os.rename(scratch, cache)
            except OSError:
                if not cache.exists():  # not a race lost to another worker's copy
                    raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)  # left by a failure or a lost race
        return cache / Path(key).name
    except OSError as err:  # pyarrow's S3 errors: endpoint, credentials, permissions
        raise FetchError(f"cannot read {uri}: {str(err).splitlines()[0]}") from err
