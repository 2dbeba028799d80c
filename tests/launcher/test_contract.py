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
