"""JobSpec → pushed job image, building only what the registry does not have yet."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.image import docker, oci
from launcher.image.context import code_layer, write_layer_blob
from launcher.image.recipe import Recipe
from launcher.image.registry import Registry
from launcher.spec.models import JobSpec


@dataclass
class BuiltImage:
    reference: str  # REGISTRY/REPO:TAG
    runtime_reference: str
    builder: str  # "oci", "docker", "buildah", or "none" when the registry had the tag
    bytes_pushed: int  # request bodies launch sent itself (the oci builder's uploads)
    code_layer_bytes: int  # the gzipped code layer
    seconds: float
    spec: JobSpec  # the spec as the job sees it inside the image


@dataclass
class Feedback:
    """How a build reports progress: `log` for lines, `transfer(what, total)` for uploads."""

    log: Callable[[str], None] = lambda line: None
    transfer: Callable[[str, int], Callable[[int], None]] = lambda what, total: (lambda n: None)


def build_image(spec: JobSpec, job_dir: Path, builder: str | None = None,
                feedback: Feedback | None = None) -> BuiltImage:
    """Build and push the job image of `spec` (whose files are relative to `job_dir`)."""
    assert spec.image is not None, "callers check that the spec has an image section"
    feedback = feedback or Feedback()
    started = time.time()
    recipe = Recipe.for_spec(spec)
    layer = code_layer(spec, job_dir)
    host, repo = spec.image.repository.split("/", 1)
    registry = Registry(host, spec.image.insecure)
    with tempfile.TemporaryDirectory(prefix="launch-layer-") as folder:
        blob = write_layer_blob(layer, Path(folder))
        job_tag = recipe.job_tag(blob.diff_id)
        chosen = builder or spec.image.builder
        if registry.has_manifest(repo, job_tag):
            chosen = "none"
            feedback.log(f"{host}/{repo}:{job_tag} is in the registry: nothing to build")
        elif chosen == "oci" or (chosen == "auto"
                                 and registry.has_manifest(repo, recipe.runtime_tag)):
            chosen = "oci"
            advance = feedback.transfer("pushing the code layer", blob.size)
            oci.append_code_layer(registry, repo, recipe.runtime_tag, job_tag, blob,
                                  spec.image.platform, advance)
        else:
            chosen = docker.engine()
            docker.build_and_push(chosen, recipe, layer, registry, repo, job_tag, feedback.log)
    return BuiltImage(reference=f"{host}/{repo}:{job_tag}",
                      runtime_reference=f"{host}/{repo}:{recipe.runtime_tag}", builder=chosen,
                      bytes_pushed=registry.bytes_sent, code_layer_bytes=blob.size,
                      seconds=time.time() - started, spec=layer.spec)
