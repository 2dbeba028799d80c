"""The Kubernetes API calls the kubernetes target makes, with errors a user can act on.

Every call here is one the launcher's Role (k8s/launcher-rbac.yaml) allows, and nothing
else: rayjobs (create/get/list/patch/delete), secrets (create: the per-run Ray token, owned
by its RayJob, never read), pods (get/list), pods/log (get), pods/portforward (create), events
(list).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from launcher.errors import LaunchError

GROUP, VERSION, RAYJOBS = "ray.io", "v1", "rayjobs"


class Cluster:
    """One namespace of one kubeconfig context (None: the current context)."""

    def __init__(self, namespace: str, context: str | None):
        self.namespace, self.context = namespace, context
        self._api = None

    @property
    def where(self) -> str:
        return f"namespace {self.namespace} of context {self.context or '(current)'}"

    def api_client(self):
        if self._api is None:
            from kubernetes import config
            from kubernetes.config.config_exception import ConfigException

            # Read KUBECONFIG now: the client reads it once, when first imported.
            files = os.environ.get("KUBECONFIG") or "~/.kube/config"
            try:
                self._api = config.new_client_from_config(config_file=files,
                                                          context=self.context)
            except (ConfigException, FileNotFoundError) as err:
                which = f"context {self.context}" if self.context else "current context"
                raise LaunchError(f"no usable kubeconfig {which} in {files} ({err}); set "
                                  "KUBECONFIG or target.kubernetes.context") from None
        return self._api

    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client())

    def call(self, what: str, method, *args, **kwargs):
        """One API call; None for a 404 on a named object, LaunchError for the rest."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return method(*args, **kwargs)
        except ApiException as err:
            if err.status == 404 and "name" in kwargs:
                return None
            if err.status == 404:
                raise LaunchError(f"the cluster has no {what} API: is the KubeRay operator "
                                  "installed? (k8s/install-kuberay.sh)") from None
            if err.status in (401, 403):
                raise LaunchError(f"Kubernetes refused to {what} in {self.where} (HTTP "
                                  f"{err.status}); the launcher needs the Role in "
                                  "k8s/launcher-rbac.yaml") from None
            raise LaunchError(f"Kubernetes could not {what} in {self.where}: HTTP "
                              f"{err.status} {_reason(err)}") from None
        except HTTPError as err:
            cause = str(getattr(err, "reason", None) or err).rsplit(": ", 1)[-1].rstrip("\")")
            raise LaunchError(f"cannot reach the Kubernetes API at "
                              f"{self.api_client().configuration.host} (context "
                              f"{self.context or '(current)'}): {cause}") from None

    def plain(self, obj) -> dict:
        """An API model object as the API's own JSON (camelCase)."""
        return self.api_client().sanitize_for_serialization(obj)

    # RayJobs
    def create_rayjob(self, body: dict) -> dict:
        return self.call("create rayjobs", self.custom().create_namespaced_custom_object,
                         GROUP, VERSION, self.namespace, RAYJOBS, body)

    def get_rayjob(self, name: str) -> dict | None:
        return self.call("get rayjobs", self.custom().get_namespaced_custom_object,
                         GROUP, VERSION, self.namespace, RAYJOBS, name=name)

    def list_rayjobs(self, selector: str, limit: int | None = None) -> list[dict]:
        kwargs = {"label_selector": selector} | ({"limit": limit} if limit else {})
        return self.call("list rayjobs", self.custom().list_namespaced_custom_object,
                         GROUP, VERSION, self.namespace, RAYJOBS, **kwargs)["items"]

    def patch_rayjob(self, name: str, patch: dict) -> None:
        self.call("patch rayjobs", self.custom().patch_namespaced_custom_object,
                  GROUP, VERSION, self.namespace, RAYJOBS, name=name, body=patch)

    def delete_rayjob(self, name: str) -> None:
        # Foreground: its RayCluster, pods and submitter Job go with it.
        self.call("delete rayjobs", self.custom().delete_namespaced_custom_object,
                  GROUP, VERSION, self.namespace, RAYJOBS, name=name,
                  propagation_policy="Foreground")

    # Secrets: created (owned by their RayJob), never read, patched or deleted
    def create_secret(self, body: dict) -> None:
        self.call("create secrets", self.core().create_namespaced_secret, self.namespace, body)

    # Pods, their events and logs
    def pods(self, selector: str) -> list[dict]:
        pods = self.call("list pods", self.core().list_namespaced_pod, self.namespace,
                         label_selector=selector)
        return [self.plain(pod) for pod in pods.items]

    def pod_events(self) -> list[dict]:
        events = self.call("list events", self.core().list_namespaced_event, self.namespace,
                           field_selector="involvedObject.kind=Pod")
        return [self.plain(event) for event in events.items]

    def pod_log(self, name: str, follow: bool) -> Iterator[str]:
        response = self.call("get pods/log", self.core().read_namespaced_pod_log, name=name,
                             namespace=self.namespace, follow=follow, _preload_content=False)
        if response is None:
            return
        try:
            for chunk in response.stream(4096):
                yield chunk.decode("utf-8", errors="replace")
        finally:
            response.release_conn()


def _reason(err) -> str:
    import json

    try:
        return json.loads(err.body).get("message", err.reason)
    except (TypeError, ValueError):
        return str(err.reason)
