"""R1 and R2: training workers killed by PID, and the store killed, while a run trains. The run
resumes from its checkpoints and loses nothing. (`launch stop` and `submit --resume`:
test_local_runs.py.)"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

import psutil
import pytest

from tests.support.polling import wait_for
from tests.support.project import submitted_run_id, write_quickstart

pytestmark = pytest.mark.integration

PLANNED_STEPS, SAVE_EVERY = 50, 10


def _train_workers(head) -> list[psutil.Process]:
    """The Ray Train workers of this session's head: their parent, the raylet, is in the
    head's process group (other Ray heads on the machine have their own)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if not cmdline.startswith("ray::RayTrainWorker"):
            continue
        try:
            if os.getpgid(proc.info["ppid"]) == head.pgid:
                found.append(proc)
        except ProcessLookupError:
            pass
    return found


def _metrics(s3_store, key: str) -> list[dict]:
    try:
        body = s3_store.client().get_object(Bucket=s3_store.bucket, Key=key)["Body"].read()
    except s3_store.client().exceptions.NoSuchKey:
        return []
    return [json.loads(line) for line in body.decode().splitlines() if line]


@dataclass
class Outages:
    """One S3-stored run through every outage: each rank's worker killed by PID in turn, then
    SeaweedFS killed while a checkpoint uploads and restarted on the same data 5 s later."""

    run_id: str
    prefix: str  # the run's folder in the bucket
    finished: str  # `launch logs -f` once the outages are over
    resumed_at: list[int]  # the step of each restart's checkpoint, from metrics.jsonl
    logged: list[int]  # every training step logged
    summary: dict


@pytest.fixture(scope="module")
def outages(ray_head, tiny_model, tmp_path_factory, s3_store, cli) -> Outages:
    folder = tmp_path_factory.mktemp("outages")
    job = write_quickstart(folder / "job.yaml", folder / "runs", {
        "model": {"name_or_path": str(tiny_model)},
        "target": {"address": ray_head.address},
        "training": {"max_steps": PLANNED_STEPS, "save_steps": SAVE_EVERY, "logging_steps": 5,
                     "eval_steps": None, "max_failures": 5, "batch_size_per_worker": 4},
        "storage": {"uri": f"s3://{s3_store.bucket}/resume", "endpoint_url": s3_store.endpoint},
    })
    submitted = cli("submit", job)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted_run_id(submitted)
    prefix = f"resume/quickstart/{run_id}/"

    def steps():
        return [r["step"] for r in _metrics(s3_store, prefix + "metrics.jsonl") if "loss" in r]

    def resumes():
        return [r for r in _metrics(s3_store, prefix + "metrics.jsonl")
                if r.get("event") == "resumed"]

    def registered_step() -> int:
        """The step of the latest checkpoint Ray registered (an upload alone is not enough)."""
        try:
            body = s3_store.client().get_object(
                Bucket=s3_store.bucket,
                Key=prefix + "checkpoints/checkpoint_manager_snapshot.json")["Body"].read()
        except s3_store.client().exceptions.NoSuchKey:
            return 0
        results = json.loads(body)["checkpoint_results"]
        return max((r["metrics"]["step"] for r in results), default=0)

    def checkpoint_folders() -> set[str]:
        listing = s3_store.client().list_objects_v2(
            Bucket=s3_store.bucket, Prefix=prefix + "checkpoints/checkpoint_", Delimiter="/")
        return {item["Prefix"] for item in listing.get("CommonPrefixes", [])}

    def explain():
        return cli("logs", run_id).stdout[-6000:]

    # Rank 0 once a checkpoint is kept, then rank 1 once the next is: each restart goes on from
    # the last checkpoint Ray registered.
    for checkpointed, kill_after_step, kills_so_far in ((10, 15, 0), (20, 25, 1)):
        wait_for(lambda: len(resumes()) == kills_so_far and registered_step() >= checkpointed
                  and steps() and steps()[-1] >= kill_after_step, f"step {kill_after_step}",
                  explain)
        workers = _train_workers(ray_head)
        assert len(workers) == 2, workers
        os.kill(workers[kills_so_far % 2].pid, signal.SIGKILL)
        uploaded = checkpoint_folders()  # each attempt's checkpoints get folders of their own
        wait_for(lambda: len(resumes()) == kills_so_far + 1, f"resume {kills_so_far + 1}",
                  explain)

    # The last attempt's first checkpoint (step 30) starts to upload: the store goes down.
    wait_for(lambda: checkpoint_folders() - uploaded, "a checkpoint after the last resume",
              explain)
    s3_store.stop(signal.SIGKILL)
    time.sleep(5)  # the job goes on training, logging and checkpointing into a dead store
    s3_store.start()

    finished = cli("logs", run_id, "-f", timeout=600)
    records = _metrics(s3_store, prefix + "metrics.jsonl")
    try:
        summary = json.loads(s3_store.client().get_object(
            Bucket=s3_store.bucket, Key=prefix + "summary.json")["Body"].read())
    except s3_store.client().exceptions.NoSuchKey:
        summary = {}
    return Outages(run_id, prefix, finished.stdout,
                   [r["step"] for r in records if r.get("event") == "resumed"],
                   [r["step"] for r in records if "loss" in r], summary)


@pytest.mark.long
def test_killed_workers_resume_from_the_last_checkpoint(outages):
    """Long (about 2.5 minutes, in its set-up): each kill restarts the worker group (about
    20 s of start-up) and reloads the last checkpoint; and the store's outage follows."""
    assert f"{outages.run_id}: SUCCEEDED" in outages.finished, outages.finished[-3000:]
    assert outages.summary["global_step"] == PLANNED_STEPS
    assert len(outages.resumed_at) == 2
    assert all(step > 0 and step % SAVE_EVERY == 0 for step in outages.resumed_at)
    assert outages.logged == sorted(set(outages.logged))  # no step twice: the history goes on
    assert outages.logged[-1] == PLANNED_STEPS


def test_a_store_killed_while_checkpoints_upload_is_ridden_out(outages, s3_store):
    """R2: retries carry every process through the store's outage: no third restart (the
    two are the killed workers'), and every checkpoint Ray registered, before and after
    the outage, is in storage, complete, and loads."""
    from safetensors.torch import load as load_safetensors

    assert f"{outages.run_id}: SUCCEEDED" in outages.finished, outages.finished[-3000:]
    assert len(outages.resumed_at) == 2
    client, prefix = s3_store.client(), outages.prefix

    def read(key):
        return client.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read()

    snapshot = json.loads(read(prefix + "checkpoints/checkpoint_manager_snapshot.json"))
    registered = {c["checkpoint_dir_name"] for c in snapshot["checkpoint_results"]}
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_store.bucket, Prefix=prefix + "checkpoints/") for item in page["Contents"]]
    folders = {key[len(prefix):].split("/")[1] for key in keys if key.count("/") > 5}
    assert folders == registered
    saved_steps = []
    for folder in sorted(folders):
        base = f"{prefix}checkpoints/{folder}/checkpoint/"
        saved_steps.append(json.loads(read(base + "trainer_state.json"))["global_step"])
        assert load_safetensors(read(base + "adapter_model.safetensors"))
        shards = [k for k in keys if k.startswith(base) and "optim_states" in k]
        assert len(shards) == 2, shards
    assert sorted(saved_steps) == list(range(SAVE_EVERY, PLANNED_STEPS + 1, SAVE_EVERY))
    assert outages.summary["checkpoints"] == len(folders)
