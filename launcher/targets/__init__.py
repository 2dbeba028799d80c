"""Where jobs run. One small interface (base.Target), one module per kind."""

from __future__ import annotations

from launcher.targets.base import Target


def make_target(kind: str, address: str) -> Target:
    """The target of a spec (`target.kind`, `target.address`) or of a recorded run."""
    if kind == "local":
        from launcher.targets.local import LocalTarget

        return LocalTarget(address)
    raise AssertionError(f"unknown target kind {kind!r}: the spec admits only implemented kinds")
