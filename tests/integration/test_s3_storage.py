"""Runs whose results live in a real S3-compatible store (SeaweedFS on 127.0.0.1).

A team submitting at once: 10 `launch submit` processes started together on the session's one
Ray head (2 CPUs), some jobs meant to succeed and some to fail. Every job must be tracked to its
own terminal state, none lost, none mixed up, each with its results in its own prefix; one of
those that succeed is then read back from the bucket alone, every result of it, and two of those
that fail are read as their users see them.

Kept cheap: the jobs share one job name (so only the run ids tell them apart), the two that
succeed train 4 steps on 1 worker, seven that fail break on their data file within seconds and
one on its model's weights as its workers load them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.support.ports import free_port
from tests.support.project import submitted_results_uri, submitted_run_id, write_quickstart

pytestmark = pytest.mark.integration

JOBS = 10
# These fail: all but BROKEN_MODEL get a data file that does not parse. The two that train (0
# and 5) cover ZeRO stages 0 and 2; each more would add a whole Ray Train run to the wait.
FAILING = {1, 2, 3, 4, 6, 7, 8, 9}
BROKEN_MODEL = 9  # its weights are not safetensors: every worker raises loading them
READ_BACK = 5  # the run whose every result test_every_result_lands_in_s3... reads
STEPS, SAVE_EVERY = 4, 2
DEADLINE_S = 600


def _s3_job(write_job, tiny_model, ray_head, s3_store, data: dict | None = None, **storage):
    return write_job({
        "model": {"name_or_path": str(tiny_model)},
        **({"data": data} if data else {}),
        "target": {"address": ray_head.address},
        "storage": {"uri": f"s3://{s3_store.bucket}/runs", "endpoint_url": s3_store.endpoint,
                    **storage},
    })


def _read(s3_store, run: dict, name: str) -> dict:
    """A JSON result of `run` (as `launch submit` printed it), read from the bucket."""
    key = f"{run['results'].removeprefix(f's3://{s3_store.bucket}/')}/{name}"
    return json.loads(s3_store.client().get_object(Bucket=s3_store.bucket, Key=key)["Body"].read())


def _status(s3_store, run: dict) -> dict:
    """`run`'s status.json, or {} while it has none."""
    try:
        return _read(s3_store, run, "status.json")
    except s3_store.client().exceptions.NoSuchKey:
        return {}


def _keys(s3_store, prefix: str) -> list[str]:
    pages = s3_store.client().get_paginator("list_objects_v2").paginate(
        Bucket=s3_store.bucket, Prefix=prefix)
    return [item["Key"][len(prefix):] for page in pages for item in page.get("Contents", [])]


@dataclass
class TenJobs:
    runs: list[dict]  # what each `launch submit -o json` printed, in job order
    states: dict[str, str]  # run id -> the state `launch list` ended with
    expected: dict[str, str]  # run id -> the state its job was made to end in
    followed: subprocess.CompletedProcess  # `launch submit --follow` of BROKEN_MODEL
    followed_s: float  # how long that took


