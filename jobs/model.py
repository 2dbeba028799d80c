"""Load the base model and tokenizer (hub name or local folder, one code path) and add LoRA."""

from __future__ import annotations

from launcher.spec.models import LoraSpec, ModelSpec


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.name_or_path)
    if tokenizer.pad_token is None:  # GPT-2 style tokenizers have no pad token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(spec: ModelSpec, method: LoraSpec):
    """The causal LM with LoRA adapters; only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(spec.name_or_path)
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=method.target_modules,
    )
    return get_peft_model(model, config)
