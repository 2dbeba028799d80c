"""Where jobs run: one registry of target kinds, one module per kind.

A kind is its settings model in launcher/spec/target.py (a member of the `target` union, with
its declared Capabilities) and a Target subclass here. Adding a kind is one module and one line
in TARGETS; docs/ARCHITECTURE.md walks through it.
"""

from __future__ import annotations

from importlib import import_module

from pydantic import TypeAdapter, ValidationError

from launcher.errors import LaunchError
from launcher.spec.target import KINDS, RayTargetSpec, TargetSpec, default_kind
from launcher.targets.base import Target

# kind → "module:class", imported on first use (the kubernetes client is heavy).
TARGETS = {
    "ray": "launcher.targets.ray:RayTarget",
    "kubernetes": "launcher.targets.kubernetes:KubernetesTarget",
}
assert tuple(TARGETS) == KINDS, "every kind the spec admits has an implementation"


def make_target(settings: TargetSpec) -> Target:
    """The target a spec's (or a run record's) validated `target` settings describe."""
    module, name = TARGETS[settings.kind].split(":")
    return getattr(import_module(module), name)(settings)


def target_settings(data: dict) -> TargetSpec:
    """`target` settings from plain data (a run record, CLI flags), validated as in a job file."""
    data = default_kind(data)
    try:
        return TypeAdapter(TargetSpec).validate_python(data)
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        if problem["type"] == "union_tag_invalid":
            raise LaunchError(f"unknown target kind `{data['kind']}`; the kinds are: "
                              f"{', '.join(TARGETS)}") from None
        where = ".".join(["target", *(str(part) for part in problem["loc"][1:])])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = f"the {data['kind']} target has no such setting"
        raise LaunchError(f"{where}: {message}") from None


def ray_address(explicit: str | None = None) -> str:
    """The Ray dashboard address a command without a job file uses: `explicit` (--address),
    else RAY_API_SERVER_ADDRESS, RAY_ADDRESS, LAUNCH_RAY_ADDRESS, the embedded head's."""
    settings = target_settings({"kind": "ray", "address": explicit})
    assert isinstance(settings, RayTargetSpec)
    return settings.address
