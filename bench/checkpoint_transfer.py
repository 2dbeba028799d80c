"""Bench: how a checkpoint travels to S3 from a training worker, against SeaweedFS on 127.0.0.1.

Three uploaders of the same checkpoint-shaped folder (a ZeRO-2 layout of random,
incompressible bytes): `launch`, the job's upload (jobs.checkpoint_upload: the upload thread at
the lowest CPU priority, every byte written from it); `ray`, Ray Train's own upload of a
reported checkpoint (its pyarrow copy, S3 writes in pyarrow's I/O threads); `aws`, `aws s3 cp
--recursive`. All through the job's own S3 settings to the same server.

  (1) upload throughput: launch ÷ aws. One untimed upload each first (a fresh store allocates
      its volumes on the first write, whoever makes it), then alternating, median of --repeats
      each. Goal ≥ 1.0. Also the CPU seconds per GiB each upload costs its client and the store.
  (2) step time while a checkpoint uploads: the job's Hugging Face Trainer (jobs.train.build,
      the tiny model) times every optimizer step; blocks of steps with nothing uploading
      alternate with blocks during which an upload runs in a background thread, as Ray Train's
      asynchronous mode runs it in the worker (the AWS CLI: in another process), each uploader
      in turn. Median step time during a launch upload ÷ without. Goal ≤ 1.10.

--layout says where the store runs. `separate` (the default) pins it to the last CPU and the
training, with its uploads, to the others, as a store on other hosts would leave the training
node's CPUs to training. `shared` lets them all compete: the store on the training node itself,
where most of an upload's CPU is the store's (see the CPU figures) and slows training whoever
uploads.

Needs the AWS CLI (`pip install awscli`) for the baseline. Starts its own SeaweedFS and stops
it by PID. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch
from transformers import TrainerCallback

from common import BUCKET, emit, seaweedfs, tiny_model, write_job

# A ZeRO-2 checkpoint of 2 ranks: the model's weights once, the optimizer state (fp32 master
# weights + two Adam moments) sharded over the ranks, and the Trainer's small files.
SHARES = {"model.safetensors": 1 / 7, "global_step/mp_rank_00_model_states.pt": 1 / 7,
          "global_step/zero_pp_rank_0_mp_rank_00_optim_states.pt": 2.5 / 7,
          "global_step/zero_pp_rank_1_mp_rank_00_optim_states.pt": 2.5 / 7}
SMALL = ("trainer_state.json", "training_args.bin", "rng_state_0.pth", "rng_state_1.pth",
         "scheduler.pt", "config.json")


def make_checkpoint(folder: Path, megabytes: int) -> int:
    """Write the checkpoint-shaped folder; its size in bytes."""
    for name, share in SHARES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            left = int(megabytes * share * 2**20)
            while left:
                chunk = min(left, 16 * 2**20)
                handle.write(os.urandom(chunk))
                left -= chunk
    for name in SMALL:
        (folder / name).write_bytes(os.urandom(4096))
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def launch_upload(folder: Path, key: str) -> None:
    from jobs.checkpoint_upload import copy_at_low_priority
    from jobs.storage import s3_filesystem

    copy_at_low_priority(str(folder), f"{BUCKET}/{key}", s3_filesystem())


def ray_upload(folder: Path, key: str) -> None:
    """What Ray Train does with a reported checkpoint (v2 StorageContext): its pyarrow copy
    to the run's storage filesystem, here the job's own S3 filesystem."""
    from ray.train.v2._internal.execution.storage import _pyarrow_fs_copy_files

    from jobs.storage import s3_filesystem

    _pyarrow_fs_copy_files(str(folder), f"{BUCKET}/{key}", destination_filesystem=s3_filesystem())


def aws_upload(folder: Path, key: str, endpoint: str) -> None:
    subprocess.run(["aws", "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url",
                    endpoint, str(folder), f"s3://{BUCKET}/{key}"], check=True)


def in_thread(upload, key: str) -> None:
    thread = threading.Thread(target=upload, args=(key,))
    thread.start()
    thread.join()


def cpu_seconds(store) -> tuple[float, float]:
    """CPU time so far of this process with its finished children (the clients), and of the
    store."""
    own, children = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    times = store.cpu_times()
    return (own.user + own.system + children.ru_utime + children.ru_stime,
            times.user + times.system + times.children_user + times.children_system)


def uploaders(folder: Path, endpoint: str) -> dict:
    return {"launch": lambda key: launch_upload(folder, key),
            "ray": lambda key: ray_upload(folder, key),
            "aws": lambda key: aws_upload(folder, key, endpoint)}


def throughput(folder: Path, size: int, endpoint: str, repeats: int, store) -> dict:
    """Each uploader in a thread of its own, as in a training worker (launch's nices it)."""
    runs = uploaders(folder, endpoint)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {f"{name}_{side}": [] for name in runs
                                   for side in ("client", "store")}
    for name, upload in runs.items():
        in_thread(upload, f"throughput/{name}-warmup")
    for attempt in range(repeats):
        for name, upload in runs.items():
            client, served = cpu_seconds(store)
            started = time.perf_counter()
            in_thread(upload, f"throughput/{name}-{attempt}")
            seconds[name].append(time.perf_counter() - started)
            client_after, served_after = cpu_seconds(store)
            cpu[f"{name}_client"].append(client_after - client)
            cpu[f"{name}_store"].append(served_after - served)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    gib = size / 2**30
    return {"checkpoint_mb": round(size / 2**20, 1),
            **{f"{name}_upload_mb_per_s": size / 2**20 / value for name, value in median.items()},
            "ratio_upload_vs_aws_cli": median["aws"] / median["launch"],
            **{f"cpu_s_per_gib_{key}": statistics.median(values) / gib
               for key, values in cpu.items()}}


class StepTimes(TrainerCallback):
    """Every step's wall time, filed under the upload running through all of it, if any.
    Alternates `block` idle steps with one upload (as many steps as it lasts),
    taking the uploaders in turn `rounds` times, after `warmup` steps; then stops training."""

    def __init__(self, uploaders: dict, warmup: int, block: int, rounds: int):
        self.warmup, self.block = warmup, block
        self.queue = [name for _ in range(rounds) for name in uploaders]
        self.uploaders = uploaders
        self.idle: list[float] = []
        self.busy: dict[str, list[float]] = {name: [] for name in uploaders}
        self.lasted: dict[str, list[float]] = {name: [] for name in uploaders}  # uploads' wall s
        self.upload: threading.Thread | None = None
        self.uploading, self.idle_left, self.uploads, self.started = "", block, 0, 0.0
        self.busy_at_begin, self.upload_started = False, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        self.busy_at_begin = self.upload is not None and self.upload.is_alive()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.perf_counter() - self.started
        if state.global_step <= self.warmup:
            return control
        if self.upload is not None:
            if self.busy_at_begin and self.upload.is_alive():
                self.busy[self.uploading].append(elapsed)
            if not self.upload.is_alive():
                self.lasted[self.uploading].append(time.perf_counter() - self.upload_started)
                self.upload = None
        elif self.idle_left:
            self.idle.append(elapsed)
            self.idle_left -= 1
        elif self.uploads < len(self.queue):
            self.uploading = self.queue[self.uploads]
            self.uploads += 1
            self.upload = threading.Thread(target=self.uploaders[self.uploading],
                                           args=(f"during/{self.uploads}",))
            self.upload_started = time.perf_counter()
            self.upload.start()
            self.idle_left = self.block
        else:
            control.should_training_stop = True
        return control


def step_times(folder: Path, checkpoint: Path, endpoint: str, args) -> dict:
    from jobs.train import build
    from launcher.spec.load import load_spec

    job = write_job(folder, "steps", {"training": {
        "max_steps": 100_000, "logging_steps": 100_000, "eval_steps": None,
        "save_steps": 100_000, "batch_size_per_worker": 8}})
    timer = StepTimes(uploaders(checkpoint, endpoint), args.warmup, args.block, args.rounds)
    trainer = build(load_spec(job), folder / "trainer", eval_on_start=False,
                    callbacks=[timer], deepspeed=False).trainer
    trainer.train()
    if timer.upload is not None:
        timer.upload.join()
    counts = {name: len(times) for name, times in timer.busy.items()}
    if min(counts.values()) < 3:
        raise SystemExit(f"too few steps ran during the uploads ({counts}): raise "
                         "--checkpoint-mb or --rounds")
    idle = statistics.median(timer.idle)
    busy = {name: statistics.median(times) for name, times in timer.busy.items()}
    return {"step_ms_idle": idle * 1000, "steps_idle": len(timer.idle),
            **{f"step_ms_during_{name}_upload": value * 1000 for name, value in busy.items()},
            **{f"steps_during_{name}_upload": len(times) for name, times in timer.busy.items()},
            **{f"{name}_upload_s_while_training": statistics.median(times)
               for name, times in timer.lasted.items() if times},
            "ratio_step_during_upload_vs_idle": busy["launch"] / idle,
            **{f"ratio_step_during_{name}_upload_vs_idle": busy[name] / idle
               for name in ("ray", "aws")}}


def split_cpus(layout: str) -> tuple[set[int], set[int] | None]:
    """The CPUs for training (and this process's uploads), and those for the store (None: all)."""
    cpus = sorted(os.sched_getaffinity(0))
    if layout == "shared":
        return set(cpus), None
    if len(cpus) < 2:
        raise SystemExit("--layout separate needs 2 CPUs or more; use --layout shared")
    return set(cpus[:-1]), {cpus[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=("separate", "shared"), default="separate",
                        help="the store on a CPU of its own, or on the training's CPUs")
    parser.add_argument("--checkpoint-mb", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="uploads per uploader")
    parser.add_argument("--warmup", type=int, default=20, help="steps before timing")
    parser.add_argument("--block", type=int, default=60, help="idle steps between uploads")
    parser.add_argument("--rounds", type=int, default=3, help="uploads during training")
    args = parser.parse_args()
    training_cpus, store_cpus = split_cpus(args.layout)
    tiny_model()  # built before anything is timed
    # Before torch starts its threads, which take this thread's CPUs and count.
    os.sched_setaffinity(0, training_cpus)
    torch.set_num_threads(len(training_cpus))
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        folder = Path(tmp)
        checkpoint = folder / "checkpoint"
        size = make_checkpoint(checkpoint, args.checkpoint_mb)
        with seaweedfs(folder, cpus=store_cpus) as endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            os.environ.setdefault("AWS_REGION", "us-east-1")
            os.environ["LAUNCH_S3_PATH_STYLE"] = "true"
            store = next(child for child in psutil.Process().children() if child.name() == "weed")
            result = throughput(checkpoint, size, endpoint, args.repeats, store)
            result.update(step_times(folder, checkpoint, endpoint, args))
    emit({"bench": "checkpoint_transfer", "layout": args.layout,
          "training_cpus": len(training_cpus), **result})


if __name__ == "__main__":
    main()
