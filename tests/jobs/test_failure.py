"""A failed run's one line and its retry decision, from Ray Train's real exception classes as a
worker's failure reaches the driver (built here: no Ray cluster is needed to make them)."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError
from ray.train import ControllerError, WorkerGroupError

from jobs.failure import one_line, retryable, root_cause
from jobs.ray_internals import UserExceptionWithTraceback, WorkerHealthCheckFailedError

HUB = OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't "
              "find them in the cached files.\nCheck your internet connection.")


def raised(err: BaseException) -> UserExceptionWithTraceback:
    """An exception the job's code raised in a worker, as Ray Train returns it."""
    return UserExceptionWithTraceback(err, f"Traceback (most recent call last):\n  ...\n{err!r}")


def died() -> WorkerHealthCheckFailedError:
    return WorkerHealthCheckFailedError("the worker's health check failed", ActorDiedError())


def test_the_line_names_the_workers_own_exception_not_rays_wrappers():
    err = WorkerGroupError("rank 0: ...\nrank 1: ...", {1: raised(KeyError("labels")),
                                                          0: raised(HUB)})
    line = one_line(err)
    assert line.startswith("OSError: We couldn't connect to 'https://huggingface.co'")
    assert "\n" not in line and "Check your internet connection." in line
    assert line.endswith("give model.name_or_path as a saved model folder the cluster can "
                         "read")
    assert root_cause(ControllerError(ValueError("bad value"))).args == ("bad value",)


def test_a_dead_worker_is_the_cause_and_worth_a_retry():
    """When one rank dies the others' collectives break: the death is what to report, and a
    retry from the last checkpoint may get past it."""
    broken = raised(RuntimeError("Connection closed by peer"))
    err = WorkerGroupError("...", {0: broken, 1: died()})
    assert isinstance(root_cause(err), WorkerHealthCheckFailedError)
    assert retryable(err)


@pytest.mark.parametrize("cause", [HUB, RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                                                     "DefaultCPUAllocator: can't allocate memory"),
                                   ValueError("Target modules {'no_such_module'} not found")])
def test_the_jobs_own_exceptions_are_not_retried(cause):
    err = WorkerGroupError("...", {0: raised(cause), 1: raised(cause)})
    assert not retryable(err)
    assert one_line(err).startswith(f"{type(cause).__name__}: ")


def test_out_of_memory_says_what_to_lower():
    err = WorkerGroupError("...", {0: raised(RuntimeError(
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes"))})
    assert "lower training.batch_size_per_worker or data.max_length" in one_line(err)
