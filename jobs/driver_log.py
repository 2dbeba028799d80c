"""Keep the driver's log in the run's storage while the job runs, not only at the end.

The driver's stdout/stderr (which carries the workers' lines too, forwarded by Ray) is copied
to a local file, and that file is uploaded to logs/driver.log every few seconds and once more
at exit, so the log outlives the cluster.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import threading
from pathlib import Path

from jobs.storage import RunStorage
from launcher.contract import DRIVER_LOG, log_line


class _Tee:
    def __init__(self, stream, copy):
        self._stream, self._copy = stream, copy

    def write(self, text):
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self):
        self._copy.flush()
        self._stream.flush()

    def __getattr__(self, name):  # fileno, isatty, encoding … of the real stream
        return getattr(self._stream, name)


@contextlib.contextmanager
def driver_log(storage: RunStorage, every_s: float = 5.0):
    local = Path(tempfile.mkdtemp(prefix="launch-driver-")) / "driver.log"
    previous = storage.read_text(DRIVER_LOG)  # a resumed run's earlier attempts
    if previous:
        resumed = log_line("---- the run resumes in a new attempt ----")
        local.write_text(f"{previous}\n{resumed}\n", encoding="utf-8")
    stop = threading.Event()

    def upload():
        try:
            storage.upload_file(local, DRIVER_LOG)
        except OSError as err:  # storage hiccups must not kill the job; the next try may work
            sys.__stderr__.write(log_line(f"could not upload the driver log: {err}") + "\n")

    def keep_uploading():
        while not stop.wait(every_s):
            upload()

    with local.open("a", encoding="utf-8", buffering=1) as copy:
        sys.stdout, sys.stderr = _Tee(sys.stdout, copy), _Tee(sys.stderr, copy)
        uploader = threading.Thread(target=keep_uploading, name="driver-log-upload", daemon=True)
        uploader.start()
        try:
            yield
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            stop.set()
            uploader.join()
            copy.flush()
            upload()
