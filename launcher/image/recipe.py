"""What an image is made of, and the content-addressed tags that name it.

The runtime tag hashes the Dockerfile, the base image, the pinned training stack and the build
arguments; the job tag hashes the runtime tag and the code layer's tar. Equal inputs give equal
tags, whichever builder runs, so a tag already in the registry means there is nothing to build
or push.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import metadata

from launcher.settings import SOURCE_ROOT
from launcher.spec.models import JobSpec

DOCKERFILE = SOURCE_ROOT / "docker" / "Dockerfile"
# Pinned Ray images for the runtime stage: the Ray and Python versions the stack is tested on.
CPU_BASE = "rayproject/ray:2.60.0-py311-cpu"
GPU_BASE = "rayproject/ray:2.60.0-py311-cu128"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# The job image needs the cluster half's dependencies: launch's `train` extra and pydantic.
RUNTIME_EXTRA = "train"
RUNTIME_BASE_PACKAGES = ("pydantic",)
TAG_HEX = 24


@dataclass(frozen=True)
class Recipe:
    dockerfile: str
    base: str
    requirements: str
    torch_index_url: str  # "" for PyPI's torch (CUDA), else PyTorch's CPU index
    cpu_ops: bool  # DeepSpeed's CPU ops built into the image (CPU images)

    @classmethod
    def for_spec(cls, spec: JobSpec) -> Recipe:
        assert spec.image is not None, "only a spec with an image section has a recipe"
        gpu = spec.scale.gpus_per_worker > 0
        return cls(dockerfile=DOCKERFILE.read_text(),
                   base=spec.image.base or (GPU_BASE if gpu else CPU_BASE),
                   requirements=requirements(), torch_index_url="" if gpu else CPU_TORCH_INDEX,
                   cpu_ops=not gpu)

    @property
    def build_args(self) -> dict[str, str]:
        return {"BASE_IMAGE": self.base, "TORCH_INDEX_URL": self.torch_index_url,
                "PREBUILD_CPU_OPS": "1" if self.cpu_ops else ""}

    @property
    def runtime_tag(self) -> str:
        return "runtime-" + _hash("runtime", self.dockerfile, self.base, self.requirements,
                                  self.torch_index_url, str(self.cpu_ops))

    def job_tag(self, code_diff_id: str) -> str:
        return "job-" + _hash("job", self.runtime_tag, code_diff_id)


def requirements() -> str:
    """requirements.txt for the runtime stage, from launch's own package metadata."""
    lines = []
    for requirement in metadata.requires("launch") or []:
        name, _, marker = requirement.partition(";")
        in_extra = re.search(rf"extra\s*==\s*['\"]{RUNTIME_EXTRA}['\"]", marker)
        base_package = not marker and re.split(r"[<>=!\[ ]", name)[0] in RUNTIME_BASE_PACKAGES
        if in_extra or base_package:
            lines.append(name.strip())
    assert lines, "launch's metadata lists no training stack; reinstall launch"
    return "\n".join(sorted(lines)) + "\n"


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:TAG_HEX]
