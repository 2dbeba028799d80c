"""The spec's `target` section: where a job runs. A union told apart by `kind`: each kind
owns its settings and declares its capabilities; launcher/targets/ holds the code of each."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Union, get_args
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from launcher.spec.base import Section, located

QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
HTTP_URL = re.compile(r"^https?://[^/\s]+")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Where an unset target.address comes from: Ray's own variables (as `ray job submit` reads
# them), then launch's (the embedded head's address, e.g. on other ports).
ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS", "LAUNCH_RAY_ADDRESS")


class TolerationSpec(Section):
    """One Kubernetes toleration, as in a pod spec."""

    key: str | None = Field(None, description="Taint key; unset with operator Exists matches "
                            "every taint.")
    operator: Literal["Equal", "Exists"] = Field("Equal", description="`Equal` matches `value`; "
                                                 "`Exists` matches any value.")
    value: str | None = Field(None, description="Taint value (with operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; unset means every effect.")
    toleration_seconds: int | None = Field(
        None, ge=0, description="With NoExecute: how long the pod stays after the taint "
        "appears.")

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> TolerationSpec:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no value")
        if self.operator == "Equal" and self.key is None:
            raise ValueError("operator Equal needs a key")
        return self


class KubernetesSpec(Section):
    """A KubeRay RayJob: one head pod, one worker pod per Ray node (scale.num_nodes)."""

    namespace: str = Field("default", pattern=DNS_LABEL,
                           description="Namespace the RayJob and its pods run in.")
    context: str | None = Field(
        None, min_length=1, description="kubeconfig context; unset means the current one.")
    storage_secret: str | None = Field(
        "launch-storage", pattern=DNS_LABEL,
        description="Secret (in the namespace) whose key `credentials` is an AWS "
        "shared-credentials file ([default] profile) for storage; the Ray pods mount it "
        "read-only, so no storage credential is in a manifest or a pod's environment. null: the "
        "pods' own identity (e.g. IRSA).")
    storage_endpoint_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+",
        description="The S3 endpoint as pods reach it, when it differs from "
        "storage.endpoint_url (e.g. http://seaweedfs.launch.svc:8333 inside Kind while this "
        "machine uses http://127.0.0.1:8333). Unset means storage.endpoint_url.")
    service_account: str | None = Field(
        None, pattern=DNS_LABEL, description="ServiceAccount of the Ray pods; unset means the "
        "namespace's default.")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        "IfNotPresent", description="Job images are tagged by content, so a tag never changes "
        "meaning and IfNotPresent is safe; `Never` for images loaded with `kind load`.")
    image_pull_secret: str | None = Field(
        None, pattern=DNS_LABEL, description="Secret for pulling from a private registry.")
    head_cpus: float = Field(1, gt=0, description="CPUs of the head pod (it runs the driver, "
                             "no training worker).")
    head_memory: str = Field("2Gi", pattern=QUANTITY, description="Memory of the head pod.")
    worker_memory: str = Field("4Gi", pattern=QUANTITY,
                               description="Memory of each worker pod: a Ray node holding "
                               "num_workers / num_nodes Ray Train workers.")
    shared_memory: str = Field(
        "1Gi", pattern=QUANTITY, description="Size of the in-memory /dev/shm volume of each "
        "worker pod (Ray's object store, NCCL); counts against worker_memory.")
    gpu_resource: str = Field(
        "nvidia.com/gpu", pattern=r"^([a-z0-9.-]+/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Extended resource name of a GPU (`amd.com/gpu`, ...).")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels every Ray pod must match.")
    tolerations: list[TolerationSpec] = Field(
        default_factory=list, description="Taints every Ray pod tolerates: each has key, "
        "operator (Equal or Exists), value, effect, toleration_seconds.")
    startup_grace_s: int = Field(
        180, ge=0, description="How long a pod may sit in ImagePullBackOff, ErrImagePull, "
        "CrashLoopBackOff or Unschedulable before launch stops the job with the pod's event "
        "message.")
    ttl_seconds_after_finished: int = Field(
        600, ge=0, description="Seconds the Ray cluster is kept after the job ends (for logs "
        "and the dashboard); the RayJob object stays until deleted.")
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="Fail the RayJob after this many seconds in all; unset means "
        "no limit.")
    backoff_limit: int = Field(0, ge=0, description="RayJob retries (each on a new Ray "
                               "cluster) after a failure.")
    ray_auth: Literal["token", "disabled"] = Field(
        "token", description="`token`: Ray token authentication (KubeRay authOptions), with a "
        "per-run token in a Secret launch creates; launch keeps a copy in LAUNCH_HOME.")


@dataclass(frozen=True)
class Capabilities:
    """What a target needs and does, declared once: api, cli and doctor read these instead of
    comparing kind names."""

    runs_from_image: bool  # the job runs from its pushed image (the spec needs `image`)
    shares_this_machine: bool  # the cluster reads this machine's files (local paths work)
    starts_cluster: bool  # launch starts the cluster when none answers
    trains_here: bool  # training runs on this machine (it needs the training stack)
    # the nodes pull the job's image from its registry; False: it was put on them beforehand
    # (`launch kind load`), so submit neither builds nor pushes and only names it
    pulls_image: bool = True

    @property
    def reads_local_files(self) -> bool:
        """The job can read files the spec names on this machine: the cluster shares its
        filesystem, or the files travel in the job's image."""
        return self.shares_this_machine or self.runs_from_image


