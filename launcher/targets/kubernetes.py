"""The kubernetes target: each run is a KubeRay RayJob (launcher.kube.render) in a namespace.

submit creates the run's RayJob and its token Secret (owned by the RayJob), then watches until
the Ray job runs: a pod stuck in ImagePullBackOff, ErrImagePull, CrashLoopBackOff or
Unschedulable for longer than target.kubernetes.startup_grace_s ends the submission with the
pod's event message, and the RayJob (with its cluster and Secret) is deleted. Logs, stop and
the dashboard go through the Ray Jobs API over a port-forward to the head pod, as for a local
head; logs fall back to the submitter pod's log when the head cannot be reached.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from launcher import ray_auth
from launcher.contract import RunLayout
from launcher.errors import LaunchError
from launcher.kube import names, tokens
from launcher.kube.client import Cluster
from launcher.kube.portforward import PortForward
from launcher.kube.render import manifests_yaml, owned_by, render_manifests
from launcher.kube.status import PodProblem, job_info, pod_problem
from launcher.spec.models import JobSpec
from launcher.spec.target import KubernetesTargetSpec
from launcher.targets.base import TERMINAL_STATES, JobInfo, Target

if TYPE_CHECKING:
    from launcher.doctor import Check

DASHBOARD_PORT = 8265
POLL_S = 2.0


class KubernetesTarget(Target):
    forwards_dashboard = True

    def __init__(self, settings: KubernetesTargetSpec):
        super().__init__(settings)
        self.cluster = Cluster(settings.kubernetes.namespace, settings.kubernetes.context)

    def describe(self, spec: JobSpec, layout: RunLayout, run_id: str,
                 image: str | None) -> str:
        """The RayJob (and token Secret) manifests, with the image tag the build would push."""
        assert image is not None, "a target that runs from an image is described with it"
        return manifests_yaml(spec, layout, run_id, image)

    def prepare(self) -> None:
        self.cluster.list_rayjobs(names.SELECTOR, limit=1)  # reachable, KubeRay, allowed

    def checks(self, spec: JobSpec | None, image_ray_version: str | None) -> list[Check]:
        """The kube context answers, has KubeRay's RayJob API, lets launch list RayJobs; each
        run's head runs the image's Ray, which launch talks to with its own."""
        from launcher.doctor import attempt, image_ray

        where = f"kubernetes {self.settings.where}"
        return [attempt(where, self.prepare, "API reachable, KubeRay RayJob API installed",
                        "set KUBECONFIG or target.kubernetes.context; install KubeRay with "
                        "k8s/install-kuberay.sh and the launcher Role in "
                        "k8s/launcher-rbac.yaml"),
                image_ray(image_ray_version)]

    def submit(self, spec: JobSpec, layout: RunLayout, run_id: str, env: dict[str, str],
               image: str | None = None) -> None:
        # `env` points at a credentials file on this machine; pods get the same variables
        # from the spec and the credentials from target.kubernetes.storage_secret.
        assert image is not None, "api.submit builds the image of targets that run from one"
        kube = spec.target.kubernetes
        token = secrets.token_urlsafe(32)
        manifests = render_manifests(spec, layout, run_id, image, token=token)
        secret = next((m for m in manifests if m["kind"] == "Secret"), None)
        name = names.rayjob_name(run_id)
        rayjob = None
        try:
            rayjob = self.cluster.create_rayjob(manifests[-1])
            if secret:
                # Created owned by its RayJob, so deleting the RayJob deletes it: launch never
                # needs to patch or delete a Secret. Its pods wait the moment it takes.
                self.cluster.create_secret(owned_by(secret, rayjob))
                tokens.save(kube.namespace, name, token)
            self._wait_until_running(name, kube.startup_grace_s)
        except BaseException:
            # Clean up what this submission created; a failed clean-up must not hide why.
            if rayjob is not None:
                with suppress(LaunchError):
                    self.cluster.delete_rayjob(name)
            raise

    def _wait_until_running(self, name: str, grace_s: float) -> None:
        while True:
            rayjob = self._rayjob(name)
            info = job_info(rayjob)
            if info.state == "FAILED":
                raise LaunchError(f"RayJob {name} failed: {info.message}")
            if info.state != "PENDING":
                return
            problem = self._stuck_pod(rayjob, grace_s)
            if problem is not None:
                raise LaunchError(f"{problem} (RayJob {name} deleted)")
            time.sleep(POLL_S)

    def _stuck_pod(self, rayjob: dict, grace_s: float) -> PodProblem | None:
        labels = rayjob["metadata"]["labels"]
        selector = (f"{names.LABEL_RUN}={labels[names.LABEL_RUN]},"
                    f"{names.LABEL_ATTEMPT}={labels[names.LABEL_ATTEMPT]}")
        pods = self.cluster.pods(selector)
        if not pods:
            return None
        events, now = self.cluster.pod_events(), datetime.now(timezone.utc)
        return next((p for p in (pod_problem(pod, events, now, grace_s) for pod in pods) if p),
                    None)

    def info(self, run_id: str) -> JobInfo:
        rayjob = self._rayjob(names.rayjob_name(run_id))
        info = job_info(rayjob)
        if info.state not in TERMINAL_STATES:
            grace = float(rayjob["metadata"]["annotations"].get(names.ANNOTATION_GRACE, 0))
            problem = self._stuck_pod(rayjob, grace)
            if problem is not None:
                info.message = str(problem)
        return info

    def logs(self, run_id: str, follow: bool) -> Iterator[str]:
        rayjob = self._rayjob(names.rayjob_name(run_id))
        try:
            with self._jobs_api(rayjob) as head:
                yield from head.logs(run_id, follow)
                return
        except LaunchError:
            pass
        # The head is gone or unreachable: `ray job submit` in the submitter pod tails the log.
        submitter = self.cluster.pods(f"batch.kubernetes.io/job-name={rayjob['metadata']['name']}")
        if not submitter:
            raise LaunchError(f"run {run_id} has neither a Ray head nor a submitter pod left; "
                              "its log is in storage (launch logs reads it there)")
        latest = max(submitter, key=lambda pod: pod["metadata"]["creationTimestamp"])
        yield from self.cluster.pod_log(latest["metadata"]["name"], follow)

    def stop(self, run_id: str) -> None:
        """Stop through the Jobs API (the driver records STOPPED), else suspend the RayJob."""
        rayjob = self._rayjob(names.rayjob_name(run_id))
        try:
            with self._jobs_api(rayjob) as head:
                head.stop(run_id)
                return
        except LaunchError:
            pass
        self.cluster.patch_rayjob(rayjob["metadata"]["name"], {"spec": {"suspend": True}})

    def list(self) -> list[JobInfo]:
        infos = [job_info(rayjob) for rayjob in self.cluster.list_rayjobs(names.SELECTOR)]
        return sorted(infos, key=lambda info: info.start_time or 0)

    def dashboard_url(self, run_id: str | None = None) -> str:
        """The dashboard's in-cluster address (`dashboard()` forwards it to this machine)."""
        if run_id is None:
            return self.settings.where
        url = self._rayjob(names.rayjob_name(run_id)).get("status", {}).get("dashboardURL")
        return f"http://{url}" if url else f"(not yet: the Ray cluster of {run_id} is starting)"

    @contextmanager
    def dashboard(self, run_id: str, local_port: int = DASHBOARD_PORT) -> Iterator[str]:
        """Forward 127.0.0.1:`local_port` to the run's dashboard while the block runs."""
        rayjob = self._rayjob(names.rayjob_name(run_id))
        with PortForward(self.cluster, self._head_pod(rayjob), DASHBOARD_PORT,
                         local_port) as forward:
            yield forward.url

    @contextmanager
    def _jobs_api(self, rayjob: dict):
        """The run's Ray Jobs API on a local port, with the run's token."""
        from launcher.targets.ray import RayTarget

        name = rayjob["metadata"]["name"]
        with PortForward(self.cluster, self._head_pod(rayjob), DASHBOARD_PORT) as forward:
            token = tokens.load(self.cluster.namespace, name)
            if token:
                ray_auth.remember(forward.url, token)
            yield RayTarget.at(forward.url)

    def _head_pod(self, rayjob: dict) -> str:
        cluster = rayjob.get("status", {}).get("rayClusterName")
        heads = self.cluster.pods(f"ray.io/cluster={cluster},ray.io/node-type=head") \
            if cluster else []
        running = [pod for pod in heads if pod.get("status", {}).get("phase") == "Running"]
        if not running:
            raise LaunchError(f"the Ray head of RayJob {rayjob['metadata']['name']} is not "
                              "running")
        return running[0]["metadata"]["name"]

    def _rayjob(self, name: str) -> dict:
        rayjob = self.cluster.get_rayjob(name)
        if rayjob is None:
            raise LaunchError(f"no RayJob {name} in {self.cluster.where}")
        return rayjob
