"""Real runs on the session's real Ray head: train, stop, fail — as a user sees them."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from support.exported_models import assert_adapter_generates
from support.project import submitted_results, submitted_run_id

pytestmark = pytest.mark.integration


def test_quickstart_trains_and_keeps_its_results(ray_head, tiny_model, write_job, cli):
    """The quickstart with 2 workers and ZeRO-2 learns, checkpoints, and exports an adapter;
    with a test split and deduplication, summary.json counts the rows each rule dropped."""
    job = write_job({"model": {"name_or_path": str(tiny_model)},
                     "data": {"test_fraction": 0.1,
                              "clean": {"dedupe": True, "near_dedupe": True}},
                     "target": {"address": ray_head.address}})
    started = time.time()
    result = cli("submit", job, "--follow", timeout=900)
    elapsed = time.time() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_id, run_dir = submitted_run_id(result), submitted_results(result)
    assert f"{run_id}: SUCCEEDED" in result.stdout
    assert "[launch] step" in result.stdout  # progress is streamed while it trains

    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"\nquickstart: submit -> SUCCEEDED {elapsed:.1f} s; eval loss "
          f"{summary['eval_loss_before']:.3f} -> {summary['eval_loss_after']:.3f}; "
          f"{summary['tokens_per_s']:.0f} tokens/s")
    assert summary["num_workers"] == 2 and summary["zero_stage"] == 2
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    # One real near-duplicate in the Debian rows: grub-efi-arm-dbg and grub-efi-arm64-dbg.
    assert summary["data"]["dropped"] == {"drop_empty": 0, "dedupe": 0, "near_dedupe": 1}
    assert summary["data"]["rows"] == {"train": 1199, "validation": 150, "test": 150}
    # The test split, evaluated once at the end, shows the learning too.
    assert summary["test"]["test_loss"] < summary["eval_loss_before"]
    assert json.loads((run_dir / "spec.json").read_text())["name"] == "quickstart"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "SUCCEEDED"

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if "loss" in r]
    assert train_steps[:3] == [10, 20, 30]  # one record per logging step
    assert (run_dir / "plots" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    checkpoints = sorted(p for p in (run_dir / "checkpoints").glob("checkpoint_*") if p.is_dir())
    assert checkpoints, "no checkpoint was kept"
    assert any(checkpoints[-1].rglob("adapter_model.safetensors"))
    # ZeRO-2 over 2 workers: each rank's optimizer shard is in the merged checkpoint.
    assert len(list(checkpoints[-1].rglob("zero_pp_rank_*_optim_states.pt"))) == 2

    assert_adapter_generates(run_dir / "model")

    shown = cli("results", run_id)
    assert shown.returncode == 0
    assert "SUCCEEDED" in shown.stdout and "eval_loss_after" in shown.stdout
    assert "model" in shown.stdout and str(run_dir) in shown.stdout
    assert f"{run_id}: SUCCEEDED" in cli("status", run_id).stdout
    assert run_id in cli("list").stdout


def test_ia3_without_deepspeed_learns_and_stops_early_at_the_stale_evaluation(
        ray_head, tiny_model, write_job, cli):
    """IA3 trains only its scaling vectors, here as plain DDP (ZeRO stage 0: no DeepSpeed
    engine) on 2 workers. An improvement bar no evaluation can clear stops it at its first
    evaluation, and that step is checkpointed and exported like a last step."""
    job = write_job({"model": {"name_or_path": str(tiny_model)},
                     "target": {"address": ray_head.address},
                     "training": {"max_steps": 12, "logging_steps": 2, "eval_steps": 3,
                                  "save_steps": 100, "learning_rate": 3e-2,
                                  "early_stopping": {"patience": 1, "min_delta": 100.0}},
                     "scale": {"deepspeed": {"stage": 0}}}, method={"type": "ia3"})
    result = cli("submit", job, "--follow", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[launch] early stopping at step 3: eval_loss has not improved" in result.stdout
    run_dir = submitted_results(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 3 and summary["stopped_early"] is True
    assert summary["zero_stage"] == 0
    assert summary["trainable_params"] < summary["total_params"] / 100
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    checkpoints = [p for p in (run_dir / "checkpoints").glob("checkpoint_*") if p.is_dir()]
    assert len(checkpoints) == 1  # the stopping step, though save_steps is 100
    assert not any(checkpoints[0].rglob("*optim_states.pt"))  # no DeepSpeed shards
    config = json.loads((run_dir / "model" / "adapter_config.json").read_text())
    assert config["peft_type"] == "IA3"
    assert_adapter_generates(run_dir / "model")


def test_a_model_the_workers_cannot_load_fails_at_once_with_its_cause(ray_head, tiny_model,
                                                                     write_job, cli, tmp_path):
    """The weights are broken: every worker raises while loading them. No retry can fix that,
    so the run ends FAILED on the first attempt (training.max_failures is 3), and the worker's
    own exception is the one line in status.json, `launch status` and the end of --follow."""
    model = tmp_path / "broken-model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").write_bytes(b"not safetensors")
    job = write_job({"model": {"name_or_path": str(model)},
                     "target": {"address": ray_head.address}})
    started = time.time()
    result = cli("submit", job, "--follow", timeout=600)
    elapsed = time.time() - started
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr
    run_id, run_dir = submitted_run_id(result), submitted_results(result)
    cause = json.loads((run_dir / "status.json").read_text())["error"]
    print(f"\nbroken weights: FAILED after {elapsed:.0f} s: {cause}")
    assert "WorkerGroupError" not in cause and "\n" not in cause
    assert cause.startswith(("SafetensorError: ", "OSError: ")), cause
    assert result.stderr.strip().splitlines()[-1] == f"error: run {run_id} ended FAILED: {cause}"
    assert f"  {cause}" in cli("status", run_id).stdout
    log = (run_dir / "logs" / "driver.log").read_text()
    assert "restarting the workers" not in log and "Traceback" in log  # the whole story
