"""Bench: what a job image costs to ship, per builder — seconds and bytes pushed for
(a) the first build, (b) a code-only change (one line of the data), (c) no change.

Bytes are counted at the HTTP level by a proxy in front of a fresh docker-registry, so the
docker/buildah builder's own pushes count too. Goals: (b) bytes ÷ code-layer size ≤ 1.05
for oci, (c) = 0 for both. Prints one JSON line.

Needs buildah (or docker), docker-registry and a base image with Python on PATH. On the
project's test machines: run the image tests once (they build and cache
localhost/launch-test-base:bookworm-gxx) and export the same container settings they use — see
bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.counting_proxy import CountingProxy  # noqa: E402
from launcher.image.build import build_image  # noqa: E402
from launcher.spec.load import load_spec  # noqa: E402


def start_registry(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = folder / "registry.yml"
    config.write_text(f"version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: "
                      f"{{rootdirectory: {folder / 'data'}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n")
    process = subprocess.Popen(["docker-registry", "serve", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("docker-registry did not start")


def write_job(folder: Path, registry: str, base: str, builder: str) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "examples" / "data" / "debian_describe.jsonl",
                folder / "data" / "train.jsonl")
    job = folder / "job.yaml"
    job.write_text(yaml.safe_dump({
        "name": "bench", "model": {"name_or_path": "gpt2"},
        "data": {"path": "data/train.jsonl"},
        "image": {"repository": f"{registry}/bench/{builder}", "base": base,
                  "builder": builder}}))
    return job


def measure(job: Path, proxy: CountingProxy, builder: str) -> dict:
    proxy.reset()
    image = build_image(load_spec(job), job.parent, builder)
    return {"seconds": round(image.seconds, 2), "bytes": proxy.sent, "builder": image.builder,
            "code_layer_bytes": image.code_layer_bytes}


def edit_one_line(job: Path) -> None:
    data = job.parent / "data" / "train.jsonl"
    lines = data.read_text().splitlines(keepends=True)
    row = json.loads(lines[0])
    row["response"] += f" (edited {time.time()})"
    data.write_text(json.dumps(row) + "\n" + "".join(lines[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="localhost/launch-test-base:bookworm-gxx")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        folder = Path(tmp)
        registry, host = start_registry(folder)
        proxy = CountingProxy(host)
        results = {}
        try:
            # docker first: it pushes the runtime stage the oci builder then appends to.
            for builder in ("docker", "oci"):
                job = write_job(folder / builder, proxy.host, args.base,
                                "docker" if builder == "docker" else "oci")
                if builder == "oci":  # the oci builder needs the runtime in its repository
                    build_image(load_spec(job), job.parent, "docker")
                    edit_one_line(job)
                first = measure(job, proxy, builder)
                edit_one_line(job)
                code_only = measure(job, proxy, builder)
                unchanged = measure(job, proxy, builder)
                results[builder] = {
                    "first": first, "code_only": code_only, "unchanged": unchanged,
                    "code_only_bytes_over_layer": round(
                        code_only["bytes"] / code_only["code_layer_bytes"], 3),
                    "unchanged_bytes": unchanged["bytes"]}
        finally:
            proxy.close()
            registry.send_signal(signal.SIGTERM)
            registry.wait(timeout=20)
    print(json.dumps({"bench": "image_push", **results}))


if __name__ == "__main__":
    main()
