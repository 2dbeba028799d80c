"""Each kind of method trains end to end through the real CLI on the session's Ray head (2 CPU
workers, DeepSpeed ZeRO), learns, says in summary.json how much of the model trained, and
exports what the method produces. Tiny sizes: a few steps each, the runs submitted at once
(method_runs). (LoRA: test_local_runs.py, with IA3 there too; full: test_task_runs.py.)"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.support.project import EXAMPLES, submitted_results, write_quickstart

pytestmark = pytest.mark.integration
ROWS = 400  # of the quickstart's data: 40 validation rows keep evaluation quick


# Each test's method and settings: (method, learning rate, scale).
METHODS = {
    "freeze": ({"type": "freeze", "freeze_first_layers": 0, "head_lr_multiplier": 5,
                "layer_lr_decay": 0.5}, 3e-3, {"deepspeed": {"stage": 2}}),
    "prefix": ({"type": "prefix", "num_virtual_tokens": 8}, 0.1, {"deepspeed": {"stage": 3}}),
    "prompt": ({"type": "prompt", "num_virtual_tokens": 8,
                "init_text": "Describe the Debian package"}, 0.1,
               {"precision": "bf16", "deepspeed": {"stage": 3, "offload_optimizer": True,
                                                  "offload_params": True}}),
}


@pytest.fixture(scope="module")
def method_runs(ray_head, tiny_model, cli,
                tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The quickstart trained with each of METHODS, all submitted at once (`launch submit
    --follow` each): a run of 6 steps is mostly start-up (driver, Ray Train's controller, the
    workers' imports), which overlaps the others' training instead of leaving a core idle."""
    folder = tmp_path_factory.mktemp("methods")
    data = folder / "rows.jsonl"
    data.write_text("".join((EXAMPLES / "data" / "debian_describe.jsonl").read_text()
                            .splitlines(keepends=True)[:ROWS]))
    jobs = [write_quickstart(folder / f"{name}.yaml", folder / "runs", {
        "model": {"name_or_path": str(tiny_model)},
        "data": {"path": str(data), "max_length": 48},
        "training": {"max_steps": 6, "learning_rate": learning_rate, "warmup_ratio": 0,
                     "lr_scheduler": "constant", "logging_steps": 2, "eval_steps": None,
                     "save_steps": 6},
        "scale": scale,
        "target": {"address": ray_head.address}}, method=method)
        for name, (method, learning_rate, scale) in METHODS.items()]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = pool.map(lambda job: cli("submit", job, "--follow", timeout=600), jobs)
    return dict(zip(METHODS, results))


def trained(method_runs, name: str) -> tuple[dict, Path]:
    """The method's run, which must have learned in its 6 steps: summary.json and run dir."""
    result = method_runs[name]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = submitted_results(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"\n{name}: eval loss {summary['eval_loss_before']:.3f} -> "
          f"{summary['eval_loss_after']:.3f}; {summary['trainable_params']} of "
          f"{summary['total_params']} parameters trained")
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert summary["global_step"] == 6
    assert summary["zero_stage"] == METHODS[name][2]["deepspeed"]["stage"]
    return summary, run_dir


@pytest.mark.long
def test_freeze_with_layerwise_rates_exports_the_whole_model(method_runs, tiny_model):
    """The embeddings (and the head tied to them) stay frozen while block 0 trains at half the
    rate of block 1 and the final norm at 5x: the whole model is exported, every trained part
    changed and the frozen ones exactly as they were. (`full` runs in test_task_runs.py.)

    Long (2.5 to 4 minutes, in its set-up): the three method runs all three tests read, each a
    Ray Train run of 2 workers with its own start-up."""
    summary, run_dir = trained(method_runs, "freeze")
    assert 0 < summary["trainable_params"] < summary["total_params"]
    assert not (run_dir / "model" / "adapter_config.json").exists()
    tuned, base = _full_model(run_dir / "model"), _full_model(tiny_model)
    changed = {name.split(".")[1] if ".h." not in name else ".".join(name.split(".")[1:3])
               for name in base if not torch.equal(tuned[name], base[name])}
    assert changed == {"h.0", "h.1", "ln_f"}


def test_prefix_tuning_on_zero3_exports_its_adapter(method_runs):
    """ZeRO-3 partitions the prefix too; the checkpoint at the last step saves it on every rank
    (jobs/trainer.py), and the final evaluation after it runs in step."""
    summary, run_dir = trained(method_runs, "prefix")
    assert summary["trainable_params"] < summary["total_params"] / 10
    assert _adapter_type(run_dir / "model") == "PREFIX_TUNING"


def test_prompt_tuning_on_zero3_offload_bf16_exports_an_adapter_that_generates(method_runs):
    """The heaviest DeepSpeed settings: ZeRO-3 with optimizer and parameter offload (DeepSpeed's
    CPUAdam op, built once per machine), in bf16. The prompt's weights are partitioned across
    the 2 workers, so the saved adapter only loads if they were gathered at save time."""
    summary, run_dir = trained(method_runs, "prompt")
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
