"""`launch doctor`: is this machine (and what a job file names) ready to run jobs?

Each check says ✓ or ✗, what it found, and how to fix a ✗. A check is `needed` when the job
cannot run without it; the report is OK when every needed check passes. Without a job file
the checks are those of the defaults (the Ray cluster at --address, RAY_API_SERVER_ADDRESS,
RAY_ADDRESS or LAUNCH_RAY_ADDRESS, else the embedded head).
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from launcher import ray_auth, ray_dashboard
from launcher.errors import LaunchError
from launcher.spec.models import JobSpec


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""  # how to fix it, for a ✗
    needed: bool = True  # False: shown, but the job can run without it

    def __post_init__(self) -> None:
        self.hint = "" if self.ok else self.hint

    def lines(self) -> list[str]:
        mark = "✓" if self.ok else "✗"
        note = "" if self.ok or self.needed else " (not needed by this job)"
        lines = [f"{mark} {self.name}: {self.detail}{note}"]
        if not self.ok and self.hint:
            lines.append(f"  fix: {self.hint}")
        return lines


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok or not check.needed for check in self.checks)

    def lines(self) -> list[str]:
        return [line for check in self.checks for line in check.lines()]


def diagnose(job_file: Path | None = None, address: str | None = None) -> Report:
    """Run every check that applies to `job_file` (or to the defaults); `address` is --address,
    the job's Ray cluster elsewhere."""
    from launcher.spec.load import load_spec
    from launcher.targets import make_target, target_settings

    if address:
        ray_auth.name(address)
    overrides = {"target": {"address": address}} if address else None
    spec = load_spec(job_file, overrides) if job_file else None
    settings = spec.target if spec else target_settings({"kind": "ray", "address": address})
    checks = [python_version(), packages("launch's client packages", extra=None)]
    if settings.capabilities.trains_here:
        checks.append(packages("training stack (this machine trains)", extra="train"))
    checks += make_target(settings).checks(spec, _image_ray_version(spec))
    if spec is not None:
        checks.append(model_source(spec))
        checks.append(storage(spec))
        if spec.image is not None:
            checks.append(registry(spec))
        if spec.scale.gpus_per_worker > 0 and settings.capabilities.trains_here:
            checks.append(local_gpus(spec))
    return Report(checks)


def python_version() -> Check:
    from packaging.specifiers import SpecifierSet

    wanted = metadata.metadata("launch").get("Requires-Python") or ""
    found = platform.python_version()
    ok = SpecifierSet(wanted).contains(found)
    return Check("python", ok, f"{found} (launch needs {wanted or 'any'})",
                 f"use a Python {wanted} interpreter for launch's virtualenv")


def packages(name: str, extra: str | None) -> Check:
    """launch's pinned requirements (its base ones, or one extra) against what is installed."""
    from packaging.requirements import Requirement

    problems, count = [], 0
    for line in metadata.requires("launch") or []:
        requirement = Requirement(line)
        if extra is None and requirement.marker is not None:
            continue
        if extra is not None and (requirement.marker is None
                                  or not requirement.marker.evaluate({"extra": extra})):
            continue
        count += 1
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name} missing (launch needs {requirement})")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement.name} {installed} installed, launch needs "
                            f"{requirement.specifier}")
    fix = "pip install -e '.[all]'" if extra else "pip install -e ."
    detail = "; ".join(problems) if problems else f"{count} requirements met"
    return Check(name, not problems, detail, f"{fix} (in launch's source folder)")


def ray_head(address: str, image_version: str | None, started_by_submit: bool) -> Check:
    """The Ray head answers, accepts our token, and runs the Ray version we (and the image)
    were tested with."""
    name = f"ray head {address}"
    headers = ray_auth.headers_for(address)
    status, head = ray_dashboard.head_version(address, headers)
    if status is None:
        if started_by_submit:
            return Check(name, False, "nothing answers",
                         "`launch local up` (launch submit also starts one by itself)",
                         needed=False)
        return Check(name, False, "nothing answers", "start the cluster, or fix "
                     "target.address / --address / RAY_API_SERVER_ADDRESS / RAY_ADDRESS")
    if status in (401, 403) and ray_auth.withheld(address):
        return Check(name, False, f"wants a token (HTTP {status}); launch sends yours only to "
                     "an address you named, not to one only a job file names",
                     ray_auth.FIX_WITHHELD)
    if status in (401, 403):
        return Check(name, False, f"refused launch's token (HTTP {status})",
                     ray_auth.FIX_REFUSED)
    if status != 200:
        return Check(name, False, f"answered HTTP {status}: not a Ray dashboard?",
                     "point target.address at the Ray dashboard (port 8265 by default)")
    head = head or "unknown"
    ours = installed_version("ray") or "not installed"
    versions = {"client": ours, **({"image": image_version} if image_version else {})}
    mismatched = {who: v for who, v in versions.items() if v != head}
    found = ", ".join(f"{who} {v}" for who, v in versions.items())
    return Check(name, not mismatched, f"Ray {head} ({found})",
                 f"use Ray {head} everywhere: pip install 'ray[default]=={head}', and an "
                 "image.base with the same Ray")


