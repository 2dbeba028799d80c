"""The DeepSpeed config a job trains with, generated from the spec's `scale` section.

Micro-batch, accumulation, clipping and optimizer settings stay "auto" so the Hugging Face
Trainer fills them from the same spec values: one source of truth. Stage 0 shards nothing, so
it trains without DeepSpeed at all: plain DDP, which skips DeepSpeed's engine start-up and its
per-step bookkeeping (bench/training_overhead.py measures the difference).
"""

from __future__ import annotations

from launcher.spec.models import ScaleSpec


def deepspeed_config(scale: ScaleSpec) -> dict | None:
    """The config for the Trainer's `deepspeed` argument; None (plain DDP) at stage 0."""
    if scale.deepspeed.stage == 0:
        return None
    zero: dict = {"stage": scale.deepspeed.stage}
    if scale.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": scale.gpus_per_worker > 0}
    if scale.deepspeed.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": scale.gpus_per_worker > 0}
    if scale.deepspeed.stage == 3:
        # Gather the partitioned weights when saving, so model/ holds a loadable model.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    config = {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "zero_optimization": zero,
        "bf16": {"enabled": scale.precision == "bf16"},
        "fp16": {"enabled": scale.precision == "fp16"},
    }
    if scale.deepspeed.offload_optimizer:
        # Offloaded state needs DeepSpeed's own CPU Adam (built on first use), not torch AdamW.
        config["optimizer"] = {"type": "AdamW", "params": {
            "lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}}
    return config


def skip_inference_collectives() -> None:
    """Keep DeepSpeed from compiling and loading its shared-memory all-reduce on CPUs.

    DeepSpeed's torch backend builds that op (a minute of g++ on each new machine, container or
    pod) and sets it up whenever it joins the process group, but only its inference_all_reduce
    (tensor-parallel inference) uses it, and that falls back to torch.distributed without it;
    ZeRO training reduces through torch.distributed anyway. The hook is private to DeepSpeed
    (the version launch pins): the quickstart test, which reads the run's log, fails if it
    moves."""
    import importlib

    # by name: the attribute deepspeed.comm.torch is the torch package itself
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
