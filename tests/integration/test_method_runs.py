"""Each kind of method trains end to end through the real CLI on the session's Ray head (2 CPU
workers, DeepSpeed ZeRO), learns, says in summary.json how much of the model trained, and
exports what the method produces. Tiny sizes: a few steps each."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import EXAMPLES

pytestmark = pytest.mark.integration
ROWS = 400  # of the quickstart's data: 40 validation rows keep evaluation quick


@pytest.fixture
def run_method(ray_head, tiny_model, write_job, cli, tmp_path):
    """Train the quickstart with `method` (and `overrides`); return summary.json and the run."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join((EXAMPLES / "data" / "debian_describe.jsonl").read_text()
                            .splitlines(keepends=True)[:ROWS]))

    def run(method: dict, learning_rate: float, stage: int = 2) -> tuple[dict, Path]:
        job = write_job({
            "model": {"name_or_path": str(tiny_model)},
            "data": {"path": str(data), "max_length": 48},
            "training": {"max_steps": 6, "learning_rate": learning_rate, "warmup_ratio": 0,
                         "lr_scheduler": "constant", "logging_steps": 2, "eval_steps": None,
                         "save_steps": 6},
            "scale": {"deepspeed": {"stage": stage}},
            "target": {"address": ray_head.address}})
        written = yaml.safe_load(job.read_text())
        written["method"] = method  # replaces the quickstart's lora section, not merged into it
        job.write_text(yaml.safe_dump(written, sort_keys=False))
        started = time.time()
        result = cli("submit", job, "--follow", timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run_dir = Path(re.search(r"^  results:\s+(\S+)$", result.stdout, re.M).group(1))
        summary = json.loads((run_dir / "summary.json").read_text())
        print(f"\n{method['type']} (ZeRO-{stage}): {time.time() - started:.1f} s; eval loss "
              f"{summary['eval_loss_before']:.3f} -> {summary['eval_loss_after']:.3f}; "
              f"{summary['trainable_params']} of {summary['total_params']} parameters trained")
        assert summary["eval_loss_after"] < summary["eval_loss_before"]
        assert summary["global_step"] == 6
        return summary, run_dir

    return run


def test_full_with_layerwise_learning_rates_exports_the_whole_model(run_method, tiny_model):
    summary, run_dir = run_method({"type": "full", "head_lr_multiplier": 5,
                                   "layer_lr_decay": 0.5}, learning_rate=2e-3)
    assert summary["trainable_params"] == summary["total_params"] > 0
    tuned, base = _full_model(run_dir / "model"), _full_model(tiny_model)
    assert not (run_dir / "model" / "adapter_config.json").exists()
    assert not torch.equal(tuned["transformer.h.0.attn.c_attn.weight"],
                           base["transformer.h.0.attn.c_attn.weight"])


def test_freeze_keeps_the_frozen_weights(run_method, tiny_model):
    summary, run_dir = run_method({"type": "freeze", "train_top_layers": 1}, learning_rate=3e-3)
    assert 0 < summary["trainable_params"] < summary["total_params"]
    tuned, base = _full_model(run_dir / "model"), _full_model(tiny_model)
    changed = {name.split(".")[1] if ".h." not in name else ".".join(name.split(".")[1:3])
               for name in base if not torch.equal(tuned[name], base[name])}
    assert changed == {"h.1", "ln_f"}  # embeddings and block 0 left exactly as they were


def test_prefix_tuning_exports_its_adapter(run_method):
    summary, run_dir = run_method({"type": "prefix", "num_virtual_tokens": 8}, learning_rate=0.1)
    assert summary["trainable_params"] < summary["total_params"] / 10
    assert _adapter_type(run_dir / "model") == "PREFIX_TUNING"


def test_ia3_trains_only_its_vectors(run_method):
    summary, run_dir = run_method({"type": "ia3"}, learning_rate=3e-2)
    assert summary["trainable_params"] < summary["total_params"] / 100
    assert _adapter_type(run_dir / "model") == "IA3"


def _full_model(path: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def _adapter_type(path: Path) -> str:
    """The PEFT type of the exported adapter, which must load onto its base and run."""
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3]]))
    return json.loads((path / "adapter_config.json").read_text())["peft_type"]