def cluster_room(address: str, spec: JobSpec | None) -> Check:
    """The Ray cluster's live nodes against what one run of the job asks for: every worker's
    CPUs and GPUs, each worker on one node, and as many nodes as scale.num_nodes."""
    nodes = ray_dashboard.alive_nodes(address, ray_auth.headers_for(address))
    if nodes is None:
        return Check("cluster resources", False, "the head did not list its nodes",
                     "check the dashboard at the address (Ray's state API, `ray list nodes`)",
                     needed=False)
    have = [node.get("resources_total", {}) for node in nodes]
    found = (f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}, "
             f"{sum(r.get('CPU', 0) for r in have):g} CPUs, "
             f"{sum(r.get('GPU', 0) for r in have):g} GPUs")
    if spec is None:
        return Check("cluster resources", True, found)
    scale = spec.scale
    fits = [r for r in have if r.get("CPU", 0) >= scale.cpus_per_worker
            and r.get("GPU", 0) >= scale.gpus_per_worker]
    short = []
    for name, each in (("CPU", scale.cpus_per_worker), ("GPU", scale.gpus_per_worker)):
        if sum(r.get(name, 0) for r in have) < scale.num_workers * each:
            short.append(f"{scale.num_workers * each:g} {name}s in all")
    if len(fits) < scale.num_nodes:
        short.append(f"{scale.num_nodes} node{'s' if scale.num_nodes > 1 else ''} with room "
                     f"for a worker ({scale.cpus_per_worker:g} CPU, {scale.gpus_per_worker:g} "
                     "GPU)")
    wants = (f"{scale.num_workers} workers x {scale.cpus_per_worker:g} CPU, "
             f"{scale.gpus_per_worker:g} GPU")
    return Check("cluster resources", not short,
                 f"{found}; the job's {wants}" + (f": short of {', '.join(short)}"
                                                  if short else ""),
                 "lower scale.num_workers, cpus_per_worker or gpus_per_worker, or add nodes "
                 "(a cluster that autoscales adds them when the job asks: then this is "
                 "expected)")


def image_ray(image_version: str | None) -> Check:
    """Each kubernetes run's head runs the image's Ray; launch talks to it with ours."""
    ours = installed_version("ray") or "not installed"
    return Check("ray versions", image_version in (None, ours),
                 f"client {ours}, image {image_version or 'unknown (image.base has no Ray tag)'}",
                 f"pip install 'ray[default]=={image_version}', or an image.base with Ray {ours}")


def model_source(spec: JobSpec) -> Check:
    """Where the job will load the model from, checked from where it trains: a local folder
    (validation found its config.json), an s3:// folder holding a config.json, or a hub name
    in the hub cache here or on a hub this machine reaches; a cluster elsewhere checks a hub
    name itself when the run starts."""
    name = spec.model.name_or_path
    check = f"model {name}"
    if spec.model.location == "local":
        return Check(check, True, "a local folder with config.json")
    if spec.model.location == "s3":
        from launcher.storage import storage_for

        config = f"{name.rstrip('/')}/config.json"

        def config_is_there() -> None:
            if not storage_for(spec.storage).exists(config):
                raise LaunchError(f"no {config}")

        return attempt(check, config_is_there, "an s3:// folder with config.json",
                       "upload the folder save_pretrained wrote, or fix model.name_or_path")
    if not spec.target.capabilities.trains_here:
        return Check(check, True, f"a hub name: the cluster at {spec.target.where} downloads "
                     "it when the run starts (checked there, not here)")
    try:
        import huggingface_hub  # noqa: F401 (launcher.hub needs it)
    except ImportError:
        return Check(check, False, "a hub name, and huggingface_hub is not installed here",
                     "pip install -e '.[all]' (this machine trains)")
    from launcher.hub import hub_model

    found = hub_model(name)
    return Check(check, found.ok, found.detail, found.fix)


def storage(spec: JobSpec) -> Check:
    """What `launch submit` checks: the bucket exists; a probe object can be written, read
    back and deleted with the credentials at hand."""
    from launcher.storage import storage_for

    where = spec.storage.uri + (f" at {spec.storage.endpoint_url}"
                                if spec.storage.endpoint_url else "")
    return attempt(f"storage {where}", lambda: storage_for(spec.storage).check(spec.storage.uri),
                    "write, read and delete work" if spec.storage.is_s3 else "writable",
                    "fix storage.uri / storage.endpoint_url, or the AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY (or storage.profile) credentials")


def registry(spec: JobSpec) -> Check:
    """The registry answers and lets us push to the repository: a blob upload is started and
    cancelled (nothing is written)."""
    from launcher.image.registry import Registry

    host, repo = spec.image.repository.split("/", 1)
    client = Registry(host, spec.image.insecure)
    return attempt(f"registry {spec.image.repository}", lambda: client.check_push(repo),
                    "reachable, push allowed",
                    f"start the registry or fix image.repository; log in with `docker login "
                    f"{host}` or LAUNCH_REGISTRY_USERNAME / LAUNCH_REGISTRY_PASSWORD")


def local_gpus(spec: JobSpec) -> Check:
    """The target trains here: this machine must see the GPUs the job asks for."""
    wanted = math.ceil(spec.scale.gpus_per_worker * spec.scale.num_workers)
    name = f"GPUs ({wanted} asked for)"
    try:
        import torch
    except ImportError:
        return Check(name, False, "torch is not installed, so no GPU is usable",
                     "pip install -e '.[all]'")
    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Check(name, seen >= wanted, f"{seen} visible to torch",
                 "run on a machine with GPUs (check CUDA_VISIBLE_DEVICES and nvidia-smi), or "
                 "set scale.gpus_per_worker: 0")


def attempt(name: str, action: Callable[[], object], success: str, hint: str) -> Check:
    try:
        action()
    except LaunchError as err:
        return Check(name, False, str(err), hint)
    return Check(name, True, success, hint)


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _image_ray_version(spec: JobSpec | None) -> str | None:
    """The Ray version of the job image's base (from its tag), when the spec has an image."""
    if spec is None or spec.image is None:
        return None
    from launcher.image.recipe import Recipe

    match = re.search(r"ray(?:-ml)?:([0-9]+\.[0-9]+\.[0-9]+)", Recipe.for_spec(spec).base)
    return match[1] if match else None
