"""The spec's `target` section: where a job runs (a local Ray head or a KubeRay RayJob)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from launcher.spec.base import Section

QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


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
        description="Secret (in the namespace) holding AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY for storage; pods read them through secretKeyRef, so no "
        "credential is ever written in a manifest. null: the pods' own identity (e.g. IRSA).")
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


class TargetSpec(Section):
    """Where the job runs."""

    kind: Literal["local", "kubernetes"] = Field(
        "local",
        description="`local`: a Ray head on this machine, started if none is running. "
        "`kubernetes`: a KubeRay RayJob (needs `image` and s3:// storage).",
    )
    address: str = Field(
        "http://127.0.0.1:8265",
        description="Ray dashboard (Jobs API) address of the local head.",
    )
    kubernetes: KubernetesSpec | None = Field(
        None, description="Settings of the kubernetes target; defaults apply when it is unset.")

    @field_validator("address")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be the dashboard's http(s) URL, e.g. http://127.0.0.1:8265")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _kubernetes_settings(self) -> TargetSpec:
        if self.kind == "kubernetes" and self.kubernetes is None:
            self.kubernetes = KubernetesSpec()
        if self.kind != "kubernetes" and self.kubernetes is not None:
            raise ValueError("kubernetes: used only with kind: kubernetes")
        return self

    @property
    def endpoint(self) -> str:
        """Where launch reaches the target: the dashboard URL, or kubernetes://NAMESPACE/CONTEXT
        (an empty context is the current one)."""
        if self.kubernetes is None:
            return self.address
        return f"kubernetes://{self.kubernetes.namespace}/{self.kubernetes.context or ''}"
