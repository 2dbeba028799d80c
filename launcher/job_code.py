"""The code launch ships with every job: the Python files of its `jobs` and `launcher` packages
(the job imports the spec models and the run contract from `launcher`).

An image carries them in its code layer (launcher.image.context); a Ray cluster gets them as a
runtime-env package (`ray_package`), named by a hash of its bytes as Ray names its own, so the
head stores each version once.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from launcher.settings import JOB_PACKAGES

# Ray keeps uploaded packages under names with this prefix; the job's workers unpack it and put
# the folder holding `jobs/` and `launcher/` first on their sys.path (runtime_env py_modules).
RAY_PACKAGE_PREFIX = "_ray_pkg_"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest: the same files, the same bytes


def files() -> list[tuple[str, Path]]:
    """Each file as (its '/'-separated path beside the packages, where it is here), sorted."""
    return [(path.relative_to(package.parent).as_posix(), path)
            for package in JOB_PACKAGES for path in sorted(package.rglob("*.py"))]


def ray_package() -> tuple[str, bytes]:
    """The zip Ray unpacks for the job, and its name (`_ray_pkg_<hash>.zip`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files():
            entry = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    data = buffer.getvalue()
    return f"{RAY_PACKAGE_PREFIX}{hashlib.sha256(data).hexdigest()[:32]}.zip", data
