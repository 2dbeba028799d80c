"""Start-up of a process that imports the training stack."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """No cyclic garbage collection while the block imports and builds. Importing torch,
    transformers, PEFT, DeepSpeed and Ray Train creates about 5,000 modules; the collector runs
    hundreds of times meanwhile and finds next to nothing: a fifth of a worker's start-up CPU.
    What the block built is then frozen, so later full collections skip it too."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
