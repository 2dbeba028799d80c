"""model/ as export.format asks: the adapter, or the adapter merged into a full model that
gives the same outputs and carries the class names."""

from __future__ import annotations

import pytest

from jobs.export import export_model
from jobs.model import load_base_model, load_tokenizer
from jobs.tasks import task_for
from launcher.spec.models import JobSpec

LABELS = ["admin", "math", "x11"]


def trained_adapter(model_dir, out):
    """A LoRA adapter with non-zero weights (as after training) and a new classifier head."""
    from peft import LoraConfig, get_peft_model

    spec = JobSpec.model_validate({"name": "x", "task": "seq_classification",
                                   "model": {"name_or_path": str(model_dir)},
                                   "data": {"path": "x.jsonl"}})
    tokenizer = load_tokenizer(spec.model)
    task = task_for("seq_classification")
    base = load_base_model(spec.model, task, tokenizer, LABELS)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, init_lora_weights=False))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model, tokenizer


@pytest.mark.parametrize("format", ["adapter", "merged"])
def test_export_keeps_the_trained_model(tiny_bert, tmp_path, format):
    import torch
    from transformers import AutoModelForSequenceClassification

    trained, tokenizer = trained_adapter(tiny_bert, tmp_path / "saved")
    spec = JobSpec.model_validate({"name": "x", "task": "seq_classification",
                                   "model": {"name_or_path": str(tiny_bert)},
                                   "data": {"path": "x.jsonl"}, "export": {"format": format}})
    _, exported = export_model(tmp_path / "saved", tmp_path / "merged", spec,
                               task_for("seq_classification"), tokenizer, LABELS)
    assert exported["kind"] == format and exported["method"] == "lora"
    inputs = tokenizer(["a terminal mail client", "plots of functions"], padding=True,
                       return_tensors="pt")
    trained.eval()
    with torch.no_grad():
        expected = trained(**inputs).logits
    if format == "adapter":
        assert exported["path"] == str(tmp_path / "saved")
        return
    merged = AutoModelForSequenceClassification.from_pretrained(exported["path"]).eval()
    with torch.no_grad():
        assert torch.allclose(merged(**inputs).logits, expected, atol=1e-5)
    assert merged.config.id2label == dict(enumerate(LABELS))
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
