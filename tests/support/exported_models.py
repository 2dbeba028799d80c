"""Checks on a model folder a run exported, as a user would load it after the run."""

from __future__ import annotations

from pathlib import Path


def assert_adapter_generates(model_dir: Path, base: Path | None = None) -> None:
    """The adapter loads onto its base (the one its config names, or the folder `base`),
    changes its output, and generates text."""
    import torch
    from peft import AutoPeftModelForCausalLM, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (model_dir / "adapter_config.json").is_file()
    if base is None:
        model = AutoPeftModelForCausalLM.from_pretrained(model_dir)
    else:
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = "Describe the Debian package vim: Vi IMproved - enhanced vi editor\nDescription: "
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        tuned = model(**inputs).logits
        with model.disable_adapter():
            base = model(**inputs).logits
        output = model.generate(**inputs, max_new_tokens=20, min_new_tokens=5, do_sample=False,
                                pad_token_id=tokenizer.eos_token_id)
    assert not torch.allclose(tuned, base)  # the saved adapter really changes the model
    new_tokens = output[0][inputs["input_ids"].shape[1]:]
    assert len(new_tokens) >= 5
    assert tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
