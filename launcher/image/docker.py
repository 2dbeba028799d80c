"""The Dockerfile builder: `docker build` + `docker push`, or buildah where no Docker engine runs.

The build context is written fresh each time (Dockerfile, requirements.txt, code/ with fixed
mtimes). The runtime stage is built and pushed only when the registry lacks its tag, so the
`oci` builder can append to it afterwards; the job stage reuses it from the build cache.
LAUNCH_BUILD_FLAGS adds flags to every build (e.g. `--network host`, or volumes and
`--build-arg TORCH_INDEX_URL=` for a local wheel mirror); they never enter the image tag, so
they must not change what the image holds.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from launcher.errors import LaunchError
from launcher.image.context import CodeLayer
from launcher.image.recipe import Recipe
from launcher.image.registry import Registry, is_loopback
from launcher.image.streaming import run_streaming

BUILD_FLAGS_ENV = "LAUNCH_BUILD_FLAGS"


def engine() -> str:
    """`docker` when a Docker engine answers, else `buildah`; an error when neither exists."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return "docker"
    if shutil.which("buildah"):
        return "buildah"
    raise LaunchError("the docker builder needs a running Docker engine or buildah (apt-get "
                      "install buildah); or use `--builder oci` once the runtime image is in "
                      "the registry")


def build_and_push(tool: str, recipe: Recipe, layer: CodeLayer, registry: Registry,
                   repo: str, job_tag: str, log: Callable[[str], None],
                   push: bool = True) -> None:
    """Build the job image from docker/Dockerfile and push it (and the runtime, if missing).
    With `push` False it is only built and tagged here, and the registry is never asked."""
    runtime_ref = f"{registry.host}/{repo}:{recipe.runtime_tag}"
    job_ref = f"{registry.host}/{repo}:{job_tag}"
    with tempfile.TemporaryDirectory(prefix="launch-build-") as folder:
        context = Path(folder)
        _write_context(context, recipe, layer)
        if push and not registry.has_manifest(repo, recipe.runtime_tag):
            log(f"building the runtime image {runtime_ref} (once per training stack)")
            _run(_build_command(tool, recipe, "runtime", runtime_ref, context), log)
            _run(_push_command(tool, runtime_ref, registry), log)
        log(f"building {job_ref}")
        _run(_build_command(tool, recipe, "job", job_ref, context), log)
        if push:
            _run(_push_command(tool, job_ref, registry), log)


def _write_context(context: Path, recipe: Recipe, layer: CodeLayer) -> None:
    (context / "Dockerfile").write_text(recipe.dockerfile)
    (context / "requirements.txt").write_text(recipe.requirements)
    for entry in layer.entries:
        path = context / "code" / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.read())
        path.chmod(0o755 if entry.executable else 0o644)
    for path in sorted(context.rglob("*"), reverse=True):
        os.utime(path, (0, 0))  # COPY keeps mtimes: fixed ones keep the layer reproducible


def _build_command(tool: str, recipe: Recipe, target: str, ref: str, context: Path) -> list[str]:
    command = [tool, "build"] if tool == "docker" else [tool, "bud", "--layers"]
    command += ["--target", target, "-t", ref]
    for name, value in recipe.build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    return command + shlex.split(os.environ.get(BUILD_FLAGS_ENV, "")) + [str(context)]


def _push_command(tool: str, ref: str, registry: Registry) -> list[str]:
    if tool == "docker":
        return ["docker", "push", ref]
    command = ["buildah", "push"]
    if registry.insecure:
        command.append("--tls-verify=false")
    if is_loopback(registry.host):
        command.append("--disable-compression")  # gzip costs minutes and saves nothing here
    return command + [ref, f"docker://{ref}"]


def _run(command: list[str], log: Callable[[str], None]) -> None:
    code, last = run_streaming(command, log)
    if code != 0:
        raise LaunchError(f"`{' '.join(command[:2])}` failed (exit {code}): {last}")
