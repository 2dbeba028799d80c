"""Secrets in files on this machine: written 0600 (in a 0700 folder, never through a symlink),
and Ray token files (the local head's, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token) read only when
the user owns them and no one else can read or replace them: a token planted by another local
user would otherwise hand that user jobs run as this one."""

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
        raise LaunchError(f"refusing {what} in {path}: {problem}; `chmod 600 {path}` if it is "
                          "yours, else delete it (launch makes its own head a new one)")
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        # A file that was already there keeps its owner and mode: never write a secret into
        # one another user planted (in a LAUNCH_HOME that was not private), and make it 0600.
        owner = os.fstat(fd).st_uid
        if owner != os.geteuid():
            raise LaunchError(f"refusing to write a secret to {path}: it is owned by uid "
                              f"{owner}, not by you (uid {os.geteuid()}); delete it")
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        handle.write(text)
