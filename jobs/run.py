"""The only way into a job: `python -m jobs.run --spec <run folder>/spec.json`.

Reads the resolved spec (a local path or an s3:// URI), trains on the Ray cluster this process
was submitted to, and leaves every result under the run's folder (see launcher.contract).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import traceback

from jobs.imports import importing
from jobs.storage import RunStorage
from launcher.contract import SPEC, RunLayout, RunSummary, log_line
from launcher.spec.models import JobSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.run", description=__doc__)
    parser.add_argument("--spec", required=True, help="URI of the run's resolved spec.json")
    args = parser.parse_args(argv)

    storage = RunStorage(RunLayout.from_spec_uri(args.spec))
    text = storage.read_text(SPEC)
    if text is None:
        print(log_line(f"FAILED: no spec at {args.spec}"), file=sys.stderr)
        return 2
    spec = JobSpec.model_validate_json(text)

    from jobs.driver_log import driver_log

    # `ray job stop` sends SIGTERM first: end through the finally blocks, so the log is
    # uploaded and status.json says STOPPED before the SIGKILL that follows.
    signal.signal(signal.SIGTERM, _stop)
    with driver_log(storage):
        return _run_and_record(spec, storage)


class _Stopped(BaseException):
    """SIGTERM from `ray job stop`; a BaseException so no `except Exception` swallows it."""


_stopping = threading.Event()  # set by the SIGTERM, whatever a Ray call turns _Stopped into


def _stop(signum, frame):
    _stopping.set()
    # Ray Train takes Ctrl-C in the driver as "abort the run": its workers end first, and no
    # step trains after `launch stop` returns.
    abort = signal.getsignal(signal.SIGINT)
    if callable(abort) and abort is not signal.default_int_handler:
        with contextlib.suppress(Exception, SystemExit):  # a run already over exits this way
            abort(signal.SIGINT, frame)
    raise _Stopped()


def _run_and_record(spec: JobSpec, storage: RunStorage) -> int:
    started = time.time()
    storage.write_status("RUNNING", started_at=started)
    try:
        summary = run(spec, storage)
    except _Stopped:
        return _record_stopped(storage)
    except Exception as err:  # report every failure in status.json, then fail the Ray job
        if _stopping.is_set():  # raised inside ray.get, _Stopped comes back as a SystemError
            return _record_stopped(storage)
        from jobs.failure import one_line

        traceback.print_exc()  # the whole story stays in logs/driver.log
        message = one_line(err)
        print(log_line(f"FAILED: {message}"), file=sys.stderr, flush=True)
        storage.write_status("FAILED", error=message, ended_at=time.time())
        return 1
    from jobs.export import write_summary

    write_summary(storage, RunSummary.model_validate(
        {**summary, "wall_time_s": time.time() - started}))
    storage.write_status("SUCCEEDED", ended_at=time.time())
    print(log_line(f"SUCCEEDED: results in {storage.layout.root}"), flush=True)
    return 0


def _record_stopped(storage: RunStorage) -> int:
    print(log_line("STOPPED"), flush=True)
    storage.write_status("STOPPED", ended_at=time.time())
    return 143


def run(spec: JobSpec, storage: RunStorage) -> dict:
    # Check the model's source and read the data first, with only what that needs: a hub
    # that does not answer or a bad file fails the job in seconds with a clear reason, before
    # Ray Train is imported or any worker starts.
    from jobs.data import load_splits
    from jobs.model import check_model_source

    check_model_source(spec.model)
    report = load_splits(spec.data, spec.task, spec.training.seed).report
    if spec.data.messages_field:  # and chat rows need a chat template that renders
        from jobs.model import load_tokenizer

        load_tokenizer(spec.model, spec.data)
    print(log_line(f"data: {report['rows']} rows; dropped by cleaning: {report['dropped']}"),
          flush=True)

    with importing():
        import ray
        import ray.train.torch  # noqa: F401  (what train() and a sweep's trials run)

        from jobs.export import plot_eval_metrics, plot_losses, read_metrics
        from jobs.train import train
    ray.init()
    # Again: ray.init put Ray's own SIGTERM handler in place, which ends the driver at once,
    # before it records anything.
    signal.signal(signal.SIGTERM, _stop)
    if spec.tune is not None:
        from jobs.tune import sweep

        # A sweep restores itself (Tuner.restore) when the run's tune/ folder holds one: the
        # `launch submit --resume` of a sweep whose driver died lands here again.
        return sweep(spec, storage)
    result = train(spec, storage)
    records = read_metrics(storage)
    plot_losses(storage, records)
    plot_eval_metrics(storage, records)
    train_losses = [r["loss"] for r in records if "loss" in r]
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return {
        **result,
        "state": "SUCCEEDED",
        "final_train_loss": train_losses[-1] if train_losses else None,
        "tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
        "num_workers": spec.scale.num_workers,
        "zero_stage": spec.scale.deepspeed.stage,
    }


if __name__ == "__main__":
    code = main()
    # Everything the run keeps is stored by now. Ray's and torch's teardown at interpreter exit
    # takes about 2 s more before Ray sees the job end: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
