"""Bench: how a checkpoint travels to S3 from a training worker, against SeaweedFS on 127.0.0.1.

  (1) upload throughput: a checkpoint-shaped folder (a ZeRO-2 layout of random, incompressible
      bytes) copied the way Ray Train stores a reported checkpoint (its pyarrow copy, through
      the job's own S3 filesystem) ÷ `aws s3 cp --recursive` of the same folder to the same
      server. Alternating, median of --repeats each. Goal ≥ 1.0.
  (2) step time while a checkpoint uploads: the job's Hugging Face Trainer (jobs.train.build,
      the tiny model) times every optimizer step; blocks of steps with nothing uploading
      alternate with blocks during which the same upload runs in a background thread, as
      Ray Train's asynchronous mode does in the worker. Median step time during ÷ without.
      Goal ≤ 1.10. The same is measured while `aws s3 cp` uploads (another process): on a
      machine whose store shares the cores, that is the floor any uploader could reach.

Needs the AWS CLI (`pip install awscli`) for the baseline. Starts its own SeaweedFS and stops
it by PID. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

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


def ray_upload(folder: Path, key: str) -> None:
    """What Ray Train does with a reported checkpoint (v2 StorageContext): its pyarrow copy
    to the run's storage filesystem, here the job's own S3 filesystem."""
    from ray.train.v2._internal.execution.storage import _pyarrow_fs_copy_files

    from jobs.storage import s3_filesystem

    _pyarrow_fs_copy_files(str(folder), f"{BUCKET}/{key}", destination_filesystem=s3_filesystem())


def aws_upload(folder: Path, key: str, endpoint: str) -> None:
    subprocess.run(["aws", "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url",
                    endpoint, str(folder), f"s3://{BUCKET}/{key}"], check=True)


def throughput(folder: Path, size: int, endpoint: str, repeats: int) -> dict:
    seconds: dict[str, list[float]] = {"ray": [], "aws": []}
    for attempt in range(repeats):
        for name, upload in (("ray", lambda key: ray_upload(folder, key)),
                             ("aws", lambda key: aws_upload(folder, key, endpoint))):
            started = time.perf_counter()
            upload(f"throughput/{name}-{attempt}")
            seconds[name].append(time.perf_counter() - started)
    ray_s, aws_s = statistics.median(seconds["ray"]), statistics.median(seconds["aws"])
    return {"checkpoint_mb": round(size / 2**20, 1), "ray_upload_mb_per_s": size / 2**20 / ray_s,
            "aws_cli_mb_per_s": size / 2**20 / aws_s, "ratio_upload_vs_aws_cli": aws_s / ray_s}


class StepTimes(TrainerCallback):
    """Every step's wall time, filed under the upload running through all
    of it, if any. Alternates `block` idle steps with one upload (as many steps as it lasts),
    taking the uploaders in turn `rounds` times, after `warmup` steps; then stops training."""

    def __init__(self, uploaders: dict, warmup: int, block: int, rounds: int):
        self.warmup, self.block = warmup, block
        self.queue = [name for _ in range(rounds) for name in uploaders]
        self.uploaders = uploaders
        self.idle: list[float] = []
        self.busy: dict[str, list[float]] = {name: [] for name in uploaders}
        self.upload: threading.Thread | None = None
        self.uploading, self.idle_left, self.uploads, self.started = "", block, 0, 0.0
        self.busy_at_begin = False

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
                self.upload = None
        elif self.idle_left:
            self.idle.append(elapsed)
            self.idle_left -= 1
        elif self.uploads < len(self.queue):
            self.uploading = self.queue[self.uploads]
            self.uploads += 1
            self.upload = threading.Thread(target=self.uploaders[self.uploading],
                                           args=(f"during/{self.uploads}",))
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
    timer = StepTimes({"ray": lambda key: ray_upload(checkpoint, key),
                       "aws": lambda key: aws_upload(checkpoint, key, endpoint)},
                      args.warmup, args.block, args.rounds)
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
            "ratio_step_during_upload_vs_idle": busy["ray"] / idle,
            "ratio_step_during_aws_cli_upload_vs_idle": busy["aws"] / idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-mb", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="uploads per uploader")
    parser.add_argument("--warmup", type=int, default=20, help="steps before timing")
    parser.add_argument("--block", type=int, default=60, help="idle steps between uploads")
    parser.add_argument("--rounds", type=int, default=3, help="uploads during training")
    args = parser.parse_args()
    tiny_model()  # built before anything is timed
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        folder = Path(tmp)
        checkpoint = folder / "checkpoint"
        size = make_checkpoint(checkpoint, args.checkpoint_mb)
        with seaweedfs(folder) as endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            os.environ.setdefault("AWS_REGION", "us-east-1")
            os.environ["LAUNCH_S3_PATH_STYLE"] = "true"
            result = throughput(checkpoint, size, endpoint, args.repeats)
            result.update(step_times(folder, checkpoint, endpoint, args))
    emit({"bench": "checkpoint_transfer", **result})


if __name__ == "__main__":
    main()
