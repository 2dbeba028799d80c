"""A team submitting at once: 10 `launch submit` processes started together on the session's
one Ray head (2 CPUs), some jobs meant to succeed and some to fail. Every job must be tracked
to its own terminal state, none lost, none mixed up, each with its results in its own prefix.

Kept cheap: the jobs share one job name (so only the run ids tell them apart), the two that
succeed train 2 steps on 1 worker, and the eight that fail break on their data file within
seconds.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

JOBS = 10
# These get a data file that does not parse. The two that train (0 and 5) cover ZeRO
# stages 0 and 2; each more would add a whole Ray Train run to the wait.
FAILING = {1, 2, 3, 4, 6, 7, 8, 9}
DEADLINE_S = 600


@pytest.mark.long
def test_ten_jobs_at_once_each_end_in_their_own_state(ray_head, s3_store, tiny_model,
                                                      write_job, cli, tmp_path):
    """Long (about 3 minutes on 2 cores): ten drivers and their trainers queue for two CPUs,
    which is the contention under test; each job is already as small as a job gets."""
    root = f"s3://{s3_store.bucket}/concurrency"
    jobs = []
    for index in range(JOBS):
        overrides = {
            "model": {"name_or_path": str(tiny_model)},
            "target": {"address": ray_head.address},
            "storage": {"uri": root, "endpoint_url": s3_store.endpoint},
            # The seed marks which job file a run came from.
            "training": {"max_steps": 2, "logging_steps": 1, "eval_steps": None,
                         "save_steps": 2, "seed": 1000 + index, "batch_size_per_worker": 4},
            "scale": {"num_workers": 1, "deepspeed": {"stage": 2 if index % 2 else 0}},
        }
        if index in FAILING:
            bad = tmp_path / f"bad-{index}.jsonl"  # the first row is fine; the rest is not
            bad.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{broken\n")
            overrides["data"] = {"path": str(bad)}
        jobs.append(write_job(overrides, name=f"job-{index}.yaml"))

    with ThreadPoolExecutor(JOBS) as pool:  # 10 CLI processes at once
        submitted = list(pool.map(lambda job: cli("submit", job, "-o", "json", timeout=300),
                                  jobs))
    for index, result in enumerate(submitted):
        assert result.returncode == 0, f"job {index}: {result.stderr}"
    runs = [json.loads(result.stdout) for result in submitted]
    run_ids = [run["run_id"] for run in runs]
    assert len(set(run_ids)) == JOBS, run_ids
    assert len({run["results"] for run in runs}) == JOBS

    # Track them all through `launch list` until every one has ended.
    deadline, states = time.time() + DEADLINE_S, {}
    while time.time() < deadline:
        listed = cli("list", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        states = {job["run_id"]: job["state"] for job in json.loads(listed.stdout)
                  if job["run_id"] in run_ids}
        assert set(states) == set(run_ids), "a submitted job is missing from the head"
        if all(state in ("SUCCEEDED", "FAILED", "STOPPED") for state in states.values()):
            break
        time.sleep(5)
    expected = {run_id: "FAILED" if index in FAILING else "SUCCEEDED"
                for index, run_id in enumerate(run_ids)}
    assert states == expected

    client = s3_store.client()
    for index, run in enumerate(runs):
        shown = json.loads(cli("status", run["run_id"], "-o", "json").stdout)
        assert (shown["run_id"], shown["state"]) == (run["run_id"], expected[run["run_id"]])
        prefix = run["results"].removeprefix(f"s3://{s3_store.bucket}/")
        assert prefix == f"concurrency/quickstart/{run['run_id']}"

        def read(name, prefix=prefix):
            body = client.get_object(Bucket=s3_store.bucket, Key=f"{prefix}/{name}")["Body"]
            return json.loads(body.read())

        assert read("spec.json")["training"]["seed"] == 1000 + index  # its own spec
        status = read("status.json")
        assert status["run_id"] == run["run_id"] and status["state"] == expected[run["run_id"]]
        if index in FAILING:
            assert f"bad-{index}.jsonl" in status["error"]  # its own data file, no other
        else:
            summary = read("summary.json")
            assert summary["global_step"] == 2 and summary["num_workers"] == 1
            assert summary["zero_stage"] == (2 if index % 2 else 0)
            shown = json.loads(cli("results", run["run_id"], "-o", "json").stdout)
            assert (shown["run_id"], shown["state"]) == (run["run_id"], "SUCCEEDED")
            assert shown["summary"] == summary and "model" in shown["artifacts"]

    # Nothing else was written under the shared root: one prefix per run, no strays (but the
    # empty folder markers pyarrow writes).
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_store.bucket, Prefix="concurrency/") for item in page.get("Contents", [])
        if not item["Key"].endswith("/")]
    assert {"/".join(key.split("/")[:3]) for key in keys} == {
        f"concurrency/quickstart/{run_id}" for run_id in run_ids}
