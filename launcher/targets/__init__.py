"""Where jobs run. One small interface (base.Target), one module per kind."""

from __future__ import annotations

from launcher.targets.base import Target


def make_target(kind: str, address: str) -> Target:
    """The target of a spec (`target.kind`, `target.endpoint`) or of a recorded run.

    `address` is TargetSpec.endpoint: the Ray dashboard URL for `local`,
    kubernetes://NAMESPACE/CONTEXT for `kubernetes`.
    """
    if kind == "local":
        from launcher.targets.local import LocalTarget

        return LocalTarget(address)
    if kind == "kubernetes":
        from launcher.targets.kubernetes import KubernetesTarget

        return KubernetesTarget.from_endpoint(address)
    raise AssertionError(f"unknown target kind {kind!r}: the spec admits only implemented kinds")
