"""A PBT trial that continues another trial's checkpoint trains at its own, perturbed learning
rate: resuming alone would restore the optimizer's and the schedule's old rates."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl, TrainerState, get_linear_schedule_with_warmup

from jobs.callbacks import ApplyLearningRate


def _optimizer_and_schedule(lr: float):
    """Two groups, the second at 10x (a layer-wise multiplier, as jobs.trainer builds them),
    linear decay over 10 steps."""
    first, second = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([{"params": [first], "lr": lr},
                                   {"params": [second], "lr": lr * 10}])
    return optimizer, get_linear_schedule_with_warmup(optimizer, 0, 10)


def test_a_resumed_run_trains_at_its_own_learning_rate():
    trained, schedule_then = _optimizer_and_schedule(0.01)
    for _ in range(4):
        trained.step()
        schedule_then.step()
    optimizer, schedule = _optimizer_and_schedule(0.03)  # the perturbed trial's rate
    optimizer.load_state_dict(trained.state_dict())  # what the Trainer's resume does
    schedule.load_state_dict(schedule_then.state_dict())
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.6)  # the old rate

    ApplyLearningRate(trained_with=0.01).on_train_begin(
        SimpleNamespace(learning_rate=0.03), TrainerState(global_step=4), TrainerControl(),
        lr_scheduler=schedule)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.03 * 0.6, 0.3 * 0.6])
    optimizer.step()
    schedule.step()  # the schedule goes on from step 4 at the new rate, multipliers kept
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.03 * 0.5, 0.3 * 0.5])
