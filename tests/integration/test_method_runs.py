"""Each kind of method trains end to end through the real CLI on the session's Ray head (2 CPU
workers, DeepSpeed ZeRO), learns, says in summary.json how much of the model trained, and
exports what the method produces. Tiny sizes: a few steps each. (LoRA: test_local_runs.py,
with IA3 there too; full: test_task_runs.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml

from support.project import EXAMPLES, submitted_results

pytestmark = pytest.mark.integration
ROWS = 400  # of the quickstart's data: 40 validation rows keep evaluation quick


@pytest.fixture
def run_method(ray_head, tiny_model, write_job, cli, tmp_path):
    """Train the quickstart with `method` (and `overrides`); return summary.json and the run."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join((EXAMPLES / "data" / "debian_describe.jsonl").read_text()
                            .splitlines(keepends=True)[:ROWS]))

    def run(method: dict, learning_rate: float, scale: dict | None = None) -> tuple[dict, Path]:
        scale = scale or {"deepspeed": {"stage": 2}}
        job = write_job({
            "model": {"name_or_path": str(tiny_model)},
            "data": {"path": str(data), "max_length": 48},
            "training": {"max_steps": 6, "learning_rate": learning_rate, "warmup_ratio": 0,
                         "lr_scheduler": "constant", "logging_steps": 2, "eval_steps": None,
                         "save_steps": 6},
            "scale": scale,
            "target": {"address": ray_head.address}})
        written = yaml.safe_load(job.read_text())
        written["method"] = method  # replaces the quickstart's lora section, not merged into it
        job.write_text(yaml.safe_dump(written, sort_keys=False))
        started = time.time()
        result = cli("submit", job, "--follow", timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run_dir = submitted_results(result)
        summary = json.loads((run_dir / "summary.json").read_text())
        print(f"\n{method['type']} ({scale}): {time.time() - started:.1f} s; eval loss "
              f"{summary['eval_loss_before']:.3f} -> {summary['eval_loss_after']:.3f}; "
              f"{summary['trainable_params']} of {summary['total_params']} parameters trained")
        assert summary["eval_loss_after"] < summary["eval_loss_before"]
        assert summary["global_step"] == 6
        assert summary["zero_stage"] == scale["deepspeed"]["stage"]
        return summary, run_dir

    return run


def test_freeze_with_layerwise_rates_exports_the_whole_model(run_method, tiny_model):
    """The embeddings (and the head tied to them) stay frozen while block 0 trains at half the
    rate of block 1 and the final norm at 5x: the whole model is exported, every trained part
    changed and the frozen ones exactly as they were. (`full` runs in test_task_runs.py.)"""
    summary, run_dir = run_method({"type": "freeze", "freeze_first_layers": 0,
                                   "head_lr_multiplier": 5, "layer_lr_decay": 0.5},
                                  learning_rate=3e-3)
    assert 0 < summary["trainable_params"] < summary["total_params"]
    assert not (run_dir / "model" / "adapter_config.json").exists()
    tuned, base = _full_model(run_dir / "model"), _full_model(tiny_model)
    changed = {name.split(".")[1] if ".h." not in name else ".".join(name.split(".")[1:3])
               for name in base if not torch.equal(tuned[name], base[name])}
    assert changed == {"h.0", "h.1", "ln_f"}


def test_prefix_tuning_on_zero3_exports_its_adapter(run_method):
    """ZeRO-3 partitions the prefix too; the checkpoint at the last step saves it on every rank
    (jobs/trainer.py), and the final evaluation after it runs in step."""
    summary, run_dir = run_method({"type": "prefix", "num_virtual_tokens": 8}, learning_rate=0.1,
                                  scale={"deepspeed": {"stage": 3}})
    assert summary["trainable_params"] < summary["total_params"] / 10
    assert _adapter_type(run_dir / "model") == "PREFIX_TUNING"


def test_prompt_tuning_on_zero3_offload_bf16_exports_an_adapter_that_generates(run_method):
    """The heaviest DeepSpeed settings: ZeRO-3 with optimizer and parameter offload (DeepSpeed's
    CPUAdam op, built once per machine), in bf16. The prompt's weights are partitioned across
    the 2 workers, so the saved adapter only loads if they were gathered at save time."""
    summary, run_dir = run_method({"type": "prompt", "num_virtual_tokens": 8,
                                   "init_text": "Describe the Debian package"},
                                  learning_rate=0.1,
                                  scale={"precision": "bf16", "deepspeed": {
                                      "stage": 3, "offload_optimizer": True,
                                      "offload_params": True}})
    assert summary["trainable_params"] < summary["total_params"] / 100
    assert _adapter_type(run_dir / "model") == "PROMPT_TUNING"
    assert len(summary["samples"]) == 3  # generated by the exported adapter in the job


def _full_model(path: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def _adapter_type(path: Path) -> str:
    """The PEFT type of the exported adapter, which must load onto its base and generate."""
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        output = model.generate(input_ids=torch.tensor([[1, 2, 3]]), max_new_tokens=4,
                                min_new_tokens=4, do_sample=False)
    assert output.shape == (1, 7)
    return json.loads((path / "adapter_config.json").read_text())["peft_type"]
