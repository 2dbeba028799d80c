"""Offline checks of Kubernetes objects: the KubeRay v1.7.0 CRD schemas (read from
../shared/kuberay-crds, never copied here) and kubernetes-validate's core schemas."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.support.project import ROOT

CRDS = ROOT.parent / "shared" / "kuberay-crds"


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused, as `kubectl apply --validate=strict` does
    (the API server would otherwise drop them silently, and the setting with them)."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@pytest.fixture(scope="session")
def rayjob_validator():
    """A jsonschema validator for ray.io/v1 RayJob objects, from the KubeRay v1.7.0 CRD."""
    import jsonschema

    path = CRDS / "ray.io_rayjobs.yaml"
    if not path.is_file():
        pytest.skip(f"the KubeRay CRDs are not at {CRDS} (they come with ../shared): RayJob "
                    "manifests cannot be checked against their schema here")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator, document: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def kubernetes_validate_strict(document: dict) -> None:
    """Raise unless a core object passes `kubernetes-validate --strict`."""
    import kubernetes_validate

    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


KUBE_TESTS = Path(__file__).resolve().parents[1] / "launcher" / "kube"
SAMPLES = KUBE_TESTS / "samples"
GOLDEN = KUBE_TESTS / "golden"
