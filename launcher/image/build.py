"""JobSpec → pushed job image, building only what the registry does not have yet."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import LaunchError
from launcher.image import docker, oci
from launcher.image.context import CodeLayer, LayerBlob, code_layer, write_layer_blob
from launcher.image.recipe import Recipe
from launcher.image.registry import Registry
from launcher.spec.models import JobSpec


@dataclass
class BuiltImage:
    reference: str  # REGISTRY/REPO:TAG
    runtime_reference: str
    builder: str  # "oci", "docker", "buildah", or "none" when the registry had the tag
    insecure: bool  # the registry speaks plain HTTP (pulls must not verify TLS)
    bytes_pushed: int  # request bodies launch sent itself (the oci builder's uploads)
    code_layer_bytes: int  # the gzipped code layer
    seconds: float
    spec: JobSpec  # the spec as the job sees it inside the image


@dataclass
class Feedback:
    """How a build reports progress: `log` for lines, `transfer(what, total)` for uploads."""

    log: Callable[[str], None] = lambda line: None
    transfer: Callable[[str, int], Callable[[int], None]] = lambda what, total: (lambda n: None)


@dataclass
class ImagePlan:
    """What a build would push, known before any registry is contacted."""

    recipe: Recipe
    layer: CodeLayer
    blob: LayerBlob
    host: str
    repo: str

    @property
    def job_tag(self) -> str:
        return self.recipe.job_tag(self.blob.diff_id)

    @property
    def reference(self) -> str:
        return f"{self.host}/{self.repo}:{self.job_tag}"


def plan_image(spec: JobSpec, job_dir: Path, folder: Path) -> ImagePlan:
    """The image's recipe, code layer (gzipped into `folder`) and content-addressed tag."""
    assert spec.image is not None, "callers check that the spec has an image section"
    layer = code_layer(spec, job_dir)
    host, repo = spec.image.repository.split("/", 1)
    return ImagePlan(recipe=Recipe.for_spec(spec), layer=layer,
                     blob=write_layer_blob(layer, folder), host=host, repo=repo)


def build_image(spec: JobSpec, job_dir: Path, builder: str | None = None,
                feedback: Feedback | None = None, push: bool = True) -> BuiltImage:
    """Build and push the job image of `spec` (whose files are relative to `job_dir`); with
    `push` False, build it here with the local engine only (for `launch kind load`)."""
    feedback = feedback or Feedback()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="launch-layer-") as folder:
        plan = plan_image(spec, job_dir, Path(folder))
        recipe, repo, blob = plan.recipe, plan.repo, plan.blob
        registry = Registry(plan.host, spec.image.insecure)
        chosen = builder or spec.image.builder
        if not push:
            if chosen == "oci":
                raise LaunchError("--no-push builds with the local engine (docker or buildah): "
                                  "the oci builder only appends a layer in the registry")
            chosen = docker.engine()
            docker.build_and_push(chosen, recipe, plan.layer, registry, repo, plan.job_tag,
                                  feedback.log, push=False)
        elif registry.has_manifest(repo, plan.job_tag):
            chosen = "none"
            feedback.log(f"{plan.reference} is in the registry: nothing to build")
        elif chosen == "oci" or (chosen == "auto"
                                 and registry.has_manifest(repo, recipe.runtime_tag)):
            chosen = "oci"
            advance = feedback.transfer("pushing the code layer", blob.size)
            oci.append_code_layer(registry, repo, recipe.runtime_tag, plan.job_tag, blob,
                                  spec.image.platform, advance)
        else:
            chosen = docker.engine()
            docker.build_and_push(chosen, recipe, plan.layer, registry, repo, plan.job_tag,
                                  feedback.log)
    return BuiltImage(reference=plan.reference,
                      runtime_reference=f"{plan.host}/{repo}:{recipe.runtime_tag}",
                      builder=chosen, insecure=registry.insecure,
                      bytes_pushed=registry.bytes_sent,
                      code_layer_bytes=blob.size, seconds=time.time() - started,
                      spec=plan.layer.spec)
