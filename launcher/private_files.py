"""Secrets launch keeps on this machine (the local head's Ray token) are read only from files
that the user owns and no one else can read or replace: a file planted by another local user
would otherwise hand them a job run as this user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from launcher.errors import LaunchError


def read_private(path: Path, what: str) -> str:
    """The file's text, once it is owned by this user with no group or other permissions."""
    info = path.stat()
    problem = None
    if info.st_uid != os.geteuid():
        problem = f"it is owned by uid {info.st_uid}, not by you (uid {os.geteuid()})"
    elif info.st_mode & 0o077:
        problem = f"its mode is {stat.S_IMODE(info.st_mode):04o}, not 0600"
    if problem:
        raise LaunchError(f"refusing {what} in {path}: {problem}; delete it (launch makes a new "
                          f"one) or `chmod 600 {path}` if you made it")
    return path.read_text().strip()
