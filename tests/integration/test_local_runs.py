"""Real runs on the session's real Ray head: train, stop, fail — as a user sees them."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.contract import RunLayout
from launcher.errors import LaunchError
from launcher.spec.load import load_spec
from launcher.targets import make_target
from tests.support.exported_models import assert_adapter_generates
from tests.support.polling import wait_for
from tests.support.project import (
    launch_reporting_ray,
    submitted_results,
    submitted_run_id,
    write_quickstart,
)

pytestmark = pytest.mark.integration

# The quickstart (one epoch: 75 steps) is stopped once step 10's checkpoint is kept and step 20
# is logged: on 2 busy cores the workers train up to 30 steps more while `launch stop` runs.
EPOCHS, STEPS, SAVE_EVERY = 1, 75, 10


@dataclass
class StoppedQuickstart:
    """The quickstart, stopped with `launch stop` once it has a checkpoint and
    finished with `launch submit --resume --follow`: one run both quickstart tests read."""

    job: Path
    run_id: str
    run_dir: Path
    running: str  # `launch status` before the stop
    stopped: subprocess.CompletedProcess  # `launch stop`
    status_stopped: str  # `launch status` after it
    state_stopped: str  # status.json's state after it
    last_step_stopped: int  # the last step logged before the stop took hold
    last_step_later: int  # the last step logged a moment later, before the resume
    resumed: subprocess.CompletedProcess  # `launch submit --resume --follow`
    resumed_s: float  # how long that took


@pytest.fixture(scope="module")
def quickstart(ray_head, tiny_model, tmp_path_factory, cli) -> StoppedQuickstart:
    folder = tmp_path_factory.mktemp("quickstart")
    job = write_quickstart(folder / "job.yaml", folder / "runs", {
        "model": {"name_or_path": str(tiny_model)},
        "data": {"test_fraction": 0.1, "clean": {"dedupe": True, "near_dedupe": True}},
        "training": {"epochs": EPOCHS, "save_steps": SAVE_EVERY},
        "target": {"address": ray_head.address}})
    submitted = cli("submit", job)
    assert submitted.returncode == 0, submitted.stderr
    run_id, run_dir = submitted_run_id(submitted), submitted_results(submitted)

    def logged_steps() -> list[int]:
        metrics = run_dir / "metrics.jsonl"
        text = metrics.read_text() if metrics.exists() else ""
        return [json.loads(line)["step"] for line in text.splitlines() if '"loss"' in line]

    wait_for(lambda: logged_steps(), "the first step", lambda: cli("logs", run_id).stdout[-4000:])
    running = cli("status", run_id).stdout
    # One logging step past the first checkpoint: it is kept, and 55 steps are to come.
    wait_for(lambda: logged_steps()[-1] > SAVE_EVERY, f"step {SAVE_EVERY}",
             lambda: cli("logs", run_id).stdout[-4000:])
    stopped = cli("stop", run_id)
    status_stopped = cli("status", run_id).stdout
    state_stopped = json.loads((run_dir / "status.json").read_text())["state"]
    last_step_stopped = logged_steps()[-1]
    refused = cli("submit", job, "--resume", "no-such-run")
    assert refused.returncode == 1 and "unknown run id" in refused.stderr
    last_step_later = logged_steps()[-1]

    started = time.time()
    resumed = cli("submit", job, "--resume", run_id, "--follow", timeout=900)
    return StoppedQuickstart(job, run_id, run_dir, running, stopped, status_stopped, state_stopped,
                             last_step_stopped, last_step_later, resumed, time.time() - started)


@pytest.mark.long
def test_a_stopped_run_says_so_and_resumes_with_submit_resume(quickstart, cli):
    """`launch stop` ends a training run STOPPED (in Ray and in status.json); `launch submit
    FILE --resume RUN` goes on from the run's last checkpoint, in its folder.

    Long (about 2 minutes, in its set-up): the quickstart run both quickstart tests read, two
    attempts of 2 workers, with steps enough that the stop surely lands while it trains."""
    run_id, run_dir = quickstart.run_id, quickstart.run_dir
    assert f"{run_id}: RUNNING" in quickstart.running
    assert quickstart.stopped.returncode == 0, quickstart.stopped.stderr
    assert f"{run_id}: STOPPED" in quickstart.stopped.stdout
    assert f"{run_id}: STOPPED" in quickstart.status_stopped
    assert quickstart.state_stopped == "STOPPED"
    print(f"\nthe stop took hold by step {quickstart.last_step_stopped} of {STEPS}")
    assert quickstart.last_step_stopped < STEPS
    # The workers ended with the driver: nothing trained after `launch stop` returned.
    assert quickstart.last_step_later == quickstart.last_step_stopped

    resumed = quickstart.resumed
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"submitted {run_id} (attempt 2)" in resumed.stdout
    assert "[launch] resuming from" in resumed.stdout
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumed_at = [r["step"] for r in records if r.get("event") == "resumed"]
    # Not from step 0, and not from the last step: the stop came while it trained.
    assert len(resumed_at) == 1 and SAVE_EVERY <= resumed_at[0] < STEPS, resumed_at
    # One row per run in `launch list`, under the id every command takes, with its attempts.
    listed = [job for job in json.loads(cli("list", "-o", "json").stdout)
              if job["run_id"].startswith(run_id)]
    assert [(job["run_id"], job["state"], job["attempts"]) for job in listed] == [
        (run_id, "SUCCEEDED", 2)]
    log = (run_dir / "logs" / "driver.log").read_text()
    # Both attempts' logs are kept, the first to its end: the driver outlived the stop signal.
    assert log.index("[launch] STOPPED") < log.index("the run resumes in a new attempt")

    again = cli("submit", quickstart.job, "--resume", run_id)
    assert again.returncode == 1 and "is SUCCEEDED; only a FAILED or STOPPED" in again.stderr


def test_quickstart_trains_and_keeps_its_results(quickstart, cli):
    """The quickstart with 2 workers and ZeRO-2 learns, checkpoints, and exports an adapter;
    with a test split and deduplication, summary.json counts the rows each rule dropped."""
    result, run_id, run_dir = quickstart.resumed, quickstart.run_id, quickstart.run_dir
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{run_id}: SUCCEEDED" in result.stdout
    assert "[launch] step" in result.stdout  # progress is streamed while it trains

    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"\nquickstart: resumed -> SUCCEEDED {quickstart.resumed_s:.1f} s; eval loss "
          f"{summary['eval_loss_before']:.3f} -> {summary['eval_loss_after']:.3f}; "
          f"{summary['tokens_per_s']:.0f} tokens/s")
    assert summary["num_workers"] == 2 and summary["zero_stage"] == 2
    assert summary["global_step"] == STEPS  # 1199 rows, 8 rows a worker a step
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
    # DeepSpeed's shared-memory collectives, which training never uses, were neither compiled
    # nor loaded (jobs.deepspeed_config.skip_inference_collectives): its log line is absent.
    logs = cli("logs", run_id).stdout
    assert "[launch] step" in logs and "shm_comm" not in logs

    shown = cli("results", run_id)
    assert shown.returncode == 0
    assert "SUCCEEDED" in shown.stdout and "eval_loss_after" in shown.stdout
    assert "model" in shown.stdout and str(run_dir) in shown.stdout
    assert f"{run_id}: SUCCEEDED" in cli("status", run_id).stdout
    assert run_id in cli("list").stdout


@pytest.mark.parametrize("command", [["status"], ["logs"], ["list"]])
def test_status_logs_and_list_ask_the_head_without_importing_ray(quickstart, command):
    """They speak Ray's Jobs API over plain HTTP: no Ray import (1.5 s of CPU), so they answer
    at once on a busy machine, and from a client without Ray's packages."""
    args = [*command, quickstart.run_id] if command != ["list"] else command
    result, imported_ray = launch_reporting_ray(*args, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not imported_ray
    assert quickstart.run_id in result.stdout


def test_a_run_id_the_head_already_has_is_refused_with_its_reason(quickstart, ray_head):
    """The head's own reason, in one line: here, that a job with that id exists."""
    spec = load_spec(quickstart.job)
    with pytest.raises(LaunchError) as refused:
        make_target(spec.target).submit(spec, RunLayout(str(quickstart.run_dir)),
                                        quickstart.run_id, {})
    assert str(refused.value).startswith(
        f"the Ray head at {ray_head.address} took no job (HTTP 500): ValueError: Job with "
        f"submission_id {quickstart.run_id} already exists.")
    assert "\n" not in str(refused.value)


def test_a_hub_model_the_hub_cannot_serve_fails_before_any_worker_starts(
        ray_head, write_job):
    """The hub does not answer here (conftest points HF_ENDPOINT at a closed port) and `gpt2`
    is in no hub cache: the driver asks the hub once and fails the run with that one line,
    instead of every worker retrying for about a minute (Ray Train never starts). The job's
    code travels to the head without Ray on the client: submitting and following import none."""
    job = write_job({"model": {"name_or_path": "gpt2"},
                     "target": {"address": ray_head.address}})
    result, imported_ray = launch_reporting_ray("submit", job, "--follow", timeout=300)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]  # run FAILED
    assert not imported_ray
    cause = ("ModelSourceError: model `gpt2`: not in the hub cache, and the hub does not "
             "answer (")
    assert cause in result.stderr.strip().splitlines()[-1]
    assert "hf download gpt2 --local-dir DIR" in result.stderr
    run_dir = submitted_results(result)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "FAILED" and status["error"].startswith(cause)
    assert "worker group" not in (run_dir / "logs" / "driver.log").read_text()


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
    # The dashboard of a head launch started asks for its token: the line says where it is.
    assert f"(sign in with the token in {ray_head.token_path})" in result.stdout
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
