"""The DeepSpeed config generated from the spec's scale section."""

from __future__ import annotations

from jobs.deepspeed_config import deepspeed_config
from launcher.spec.models import ScaleSpec


def test_zero2_defaults_leave_batch_settings_to_the_trainer():
    config = deepspeed_config(ScaleSpec())
    assert config["zero_optimization"] == {"stage": 2}
    assert config["train_micro_batch_size_per_gpu"] == "auto"
    assert config["gradient_accumulation_steps"] == "auto"
    assert "train_batch_size" not in config  # DeepSpeed derives it with its own world size
    assert config["bf16"] == {"enabled": False} and config["fp16"] == {"enabled": False}
    assert "optimizer" not in config


def test_zero3_with_offload_and_bf16():
    scale = ScaleSpec(precision="bf16", deepspeed={"stage": 3, "offload_optimizer": True,
                                                   "offload_params": True})
    config = deepspeed_config(scale)
    zero = config["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"]["device"] == "cpu"
    assert zero["offload_param"]["device"] == "cpu"
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["bf16"] == {"enabled": True}
    assert config["optimizer"]["type"] == "AdamW"  # DeepSpeed's CPU Adam for offloaded state


def test_stage0_trains_without_deepspeed():
    assert deepspeed_config(ScaleSpec(deepspeed={"stage": 0})) is None
