"""Against a real cluster, only when a kube context is reachable (KUBECONFIG or
~/.kube/config) and KubeRay is installed there; otherwise every test here is skipped with the
reason. No API server can be started on the machines these tests are written on.

LAUNCH_TEST_NAMESPACE picks the namespace (default `default`)."""

from __future__ import annotations

import os
import re

import pytest

from launcher.errors import LaunchError
from launcher.kube import names
from launcher.kube.client import GROUP, RAYJOBS, VERSION
from launcher.kube.render import render_rayjob
from launcher.spec.target import KubernetesTargetSpec
from launcher.targets.kubernetes import KubernetesTarget

NAMESPACE = os.environ.get("LAUNCH_TEST_NAMESPACE", "default")


@pytest.fixture(scope="module")
def target() -> KubernetesTarget:
    target = KubernetesTarget(KubernetesTargetSpec(kubernetes={"namespace": NAMESPACE}))
    try:
        from kubernetes import client

        client.VersionApi(target.cluster.api_client()).get_code(_request_timeout=5)
    except LaunchError as err:
        pytest.skip(f"no reachable kube context, so no live-cluster test ran: {err}")
    except Exception as err:  # the API server did not answer
        pytest.skip(f"no reachable kube context, so no live-cluster test ran: "
                    f"{type(err).__name__}: {err}")
    try:
        target.prepare()
    except LaunchError as err:
        pytest.skip(f"the cluster is reachable but cannot run RayJobs here: {err}")
    return target


def live_spec(image_repository: str, grace_s: int = 20):
    import copy

    from test_render import BASE

    from launcher.spec.load import merge_overrides
    from launcher.spec.models import JobSpec

    job = copy.deepcopy(BASE)
    merge_overrides(job, {
        "image": {"repository": image_repository},
        "scale": {"num_workers": 1},
        "target": {"kubernetes": {"namespace": NAMESPACE, "startup_grace_s": grace_s,
                                  "head_memory": "1Gi", "worker_memory": "1Gi",
                                  "shared_memory": "256Mi"}}})
    return JobSpec.model_validate(job)


def test_the_api_server_accepts_the_rendered_rayjob_strictly(target):
    """Server-side dry run with strict field validation: KubeRay's CRD, admission and
    webhooks see the manifest; nothing is created."""
    from test_render import IMAGE, RUN, layout_of

    spec = live_spec("127.0.0.1:5000/launch/quickstart")
    body = render_rayjob(spec, layout_of(spec), f"{RUN}-live", IMAGE)
    created = target.cluster.call(
        "create rayjobs", target.cluster.custom().create_namespaced_custom_object, GROUP,
        VERSION, NAMESPACE, RAYJOBS, body, dry_run="All", field_validation="Strict")
    assert created["metadata"]["name"] == names.rayjob_name(f"{RUN}-live")
    assert target.cluster.get_rayjob(created["metadata"]["name"]) is None


def test_a_missing_image_fails_the_submission_with_the_pull_error(target):
    from test_render import RUN, layout_of

    spec = live_spec("127.0.0.1:5000/launch/does-not-exist")
    run_id = f"{RUN}-pull"
    with pytest.raises(LaunchError) as caught:
        target.submit(spec, layout_of(spec, run_id), run_id, {},
                      image="127.0.0.1:5000/launch/does-not-exist:0000")
    message = str(caught.value)
    assert re.search(r"ErrImagePull|ImagePullBackOff|InvalidImageName", message), message
    assert "does-not-exist" in message
    assert target.cluster.get_rayjob(names.rayjob_name(run_id)) is None or \
        target.cluster.get_rayjob(names.rayjob_name(run_id))["metadata"].get("deletionTimestamp")
