"""Why a run failed, in one line, and whether trying again can help.

Ray wraps a worker's exception twice (Ray Train's WorkerGroupError of every rank's failure,
each a UserExceptionWithTraceback or a failed health check): the user needs the exception the
first failing worker raised, with what to do where launch knows. A worker that died (killed,
its node lost) is worth a retry from the last checkpoint; an exception the job's own code
raised (a model that cannot be loaded, bad data, out of memory) comes back the same on every
retry, so the run ends at once.
"""

from __future__ import annotations

# What to do, by words in the failure's line (the first that matches).
_HINTS = (
    (("couldn't connect to 'https://huggingface.co'", "is not a valid model identifier",
      "Repository Not Found"),
     "the model cannot be fetched from the Hugging Face hub where the job runs: give "
     "model.name_or_path as a saved model folder the cluster can read"),
    (("out of memory", "can't allocate memory", "OutOfMemoryError"),
     "lower training.batch_size_per_worker or data.max_length, or spread the model with "
     "scale.deepspeed.stage 3 and offload"),
)


def root_cause(err: BaseException) -> BaseException:
    """The exception the job's code raised (or the death of a worker), without Ray's wrappers.

    A dead worker outranks the other ranks' errors: they are its consequences (their
    collectives broke). Otherwise the lowest rank's failure."""
    failures = getattr(err, "worker_failures", None)  # ray.train.WorkerGroupError
    if failures:
        deaths = [rank for rank, failure in failures.items() if _is_death(failure)]
        return root_cause(failures[min(deaths or failures)])
    from jobs.ray_internals import UserExceptionWithTraceback

    if isinstance(err, UserExceptionWithTraceback):
        return root_cause(err.__reduce__()[1][0])  # (the exception, its traceback as text)
    for wrapped in ("controller_failure", "cause"):  # ray.train.ControllerError, RayTaskError
        inner = getattr(err, wrapped, None)
        if isinstance(inner, BaseException):
            return root_cause(inner)
    return err


def one_line(err: BaseException) -> str:
    """`Type: message` of the root cause, on one line, with what to do where launch knows."""
    cause = root_cause(err)
    text = " ".join(str(cause).split())
    line = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    if len(line) > 400:
        line = line[:397] + "..."
    for words, hint in _HINTS:
        if any(word in line for word in words):
            return f"{line} -> {hint}"
    return line


def retryable(err: BaseException) -> bool:
    """Whether a Ray Train failure may go away on a retry: some worker died or hung, rather
    than the job's own code raising."""
    failures = getattr(err, "worker_failures", None)
    return bool(failures) and any(_is_death(failure) for failure in failures.values())


def _is_death(failure: BaseException) -> bool:
    """A worker process that died or stopped answering (Ray Train's health check failed or
    timed out), as opposed to an exception raised by the job's code in it."""
    from ray.exceptions import RayActorError

    from jobs.ray_internals import WorkerHealthCheckFailedError, WorkerHealthCheckTimeoutError

    return isinstance(failure, (WorkerHealthCheckFailedError, WorkerHealthCheckTimeoutError,
                                RayActorError))