class RayTargetSpec(Section):
    """A Ray cluster through its Jobs API: the embedded head, or any cluster by address.

    The embedded head runs on this machine (launch starts it when none answers); any other
    address is an existing cluster. Kind `local` is this kind's old name, still accepted."""

    kind: Literal["ray", "local"] = Field(
        "ray", description="`ray`: a Ray cluster through its Jobs API; `local` is its old name "
        "(still accepted).")
    address: str | None = Field(
        None, description="The Ray dashboard (Jobs API) address, e.g. http://10.0.0.5:8265. "
        "Unset: RAY_API_SERVER_ADDRESS, then RAY_ADDRESS, then LAUNCH_RAY_ADDRESS, then the "
        "embedded head at http://127.0.0.1:8265. On loopback launch starts the head when none "
        "runs; any other address is an existing cluster launch never starts or stops.")

    shared_filesystem: bool = Field(
        False, description="The cluster's nodes see this machine's files at the same paths "
        "(one machine, or a shared filesystem mounted alike): local data, model and storage "
        "paths work. Always so for an address on loopback; otherwise data and storage go on "
        "s3:// and the model is a hub id.")

    @field_validator("kind")
    @classmethod
    def _one_name(cls, value: str) -> str:
        return "ray"  # `local` is the deprecated alias

    @model_validator(mode="after")
    def _resolve_address(self) -> RayTargetSpec:
        """Where the Ray Jobs CLI looks, in its order, then launch's embedded head."""
        named, value = "address", self.address
        for variable in ADDRESS_VARIABLES:
            if value is None and os.environ.get(variable):
                named, value = variable, os.environ[variable]
        value = value or DEFAULT_ADDRESS
        if not HTTP_URL.match(value):
            raise located("target.address", f"{named} {value!r} is not a Ray dashboard URL: "
                          "launch submits through the Jobs API at http(s)://HOST:PORT (8265 "
                          "by default)")
        self.address = value.rstrip("/")
        return self

    @property
    def capabilities(self) -> Capabilities:
        here = is_loopback_url(self.address)
        return Capabilities(runs_from_image=False,
                            shares_this_machine=here or self.shared_filesystem,
                            starts_cluster=here, trains_here=here)

    @property
    def where(self) -> str:
        return self.address


class KubernetesTargetSpec(Section):
    """A KubeRay RayJob per run, in a namespace of a kubeconfig context."""

    kind: Literal["kubernetes"] = Field(
        "kubernetes", description="`kubernetes`: a KubeRay RayJob (needs `image` and s3:// "
        "storage).")
    kubernetes: KubernetesSpec = Field(
        default_factory=KubernetesSpec, description="Settings of the kubernetes target.")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(runs_from_image=True, shares_this_machine=False,
                            starts_cluster=False, trains_here=False,
                            pulls_image=self.kubernetes.image_pull_policy != "Never")

    @property
    def where(self) -> str:
        return f"namespace {self.kubernetes.namespace} of context " \
            f"{self.kubernetes.context or '(current)'}"


# The kinds a job file may name; launcher/targets/__init__.py maps each to its implementation.
TargetSpec = Annotated[Union[RayTargetSpec, KubernetesTargetSpec], Field(discriminator="kind")]
# Each member's own name: the first its `kind` admits (the rest are old names).
KINDS = tuple(get_args(member.model_fields["kind"].annotation)[0]
              for member in get_args(get_args(TargetSpec)[0]))


def default_kind(target: object) -> object:
    """A `target` section without `kind` is a Ray target, as it always was."""
    if isinstance(target, dict) and "kind" not in target:
        return {**target, "kind": "ray"}
    return target


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")
