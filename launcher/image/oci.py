"""The daemonless builder: append the code layer to the runtime image inside the registry.

Reads the runtime image's manifest and config, uploads the code layer (unless the registry
has it) and a config that lists it, and writes the job manifest under the job tag. Every
runtime blob is reused where it lies, so a code-only change uploads one small layer and a
config, and no build tool, daemon or root is needed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from launcher.errors import LaunchError
from launcher.image.context import LayerBlob
from launcher.image.registry import DOCKER_MANIFEST, Registry, sha256_digest

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CODE_LAYER_HISTORY = "launch: code layer (jobs package, the job's files, the resolved spec)"


def append_code_layer(registry: Registry, repo: str, runtime_tag: str, job_tag: str,
                      blob: LayerBlob, platform: str,
                      on_bytes: Callable[[int], None] | None = None) -> str:
    """Write `repo:job_tag` = runtime image + `blob`; return the job manifest's digest."""
    runtime = registry.manifest(repo, runtime_tag, platform)
    if runtime is None:
        raise LaunchError(f"{registry.host}/{repo}:{runtime_tag} is not in the registry, and "
                          "the oci builder only appends the code layer to it; build it once "
                          "with `--builder docker` (docker or buildah)")
    manifest = runtime.data
    config = json.loads(registry.blob(repo, manifest["config"]["digest"]))
    config["rootfs"]["diff_ids"].append(blob.diff_id)
    # No timestamp: the same code on the same runtime must give the same manifest digest.
    config.setdefault("history", []).append({"created_by": CODE_LAYER_HISTORY})
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = sha256_digest(config_bytes)

    with blob.path.open("rb") as layer:
        registry.push_blob(repo, layer, blob.size, blob.digest, on_bytes)
    registry.push_blob(repo, io.BytesIO(config_bytes), len(config_bytes), config_digest)

    layer_type = DOCKER_LAYER if runtime.media_type == DOCKER_MANIFEST else OCI_LAYER
    manifest["config"] = {**manifest["config"], "digest": config_digest,
                          "size": len(config_bytes)}
    manifest["layers"] = [*manifest["layers"],
                          {"mediaType": layer_type, "digest": blob.digest, "size": blob.size}]
    body = json.dumps(manifest, separators=(",", ":")).encode()
    return registry.put_manifest(repo, job_tag, runtime.media_type, body)
