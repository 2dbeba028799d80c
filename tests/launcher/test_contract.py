"""The contract between the halves round-trips: what a job writes, the launcher reads back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from launcher.contract import StepReport, log_line, merged_status, parse_progress, progress_line


@pytest.mark.parametrize("record,report", [
    ({"step": 10, "epoch": 0.125, "loss": 5.386, "learning_rate": 0.003,
      "tokens_per_s": 9852.4}, StepReport(10, 85, loss=5.386, tokens_per_s=9852)),
    ({"step": 40, "epoch": 0.5, "eval_loss": 4.2}, StepReport(40, 85, eval_loss=4.2)),
    ({"step": 85, "epoch": 1.0, "train_loss": 3.9}, StepReport(85, 85)),  # the mean: no bar
    ({"step": 0, "epoch": None, "eval_loss": float("nan")}, None),
])
def test_a_progress_line_a_job_prints_parses_to_its_numbers(record, report):
    line = progress_line(record, max_steps=85)
    assert line.startswith("[launch] step ")
    parsed = parse_progress(f"(RayTrainWorker pid=1) {line}")  # as Ray prefixes worker lines
    if report is None:  # nan parses as nan, which never equals itself
        assert parsed.step == 0 and parsed.eval_loss != parsed.eval_loss
    else:
        assert parsed == report


def test_other_log_lines_are_not_progress():
    assert parse_progress(log_line("data: 1350 rows")) is None
    assert parse_progress("Epoch 1: loss went down") is None


def test_status_json_is_written_only_in_its_shape():
    status = merged_status({}, "PENDING", run_id="r", attempt=1, image=None)
    assert status["state"] == "PENDING" and "image" not in status
    failed = merged_status(status, "FAILED", error="OSError: no data")
    assert merged_status(failed, "RUNNING")["state"] == "RUNNING"
    assert "error" not in merged_status(failed, "RUNNING")  # a resumed run is no longer failed
    with pytest.raises(ValidationError):
        merged_status(status, "DONE")
    with pytest.raises(ValidationError):
        merged_status(status, "RUNNING", eror="typo")


TRAINED = {"eval_loss_before": 5.87, "eval_loss_after": 5.61, "eval_before": {"eval_loss": 5.87},
           "eval_after": {"eval_loss": 5.61}, "test": {}, "labels": None,
           "exported": {"kind": "adapter", "method": "lora", "uri": "RUN/model",
                        "base_model": "gpt2"},
           "samples": [], "sample_metrics": {}, "global_step": 75, "epochs": 1.0,
           "train_samples": 1199, "eval_samples": 150, "tokens_seen": 40000,
           "trainable_params": 4096, "total_params": 700000, "data": {"rows": {"train": 1199}},
           "stopped_early": False, "checkpoints": 2, "checkpoint": "RUN/checkpoints/c"}


def test_summary_json_round_trips_from_the_job_to_launch_results(tmp_path):
    """jobs.export writes summary.json through the contract's model; `launch results` reads it
    back from storage as it was written, and a training run's summary has no sweep fields."""
    from jobs.export import write_summary
    from jobs.storage import RunStorage
    from launcher.contract import SUMMARY, RunLayout, RunSummary
    from launcher.spec.models import StorageSpec
    from launcher.storage import storage_for

    layout = RunLayout.for_run(str(tmp_path), "job", "job-1")
    summary = RunSummary.model_validate({**TRAINED, "state": "SUCCEEDED", "wall_time_s": 61.5,
                                         "num_workers": 2, "zero_stage": 2,
                                         "final_train_loss": 5.6, "tokens_per_s": None})
    write_summary(RunStorage(layout), summary)
    read = storage_for(StorageSpec(uri=str(tmp_path))).read_json(layout.uri(SUMMARY), {})
    assert RunSummary.model_validate(read) == summary
    assert read["tokens_per_s"] is None and "best_trial" not in read


@pytest.mark.parametrize("change", [{"eval_loss_afer": 1.0}, {"global_step": "many"},
                                    {"exported": {"kind": "zip", "method": "lora", "uri": "u"}}])
def test_a_summary_off_its_contract_is_refused(change):
    from launcher.contract import TrainingSummary

    with pytest.raises(ValidationError):
        TrainingSummary.model_validate({**TRAINED, **change})
