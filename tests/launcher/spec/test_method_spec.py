"""The `method:` section: each method's settings, and the ones that cannot run refused at
`launch validate` with one located line (exit 2)."""

from __future__ import annotations

import pytest

from launcher.spec.load import load_spec
from launcher.spec.method import FreezeSpec, IA3Spec, LoraSpec, PromptTuningSpec, QLoraSpec
from tests.support.located import assert_one_located_line
from tests.support.project import EXAMPLES

JOB = f"""\
name: method-test
model:
  name_or_path: gpt2
data:
  path: {EXAMPLES / "data" / "debian_describe.jsonl"}
"""
GPUS = "scale:\n  gpus_per_worker: 1\n"
SWEEP_R = "tune:\n  metric: loss\n  space:\n    method:\n      r: {choice: [4, 8]}\n"

# (case id, text after JOB, text on the line the error points at, words the message says)
CASES = [
    ("unknown-type", "method:\n  type: lorra\n", "type: lorra",
     "unknown method `lorra`; did you mean `lora`? methods: full, freeze, lora, qlora"),
    ("type-not-a-method", "method:\n  type: adapters\n", "type: adapters",
     "methods: full, freeze, lora, qlora, prefix, prompt, ia3"),
    ("qlora-without-gpus", "method:\n  type: qlora\n", "type: qlora",
     "qlora loads the model in 4-bit with bitsandbytes, which needs CUDA"),
    ("qlora-with-zero3", "method:\n  type: qlora\n" + GPUS + "  deepspeed:\n    stage: 3\n",
     "stage: 3", "use ZeRO stage 0-2"),
    ("differential-lr-with-offloaded-optimizer",
     "method:\n  type: full\n  layer_lr_decay: 0.8\nscale:\n  deepspeed:\n"
     "    offload_optimizer: true\n", "offload_optimizer: true",
     "layer_lr_decay would be ignored"),
    ("lora-head-lr-with-offloaded-optimizer",
     "method:\n  modules_to_save: [score]\n  head_lr_multiplier: 10\nscale:\n  deepspeed:\n"
     "    offload_optimizer: true\n", "offload_optimizer: true",
     "offload_optimizer makes DeepSpeed build its own optimizer"),
    ("lora-on-the-classifier-head", "  label_field: package\ntask: seq_classification\n"
     "method:\n  target_modules: [query, classifier]\n", "target_modules",
     "`classifier` is the classifier head, which seq_classification trains in full, so it "
     "cannot also get adapters: take it out of target_modules"),
    ("ia3-on-a-saved-module", "method:\n  type: ia3\n  target_modules: [c_attn, h.1.mlp]\n"
     "  modules_to_save: [mlp]\n", "target_modules", "`h.1.mlp` is in modules_to_save"),
    ("freeze-both-depths", "method:\n  type: freeze\n  freeze_first_layers: 2\n"
     "  train_top_layers: 2\n", "method:", "give freeze_first_layers or train_top_layers"),
    ("freeze-nothing", "method:\n  type: freeze\n  freeze_embeddings: false\n", "method:",
     "this freezes nothing"),
    ("negative-layers", "method:\n  type: freeze\n  train_top_layers: -1\n",
     "train_top_layers", "greater than or equal to 0"),
    ("decay-above-one", "method:\n  type: full\n  layer_lr_decay: 1.5\n", "layer_lr_decay",
     "less than or equal to 1"),
    ("typo-in-a-method-key", "method:\n  type: prefix\n  num_virtual_token: 8\n",
     "num_virtual_token", "did you mean `num_virtual_tokens`? allowed keys: type, "
     "num_virtual_tokens, prefix_projection"),
    ("key-of-another-method", "method:\n  type: lora\n  layer_lr_decay: 0.9\n",
     "layer_lr_decay", "unknown key; `layer_lr_decay` belongs to type full or freeze; "
     "allowed keys: type, r, alpha"),
    ("lora-rank-zero", "method:\n  type: lora\n  r: 0\n", "r: 0", "greater than or equal to 1"),
    ("ia3-feedforward-outside-targets", "method:\n  type: ia3\n  target_modules: [c_attn]\n"
     "  feedforward_modules: [c_fc]\n", "method:",
     "feedforward_modules must be among target_modules; not there: c_fc"),
    ("prompt-empty-init-text", "method:\n  type: prompt\n  init_text: ''\n", "init_text",
     "at least 1 character"),
    ("sweep-a-field-the-method-lacks", "method:\n  type: full\n" + SWEEP_R, "r: {choice",
     "`method` has no field `r`"),
]


@pytest.mark.parametrize("text,needle,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_method_gives_one_located_line(tmp_path, cli, text, needle, words):
    assert_one_located_line(cli, tmp_path / "job.yaml", JOB + text, needle, words)


def load(tmp_path, text: str):
    job = tmp_path / "job.yaml"
    job.write_text(JOB + text)
    return load_spec(job)


def test_lora_is_the_default_and_type_may_be_left_out(tmp_path):
    assert load(tmp_path, "").method == LoraSpec()
    spec = load(tmp_path, "method:\n  r: 4\n  target_modules: all-linear\n")
    assert spec.method == LoraSpec(r=4, target_modules="all-linear")


@pytest.mark.parametrize("text,expected", [
    ("method:\n  type: qlora\n" + GPUS, QLoraSpec()),
    ("method:\n  type: freeze\n  train_top_layers: 0\n  head_lr_multiplier: 10\n",
     FreezeSpec(train_top_layers=0, head_lr_multiplier=10)),
    ("method:\n  type: prompt\n  num_virtual_tokens: 8\n  init_text: 'Describe:'\n",
     PromptTuningSpec(num_virtual_tokens=8, init_text="Describe:")),
    ("method:\n  type: ia3\n  target_modules: [c_attn, c_fc]\n  feedforward_modules: [c_fc]\n",
     IA3Spec(target_modules=["c_attn", "c_fc"], feedforward_modules=["c_fc"])),
    ("method:\n  type: prefix\nscale:\n  deepspeed:\n    stage: 3\n", None),
    ("method:\n  type: prompt\nscale:\n  deepspeed:\n    stage: 3\n", None),
], ids=["qlora-with-gpus", "freeze-head-only", "prompt-from-text", "ia3-modules", "prefix-zero3",
        "prompt-zero3"])
def test_valid_methods_load(tmp_path, text, expected):
    method = load(tmp_path, text).method
    assert expected is None or method == expected


def test_the_resolved_spec_keeps_the_method_through_json(tmp_path):
    """The cluster half rebuilds the spec from spec.json: the same method comes back."""
    from launcher.spec.models import JobSpec

    spec = load(tmp_path, "method:\n  type: full\n  layer_lr_decay: 0.8\n")
    again = JobSpec.model_validate_json(spec.model_dump_json())
    assert again.method == spec.method and again.method.type == "full"


def test_sweeping_lora_fields_still_works(tmp_path):
    tune = load(tmp_path, "method:\n  type: lora\n" + SWEEP_R).tune
    assert list(tune.params()) == ["tune.space.method.r"]


@pytest.mark.parametrize("name,kind", [("freeze", "freeze"), ("prompt-tuning", "prompt"),
                                       ("qlora", "qlora")])
def test_method_examples_are_valid(name, kind):
    # A hub name for the model: the tiny demo model is built, not committed.
    spec = load_spec(EXAMPLES / f"{name}.yaml", {"model": {"name_or_path": "gpt2"}})
    assert spec.method.type == kind