@pytest.fixture(scope="module")
def ten_jobs(ray_head, s3_store, tiny_model, cli, tmp_path_factory) -> TenJobs:
    """Submit the ten jobs at once and track them through `launch list` to their ends."""
    folder = tmp_path_factory.mktemp("ten-jobs")
    jobs = []
    for index in range(JOBS):
        job = {
            "model": {"name_or_path": str(tiny_model)},
            "target": {"address": ray_head.address},
            "storage": {"endpoint_url": s3_store.endpoint},
            # The seed marks which job file a run came from.
            "training": {"max_steps": STEPS, "logging_steps": 1, "eval_steps": None,
                         "save_steps": SAVE_EVERY, "seed": 1000 + index,
                         "batch_size_per_worker": 4},
            "scale": {"num_workers": 1, "deepspeed": {"stage": 2 if index % 2 else 0}},
        }
        if index == BROKEN_MODEL:
            model = folder / "broken-model"
            shutil.copytree(tiny_model, model)
            (model / "model.safetensors").write_bytes(b"not safetensors")
            job["model"]["name_or_path"] = str(model)
        elif index in FAILING:
            bad = folder / f"bad-{index}.jsonl"  # the first row is fine; the rest is not
            bad.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{broken\n")
            job["data"] = {"path": str(bad)}
        jobs.append(write_quickstart(folder / f"job-{index}.yaml",
                                     f"s3://{s3_store.bucket}/concurrency", job))

    def submit(index: int) -> tuple[subprocess.CompletedProcess, float]:
        started = time.time()
        if index == BROKEN_MODEL:  # followed to its end as a user at a terminal would
            return cli("submit", jobs[index], "--follow", timeout=DEADLINE_S), \
                time.time() - started
        return cli("submit", jobs[index], "-o", "json", timeout=300), time.time() - started

    with ThreadPoolExecutor(JOBS) as pool:  # 10 CLI processes at once
        submitted = list(pool.map(submit, range(JOBS)))
    followed, followed_s = submitted[BROKEN_MODEL]
    runs = []
    for index, (result, _) in enumerate(submitted):
        if index == BROKEN_MODEL:
            runs.append({"run_id": submitted_run_id(result),
                         "results": submitted_results_uri(result)})
        else:
            assert result.returncode == 0, f"job {index}: {result.stderr}"
            runs.append(json.loads(result.stdout))
    run_ids = [run["run_id"] for run in runs]

    # Wait on the runs' status.json in the bucket first: a `launch list` every few seconds
    # all along would take much of a core of its own. Then `launch list` as a user reads it
    # (a driver that wrote its status may take a moment more to exit).
    ended = ("SUCCEEDED", "FAILED", "STOPPED")
    deadline, states = time.time() + DEADLINE_S, {}
    while time.time() < deadline and not all(
            _status(s3_store, run).get("state") in ended for run in runs):
        time.sleep(2)
    while time.time() < deadline:
        listed = cli("list", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        states = {job["run_id"]: job["state"] for job in json.loads(listed.stdout)
                  if job["run_id"] in run_ids}
        if set(states) == set(run_ids) and all(state in ended for state in states.values()):
            break
        time.sleep(2)
    expected = {run_id: "FAILED" if index in FAILING else "SUCCEEDED"
                for index, run_id in enumerate(run_ids)}
    return TenJobs(runs, states, expected, followed, followed_s)


@pytest.mark.long
def test_ten_jobs_at_once_each_end_in_their_own_state(ten_jobs, s3_store, cli):
    """Long (about 2 minutes on 2 cores, in its set-up): ten drivers and their trainers queue
    for two CPUs, which is the contention under test; each job is already as small as a job
    gets."""
    runs, expected = ten_jobs.runs, ten_jobs.expected
    run_ids = [run["run_id"] for run in runs]
    assert len(set(run_ids)) == JOBS, run_ids
    assert len({run["results"] for run in runs}) == JOBS
    assert set(ten_jobs.states) == set(run_ids), "a submitted job is missing from the head"
    assert ten_jobs.states == expected

    for index, run in enumerate(runs):
        shown = json.loads(cli("status", run["run_id"], "-o", "json").stdout)
        assert (shown["run_id"], shown["state"]) == (run["run_id"], expected[run["run_id"]])
        assert run["results"] == f"s3://{s3_store.bucket}/concurrency/quickstart/{run['run_id']}"
        assert _read(s3_store, run, "spec.json")["training"]["seed"] == 1000 + index  # its own
        status = _read(s3_store, run, "status.json")
        assert status["run_id"] == run["run_id"] and status["state"] == expected[run["run_id"]]
        if index == BROKEN_MODEL:
            assert "bad-" not in status["error"]
        elif index in FAILING:
            assert f"bad-{index}.jsonl" in status["error"]  # its own data file, no other
        else:
            summary = _read(s3_store, run, "summary.json")
            assert summary["global_step"] == STEPS and summary["num_workers"] == 1
            assert summary["zero_stage"] == (2 if index % 2 else 0)
            shown = json.loads(cli("results", run["run_id"], "-o", "json").stdout)
            assert (shown["run_id"], shown["state"]) == (run["run_id"], "SUCCEEDED")
            assert shown["summary"] == summary and "model" in shown["artifacts"]

    # Nothing else was written under the shared root: one prefix per run, no strays (but the
    # empty folder markers pyarrow writes).
    keys = [item["Key"] for page in s3_store.client().get_paginator("list_objects_v2").paginate(
        Bucket=s3_store.bucket, Prefix="concurrency/") for item in page.get("Contents", [])
        if not item["Key"].endswith("/")]
    assert {"/".join(key.split("/")[:3]) for key in keys} == {
        f"concurrency/quickstart/{run_id}" for run_id in run_ids}


def test_a_run_that_cannot_read_its_data_fails_and_its_logs_say_why(ten_jobs, cli):
    """One of the failing ten, as its user sees it afterwards: `launch logs` and the JSON
    document of `logs --follow -o json` name the data file the job could not read."""
    index = min(FAILING)
    run_id = ten_jobs.runs[index]["run_id"]
    logs = cli("logs", run_id)
    assert logs.returncode == 0
    assert "cannot read data file" in logs.stdout and f"bad-{index}.jsonl" in logs.stdout
    document = json.loads(cli("logs", run_id, "--follow", "-o", "json").stdout)
    assert document["run_id"] == run_id and document["state"] == "FAILED"
    assert f"bad-{index}.jsonl" in document["log"]


def test_a_model_the_workers_cannot_load_fails_at_once_with_its_cause(ten_jobs, s3_store, cli):
    """The weights are broken: every worker raises while loading them. No retry can fix that,
    so the run ends FAILED on the first attempt (training.max_failures is 3), and the worker's
    own exception is the one line in status.json, `launch status` and the end of --follow."""
    result, run = ten_jobs.followed, ten_jobs.runs[BROKEN_MODEL]
    run_id = run["run_id"]
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr
    cause = _read(s3_store, run, "status.json")["error"]
    print(f"\nbroken weights: FAILED after {ten_jobs.followed_s:.0f} s: {cause}")
    assert "WorkerGroupError" not in cause and "\n" not in cause
    assert cause.startswith(("SafetensorError: ", "OSError: ")), cause
    assert result.stderr.strip().splitlines()[-1] == f"error: run {run_id} ended FAILED: {cause}"
    assert f"  {cause}" in cli("status", run_id).stdout
    log = cli("logs", run_id).stdout
    assert "restarting the workers" not in log and "Traceback" in log  # the whole story


def test_every_result_lands_in_s3_and_reads_back_without_ray(ten_jobs, ray_head, s3_store, cli,
                                                            tmp_path):
    """One of the ten runs, read back from the bucket alone once the Ray head forgot it."""
    run = ten_jobs.runs[READ_BACK]
    run_id, prefix = run["run_id"], f"concurrency/quickstart/{run['run_id']}/"
    assert run["results"] == f"s3://{s3_store.bucket}/{prefix.rstrip('/')}"

    keys = _keys(s3_store, prefix)
    for name in ("spec.json", "status.json", "metrics.jsonl", "summary.json", "logs/driver.log",
                 "model/adapter_model.safetensors", "model/adapter_config.json",
                 "model/tokenizer.json", "plots/loss.png"):
        assert name in keys, f"{name} missing from {keys}"
    checkpoints = {key.split("/")[1] for key in keys
                   if key.startswith("checkpoints/checkpoint_") and key.count("/") >= 2}
    assert len(checkpoints) == STEPS // SAVE_EVERY

    client = s3_store.client()
    text = {name: client.get_object(Bucket=s3_store.bucket, Key=prefix + name)["Body"].read()
            .decode() for name in ("spec.json", "status.json", "logs/driver.log")}
    assert json.loads(text["status.json"])["state"] == "SUCCEEDED"
    assert "[launch] SUCCEEDED" in text["logs/driver.log"]
    assert f"[launch] step {STEPS}/{STEPS}" in text["logs/driver.log"]  # workers' lines too
    from ray.job_submission import JobSubmissionClient

    ray_client = JobSubmissionClient(ray_head.address, headers={
        "Authorization": f"Bearer {open(ray_head.token_path).read().strip()}"})
    job_info = json.dumps(ray_client.get_job_info(run_id).runtime_env)
    for where, content in (*text.items(), ("the Ray job's runtime env", job_info)):
        assert s3_store.secret_key not in content, f"the secret key leaked into {where}"
        assert s3_store.access_key not in content, f"the access key leaked into {where}"

    # The Ray head forgets the job: logs and results still come from storage.
    ray_client.delete_job(run_id)
    logs = cli("logs", run_id)
    assert logs.returncode == 0 and "[launch] SUCCEEDED" in logs.stdout
    shown = cli("results", run_id, "--download", tmp_path / "got")
    assert shown.returncode == 0, shown.stderr
    assert "SUCCEEDED" in shown.stdout and "eval_loss_after" in shown.stdout
    got = tmp_path / "got"
    assert (got / "model" / "adapter_model.safetensors").stat().st_size > 0
    assert (got / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((got / "summary.json").read_text())["global_step"] == STEPS
    assert not (got / "checkpoints").exists()

    listed = cli("list", "--storage", f"s3://{s3_store.bucket}/concurrency", "--endpoint-url",
                 s3_store.endpoint)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(run_id))
    assert "SUCCEEDED" in row and f"s3://{s3_store.bucket}/{prefix.rstrip('/')}" in row


@pytest.mark.parametrize("case", ["missing-bucket", "wrong-secret", "no-credentials",
                                  "unreachable-endpoint", "missing-data"])
def test_storage_problems_fail_at_submit_before_any_ray_job(
        case, ray_head, tiny_model, write_job, s3_store, cli):
    storage, env, data = {}, {}, None
    if case == "missing-data":
        data = {"path": f"s3://{s3_store.bucket}/datasets/missing.jsonl"}
        expected = (f"data.path s3://{s3_store.bucket}/datasets/missing.jsonl: no such object "
                    f"or folder at {s3_store.endpoint}")
    elif case == "missing-bucket":
        storage = {"uri": "s3://no-such-bucket/runs"}
        expected = "bucket `no-such-bucket` does not exist"
    elif case == "wrong-secret":
        env, expected = {"AWS_SECRET_ACCESS_KEY": "wrong"}, "refused the S3 credentials"
    elif case == "no-credentials":
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
        expected = "no S3 credentials"
    else:
        storage = {"endpoint_url": f"http://127.0.0.1:{free_port()}"}
        expected = "cannot reach the S3 endpoint"
    job = _s3_job(write_job, tiny_model, ray_head, s3_store, data, **storage)
    jobs_before = cli("list").stdout.count("\n")
    objects_before = _keys(s3_store, "runs/")

    result = cli("submit", job, env=env, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert "submitted" not in result.stdout
    assert cli("list").stdout.count("\n") == jobs_before  # no Ray job was created
    assert _keys(s3_store, "runs/") == objects_before  # and nothing half-written
