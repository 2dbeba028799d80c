"""Runs whose results live in a real S3-compatible store (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest

from support.ports import free_port
from support.project import submitted_run_id

pytestmark = pytest.mark.integration


def _s3_job(write_job, tiny_model, ray_head, s3_store, data: dict | None = None, **storage):
    return write_job({
        "model": {"name_or_path": str(tiny_model)},
        **({"data": data} if data else {}),
        "target": {"address": ray_head.address},
        "training": {"max_steps": 12, "logging_steps": 3, "eval_steps": 6, "save_steps": 6},
        "storage": {"uri": f"s3://{s3_store.bucket}/runs", "endpoint_url": s3_store.endpoint,
                    **storage},
    })


def _keys(s3_store, prefix: str) -> list[str]:
    pages = s3_store.client().get_paginator("list_objects_v2").paginate(
        Bucket=s3_store.bucket, Prefix=prefix)
    return [item["Key"][len(prefix):] for page in pages for item in page.get("Contents", [])]


def test_every_result_lands_in_s3_and_reads_back_without_ray(
        ray_head, tiny_model, write_job, s3_store, cli, tmp_path):
    result = cli("submit", _s3_job(write_job, tiny_model, ray_head, s3_store), "--follow",
                 timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_id = submitted_run_id(result)
    prefix = f"runs/quickstart/{run_id}/"
    assert f"  results:   s3://{s3_store.bucket}/{prefix.rstrip('/')}" in result.stdout

    keys = _keys(s3_store, prefix)
    for name in ("spec.json", "status.json", "metrics.jsonl", "summary.json", "logs/driver.log",
                 "model/adapter_model.safetensors", "model/adapter_config.json",
                 "model/tokenizer.json", "plots/loss.png"):
        assert name in keys, f"{name} missing from {keys}"
    checkpoints = {key.split("/")[1] for key in keys
                   if key.startswith("checkpoints/checkpoint_") and key.count("/") >= 2}
    assert len(checkpoints) == 2  # steps 6 and 12

    client = s3_store.client()
    text = {name: client.get_object(Bucket=s3_store.bucket, Key=prefix + name)["Body"].read()
            .decode() for name in ("spec.json", "status.json", "logs/driver.log")}
    assert json.loads(text["status.json"])["state"] == "SUCCEEDED"
    assert "[launch] SUCCEEDED" in text["logs/driver.log"]
    assert "[launch] step 12/12" in text["logs/driver.log"]  # workers' lines are in it too
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
    assert json.loads((got / "summary.json").read_text())["global_step"] == 12
    assert not (got / "checkpoints").exists()

    listed = cli("list", "--storage", f"s3://{s3_store.bucket}/runs", "--endpoint-url",
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
