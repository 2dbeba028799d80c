"""jobs.methods and jobs.trainer on the tiny GPT-2 (2 blocks, head tied to the embeddings):
which weights train under each method, the learning rate each gets, and that DeepSpeed ZeRO
keeps those rates; on the tiny BERT, that a classifier's head trains in full beside LoRA.
In-process, no Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from jobs.export import export_model
from jobs.methods import MethodError, apply_method, model_load_kwargs, parameter_counts
from jobs.model import load_model, load_tokenizer
from jobs.tasks import task_for
from jobs.trainer import trainer_class
from launcher.spec.method import MethodSpec
from launcher.spec.models import JobSpec
from tests.support.project import EXAMPLES

LR = 1e-3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """The quickstart's tiny GPT-2 and tokenizer, without pretraining: these tests check which
    weights train and at what rate, not what they learn, and skip the slow part."""
    out = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    subprocess.run([sys.executable, str(EXAMPLES / "build_tiny_model.py"), "--out", str(out),
                    "--pretrain-steps", "0"], check=True, capture_output=True, timeout=300)
    return out


def method(**fields) -> MethodSpec:
    return TypeAdapter(MethodSpec).validate_python(fields)


def load(tiny_model: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model)


def trainable(model) -> set[str]:
    return {name for name, param in model.named_parameters() if param.requires_grad}


def optimizer_lrs(model, tmp_path: Path, weight_decay: float = 0.0) -> dict[str, tuple]:
    """Each trainable parameter's (lr, weight_decay) in the optimizer the job's Trainer builds."""
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=LR, use_cpu=True,
                             weight_decay=weight_decay, report_to="none")
    optimizer = trainer_class()(model=model, args=args).create_optimizer()
    group_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups
                for p in g["params"]}
    return {name: group_of[id(p)] for name, p in model.named_parameters() if p.requires_grad}


def test_full_trains_every_weight_at_one_rate(tiny_model, tmp_path):
    model = apply_method(load(tiny_model), method(type="full"), "CAUSAL_LM")
    assert trainable(model) == {name for name, _ in model.named_parameters()}
    counts = parameter_counts(model)
    assert counts["trainable_params"] == counts["total_params"] > 0
    # No multipliers: the Trainer's own two groups (with and without weight decay).
    lrs = optimizer_lrs(model, tmp_path, weight_decay=0.1)
    assert {lr for lr, _ in lrs.values()} == {LR}
    assert lrs["transformer.h.0.mlp.c_fc.weight"][1] == 0.1
    assert lrs["transformer.h.0.mlp.c_fc.bias"][1] == 0.0


@pytest.mark.parametrize("fields,trained", [
    ({"freeze_first_layers": 1}, {"h.1", "ln_f"}),
    ({"train_top_layers": 1}, {"h.1", "ln_f"}),
    ({"train_top_layers": 0}, {"ln_f"}),  # only the head: GPT-2's is tied to the embeddings
    ({"freeze_embeddings": False, "freeze_first_layers": 2}, {"wte", "wpe", "ln_f"}),
    ({"freeze_first_layers": 0}, {"h.0", "h.1", "ln_f"}),  # embeddings only
], ids=["first-1", "top-1", "head-only", "all-blocks-not-embeddings", "embeddings-only"])
def test_freeze_trains_only_the_chosen_parts(tiny_model, fields, trained):
    model = apply_method(load(tiny_model), method(type="freeze", **fields), "CAUSAL_LM")
    parts = {name.split(".")[1] if name.split(".")[1] != "h" else ".".join(name.split(".")[1:3])
             for name in trainable(model)}
    assert parts == trained
    counts = parameter_counts(model)
    assert 0 < counts["trainable_params"] < counts["total_params"]


def test_freeze_deeper_than_the_model_is_refused(tiny_model):
    with pytest.raises(MethodError, match="train_top_layers is 3, but GPT2LMHeadModel has 2"):
        apply_method(load(tiny_model), method(type="freeze", train_top_layers=3), "CAUSAL_LM")


def test_a_model_without_transformer_blocks_is_refused():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    with pytest.raises(MethodError, match="keeps no stack of transformer blocks"):
        apply_method(model, method(type="freeze", freeze_first_layers=1), "CAUSAL_LM")


def test_layerwise_decay_and_head_multiplier(tiny_model, tmp_path):
    spec = method(type="full", head_lr_multiplier=10, layer_lr_decay=0.5)
    lrs = optimizer_lrs(apply_method(load(tiny_model), spec, "CAUSAL_LM"), tmp_path,
                        weight_decay=0.1)
    assert lrs["transformer.h.1.attn.c_attn.weight"] == (LR, 0.1)  # the top block
    assert lrs["transformer.h.0.attn.c_attn.weight"] == (LR * 0.5, 0.1)
    assert lrs["transformer.h.0.ln_1.weight"] == (LR * 0.5, 0.0)  # norms keep no decay
    assert lrs["transformer.wte.weight"][0] == LR * 0.25  # below the lowest block
    assert lrs["transformer.wpe.weight"][0] == LR * 0.25
    assert lrs["transformer.ln_f.weight"][0] == LR * 10  # the head


def test_freeze_with_decay_groups_only_what_trains(tiny_model, tmp_path):
    spec = method(type="freeze", train_top_layers=1, layer_lr_decay=0.5, head_lr_multiplier=2)
    lrs = optimizer_lrs(apply_method(load(tiny_model), spec, "CAUSAL_LM"), tmp_path)
    assert {name.split(".")[1] for name in lrs} == {"h", "ln_f"}
    assert {lr for name, (lr, _) in lrs.items() if ".h.1." in name} == {LR}
    assert lrs["transformer.ln_f.bias"][0] == 2 * LR


def test_lora_head_multiplier_applies_to_modules_to_save(tiny_model, tmp_path):
    spec = method(type="lora", r=4, target_modules=["c_attn"], modules_to_save=["ln_f"],
                  head_lr_multiplier=5)
    model = apply_method(load(tiny_model), spec, "CAUSAL_LM")
    lrs = optimizer_lrs(model, tmp_path)
    saved = {name for name in lrs if "modules_to_save" in name}
    assert saved and all(lrs[name][0] == 5 * LR for name in saved)
    assert all(lr == LR for name, (lr, _) in lrs.items() if "lora_" in name)
    assert set(lrs) == saved | {name for name in lrs if "lora_" in name}


@pytest.mark.parametrize("format", ["adapter", "merged"])
@pytest.mark.parametrize("task", ["seq_classification", "token_classification"])
def test_lora_all_linear_trains_a_classifier_head_in_full(tiny_bert, tmp_path, task, format):
    """PEFT's all-linear would put LoRA on a tagger's head too (and then fail: modules_to_save
    cannot wrap a LoRA layer). The head trains in full, unadapted, and exports as trained."""
    spec = JobSpec.model_validate({
        "name": "x", "task": task, "model": {"name_or_path": str(tiny_bert)},
        "data": {"path": "x.jsonl"}, "export": {"format": format},
        "method": {"type": "lora", "r": 4, "target_modules": "all-linear"}})
    tokenizer, labels = load_tokenizer(spec.model), ["B-PKG", "O", "X"]
    model = load_model(spec.model, spec.method, task_for(task), tokenizer, labels)
    head = {name for name, _ in model.named_parameters() if ".classifier." in name}
    assert {name for name in head if name in trainable(model)} == {
        f"base_model.model.classifier.modules_to_save.default.{p}" for p in ("weight", "bias")}
    assert not any("lora_" in name for name in head)
    assert any("lora_" in name for name in trainable(model))

    torch.manual_seed(0)
    with torch.no_grad():  # as after training: every trainable weight has moved
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(tmp_path / "saved")
    exported, _ = export_model(tmp_path / "saved", tmp_path / "merged", spec, task_for(task),
                               tokenizer, labels)
    inputs = tokenizer(["vim is a text editor", "curl fetches URLs"], padding=True,
                       return_tensors="pt")
    with torch.no_grad():
        expected = model.eval()(**inputs).logits
        assert torch.allclose(exported.eval()(**inputs).logits, expected, atol=1e-5)


def test_lora_targets_inside_a_classifier_head_are_left_out(capsys):
    """A head with inner layers (RoBERTa's classifier.dense / out_proj): a target name that
    also matches inside it adapts the encoder only, and the log says so."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64, num_labels=3)
    model = apply_method(RobertaForSequenceClassification(config),
                         method(type="lora", r=4, target_modules=["query", "dense"]), "SEQ_CLS")
    adapted = {name.split(".lora_")[0] for name in trainable(model) if ".lora_" in name}
    assert "base_model.model.roberta.encoder.layer.0.intermediate.dense" in adapted
    assert not any(".classifier." in name for name in adapted)
    assert "classifier.dense not adapted" in capsys.readouterr().out


@pytest.mark.parametrize("fields,adapter", [
    ({"type": "prefix", "num_virtual_tokens": 4}, "prompt_encoder"),
    ({"type": "prefix", "num_virtual_tokens": 4, "prefix_projection": True}, "prompt_encoder"),
    ({"type": "prompt", "num_virtual_tokens": 4}, "prompt_encoder"),
    ({"type": "prompt", "num_virtual_tokens": 4, "init_text": "Describe the package"},
     "prompt_encoder"),
    ({"type": "ia3"}, "ia3_l"),
    ({"type": "ia3", "target_modules": ["c_attn", "c_fc"], "feedforward_modules": ["c_fc"]},
     "ia3_l"),
], ids=["prefix", "prefix-projection", "prompt", "prompt-from-text", "ia3", "ia3-modules"])
def test_adapters_leave_the_base_frozen(tiny_model, fields, adapter):
    model = apply_method(load(tiny_model), method(**fields), "CAUSAL_LM")
    names = trainable(model)
    assert names and all(adapter in name for name in names), names
    counts = parameter_counts(model)
    assert 0 < counts["trainable_params"] < counts["total_params"] / 5


def test_prompt_init_text_starts_from_its_token_embeddings(tiny_model):
    from transformers import AutoTokenizer

    model = apply_method(load(tiny_model), method(type="prompt", num_virtual_tokens=2,
                                                  init_text="vim editor tool"), "CAUSAL_LM")
    ids = AutoTokenizer.from_pretrained(tiny_model)("vim editor tool")["input_ids"][:2]
    start = model.prompt_encoder["default"].embedding.weight
    assert torch.equal(start, model.get_input_embeddings().weight[ids])


def test_a_train_step_changes_only_trainable_weights(tiny_model, tmp_path):
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, TrainingArguments

    model = apply_method(load(tiny_model), method(type="freeze", train_top_layers=1,
                                                  layer_lr_decay=0.5), "CAUSAL_LM")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.pad_token = tokenizer.eos_token
    rows = [dict(tokenizer(text), labels=tokenizer(text)["input_ids"])
            for text in ["vim: an editor", "curl: fetch URLs", "git: version control"]]
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-2, max_steps=2,
                             per_device_train_batch_size=3, use_cpu=True, report_to="none",
                             save_strategy="no", disable_tqdm=True)
    trainer_class()(model=model, args=args, train_dataset=rows,
                    data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True)).train()
    changed = {name for name, p in model.named_parameters()
               if not torch.equal(p.detach(), before[name])}
    assert changed == trainable(model)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_qlora_without_cuda_fails_with_a_clear_message():
    with pytest.raises(MethodError, match="qlora .* needs CUDA, and this worker sees no GPU"):
        model_load_kwargs(method(type="qlora"))
    assert model_load_kwargs(method(type="lora")) == {}


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_keeps_the_learning_rates(tiny_model, stage):
    """The HF Trainer hands our optimizer to deepspeed.initialize; ZeRO keeps its groups."""
    spec = {"type": "full", "head_lr_multiplier": 10, "layer_lr_decay": 0.5}
    script = Path(__file__).parents[1] / "support" / "deepspeed_lrs.py"
    result = subprocess.run([sys.executable, str(script), str(tiny_model), str(stage),
                             json.dumps(spec)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["optimizer"] == ("DeepSpeedZeroOptimizer" if stage == 2
                                   else "DeepSpeedZeroOptimizer_Stage3")
    # embeddings 0.25, block 0 at 0.5 and block 1 at 1 (with and without decay), head 10
    assert report["lrs"] == pytest.approx([LR * m for m in (0.25, 0.5, 0.5, 1, 1, 10)])
