"""Pod and RayJob objects as the API returns them (recorded in samples/, see its README) →
why a run is stuck, and the run's state."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from launcher.kube.status import job_info, pod_problem
from tests.support.kube_checks import (
    SAMPLES,
    kubernetes_validate_strict,
    rayjob_validator,
    schema_errors,
)

__all__ = ["rayjob_validator"]  # the fixture, imported for pytest
GRACE_S = 180


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def created(pod: dict) -> datetime:
    return datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def problem_after(name: str, seconds: float):
    case = sample(f"pod-{name}")
    now = created(case["pod"]) + timedelta(seconds=seconds)
    return pod_problem(case["pod"], case["events"]["items"], now, GRACE_S)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("pod-*.json")), ids=lambda p: p.stem)
def test_pod_samples_are_valid_api_objects(path):
    case = json.loads(path.read_text())
    kubernetes_validate_strict(case["pod"])
    kubernetes_validate_strict(case["events"])


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("rayjob-*.json")), ids=lambda p: p.stem)
def test_rayjob_samples_match_the_crd(path, rayjob_validator):
    assert schema_errors(rayjob_validator, json.loads(path.read_text())) == []


@pytest.mark.parametrize("name,reason,words", [
    ("image-pull-backoff", "ImagePullBackOff",
     'Failed to pull image "127.0.0.1:5000/launch/quickstart:3f9c2a1b7d4e": rpc error: '
     "code = NotFound"),
    ("err-image-pull", "ErrImagePull", "Failed to pull image"),
    ("crash-loop", "CrashLoopBackOff", "exited with code 1 (Error), restarted 4 times"),
    ("unschedulable", "Unschedulable", "0/1 nodes are available: 1 Insufficient nvidia.com/gpu"),
])
def test_stuck_pods_fail_with_the_events_message_after_the_grace_period(name, reason, words):
    assert problem_after(name, GRACE_S - 30) is None  # still within the grace period
    problem = problem_after(name, GRACE_S + 30)
    assert problem is not None and problem.reason == reason
    assert words in problem.message, problem.message
    assert str(problem).startswith(f"pod {problem.pod}: {reason}: ")
    assert "\n" not in str(problem)


def test_the_bare_error_events_never_hide_the_reason():
    """The kubelet's last event says only "Error: ImagePullBackOff"; the message is the
    pull failure before it."""
    problem = problem_after("image-pull-backoff", 3600)
    assert problem.message != "Error: ImagePullBackOff" and "not found" in problem.message


@pytest.mark.parametrize("name", ["running", "container-creating"])
def test_healthy_or_starting_pods_are_never_a_problem(name):
    assert problem_after(name, 24 * 3600) is None


def test_without_events_the_pods_own_message_is_used():
    case = sample("pod-unschedulable")
    now = created(case["pod"]) + timedelta(hours=1)
    problem = pod_problem(case["pod"], [], now, GRACE_S)
    assert "Insufficient nvidia.com/gpu" in problem.message


@pytest.mark.parametrize("name,state,words", [
    ("initializing", "PENDING", ""),
    ("running", "RUNNING", ""),
    ("succeeded", "SUCCEEDED", ""),
    ("job-failed", "FAILED", "no column `prompt`"),
    ("deadline-exceeded", "FAILED", "passed the activeDeadlineSeconds"),
    ("suspended", "STOPPED", ""),
])
def test_rayjob_status_gives_the_runs_state(name, state, words):
    info = job_info(sample(f"rayjob-{name}"))
    assert info.state == state and words in info.message
    assert info.run_id == "quickstart-20261122-101010-ab12"
    assert info.run_dir == "s3://launch-runs/finetunes/quickstart/quickstart-20261122-101010-ab12"
    assert info.start_time is not None


def test_finished_rayjobs_have_an_end_time():
    info = job_info(sample("rayjob-succeeded"))
    assert info.end_time - info.start_time == pytest.approx(575)
