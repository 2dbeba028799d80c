"""The spec's `method:` applied to a loaded model: which weights train, and at what rate.

Adapters come from PEFT; freezing and layer-wise learning rates work on any model that keeps
its transformer blocks in an nn.ModuleList (GPT-2's `h`, BERT's `encoder.layer`, T5's
`encoder.block` / `decoder.block`). Learning-rate multipliers are set on the parameters and
read by jobs.trainer's optimizer.
"""

from __future__ import annotations

from jobs.trainer import set_lr_multiplier
from launcher.contract import log_line
from launcher.spec.method import (
    FreezeSpec,
    FullSpec,
    IA3Spec,
    LoraSpec,
    MethodSpec,
    PrefixTuningSpec,
    PromptTuningSpec,
    QLoraSpec,
    modules_trained_in_full,
)

COMPUTE_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
CLASSIFIER_TASK_TYPES = ("SEQ_CLS", "TOKEN_CLS")  # PEFT's task types with a classifier head


class MethodError(Exception):
    """The method cannot be applied to this model or on this machine."""


def model_load_kwargs(method: MethodSpec) -> dict:
    """Extra `from_pretrained` arguments the method needs: qlora loads the weights in 4-bit."""
    if not isinstance(method, QLoraSpec):
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    if not torch.cuda.is_available():
        raise MethodError("qlora loads the model in 4-bit with bitsandbytes, which needs CUDA, "
                          "and this worker sees no GPU: give the job GPUs "
                          "(scale.gpus_per_worker) or use method type lora")
    dtype = getattr(torch, COMPUTE_DTYPES[method.compute_dtype])
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=method.quant_type,
            bnb_4bit_use_double_quant=method.double_quant, bnb_4bit_compute_dtype=dtype),
        "dtype": dtype,
        "device_map": {"": torch.cuda.current_device()},  # each worker holds its whole copy
    }


def apply_method(model, method: MethodSpec, peft_task_type: str):
    """The model ready to train: frozen where the method says, adapters added, multipliers set."""
    if isinstance(method, (FullSpec, FreezeSpec)):
        if isinstance(method, FreezeSpec):
            freeze(model, method)
        if method.differential_lr:
            set_layerwise_lrs(model, method.head_lr_multiplier, method.layer_lr_decay)
        return model
    from peft import get_peft_model

    if isinstance(method, QLoraSpec):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    config = peft_config(method, peft_task_type, model.name_or_path)
    for name in targets_inside(model, getattr(method, "target_modules", None),
                               getattr(config, "modules_to_save", None) or []):
        print(log_line(f"method.target_modules: {name} not adapted: it is inside a module "
              "that trains in full (modules_to_save)"), flush=True)
    peft_model = get_peft_model(model, config)
    if isinstance(method, LoraSpec) and method.differential_lr:
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                set_lr_multiplier(param, method.head_lr_multiplier)
    return peft_model


def peft_config(method: MethodSpec, task_type: str, tokenizer_path: str):
    """The PEFT config of an adapter method (lora, qlora, prefix, prompt, ia3)."""
    import peft

    # PEFT keeps adapters off modules_to_save, but adds a token classifier's head to them only
    # after placing adapters (all-linear then wraps the head and fails): name it up front.
    whole = modules_trained_in_full(method, task_type in CLASSIFIER_TASK_TYPES) or None
    if isinstance(method, LoraSpec):  # qlora too: the same adapters on a 4-bit base
        return peft.LoraConfig(task_type=task_type, r=method.r, lora_alpha=method.alpha,
                               lora_dropout=method.dropout, target_modules=method.target_modules,
                               modules_to_save=whole)
    if isinstance(method, PrefixTuningSpec):
        return peft.PrefixTuningConfig(task_type=task_type,
                                       num_virtual_tokens=method.num_virtual_tokens,
                                       prefix_projection=method.prefix_projection)
    if isinstance(method, PromptTuningSpec):
        from_text = method.init_text is not None
        return peft.PromptTuningConfig(
            task_type=task_type, num_virtual_tokens=method.num_virtual_tokens,
            prompt_tuning_init="TEXT" if from_text else "RANDOM",
            prompt_tuning_init_text=method.init_text,
            tokenizer_name_or_path=tokenizer_path if from_text else None)
    if isinstance(method, IA3Spec):
        return peft.IA3Config(task_type=task_type, target_modules=method.target_modules,
                              feedforward_modules=method.feedforward_modules,
                              modules_to_save=whole)
    raise TypeError(f"{type(method).__name__} is not an adapter method")


def targets_inside(model, targets: list[str] | None, whole: list[str]) -> list[str]:
    """The modules a target list names (PEFT's rule: the name or its dotted ending) that lie
    inside a module trained in full, e.g. RoBERTa's classifier.dense for `dense`."""
    if not isinstance(targets, list):
        return []  # all-linear and PEFT's defaults leave the head out by design
    names = [name for name, _ in model.named_modules()]
    outer = [name for name in names if name.rsplit(".", 1)[-1] in whole]
    return [name for name in names
            if any(name.startswith(f"{top}.") for top in outer)
            and any(name == t or name.endswith(f".{t}") for t in targets)]


def transformer_blocks(model) -> list[list]:
    """The model's stacks of transformer blocks, bottom first: every outermost nn.ModuleList
    of same-class modules that hold weights (one stack, or an encoder's and a decoder's)."""
    from torch import nn

    stacks, names = [], []
    for name, module in model.named_modules():
        if (isinstance(module, nn.ModuleList) and len(module) > 0
                and len({type(block) for block in module}) == 1
                and any(True for _ in module.parameters())
                and not any(name.startswith(f"{outer}.") for outer in names)):
            stacks.append(list(module))
            names.append(name)
    if not stacks:
        raise MethodError(f"{type(model).__name__} keeps no stack of transformer blocks (an "
                          "nn.ModuleList of identical layers), so layers cannot be frozen or "
                          "decayed by depth: use method type full or lora")
    return stacks


def embedding_params(model, stacks: list[list]) -> list:
    """Token, position and type embeddings (and their norm), outside the blocks."""
    from torch import nn

    in_blocks = {id(p) for stack in stacks for block in stack for p in block.parameters()}
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) or name.rsplit(".", 1)[-1].endswith("embeddings"):
            found.update((id(p), p) for p in module.parameters() if id(p) not in in_blocks)
    return list(found.values())


def freeze(model, method: FreezeSpec) -> None:
    """Stop gradients to the embeddings and the lower blocks of each stack."""
    stacks = transformer_blocks(model)
    depth = min(len(stack) for stack in stacks)
    for name in ("freeze_first_layers", "train_top_layers"):
        value = getattr(method, name)
        if value is not None and value > depth:
            raise MethodError(f"method.{name} is {value}, but {type(model).__name__} has "
                              f"{depth} transformer blocks")
    frozen = embedding_params(model, stacks) if method.freeze_embeddings else []
    for stack in stacks:
        if method.train_top_layers is not None:
            bottom = len(stack) - method.train_top_layers
        else:
            bottom = method.freeze_first_layers or 0
        frozen += [p for block in stack[:bottom] for p in block.parameters()]
    for param in frozen:
        param.requires_grad_(False)


def set_layerwise_lrs(model, head_multiplier: float, decay: float) -> None:
    """Block i of a stack of L trains at decay^(L-1-i), embeddings at decay^L (below the
    lowest block), and everything else (the head, final norms) at head_multiplier."""
    stacks = transformer_blocks(model)
    for param in model.parameters():
        set_lr_multiplier(param, head_multiplier)
    for param in embedding_params(model, stacks):
        set_lr_multiplier(param, decay ** max(len(stack) for stack in stacks))
    for stack in stacks:
        for index, block in enumerate(stack):
            for param in block.parameters():
                set_lr_multiplier(param, decay ** (len(stack) - 1 - index))


def parameter_counts(model) -> dict:
    """Trainable and total parameters; right under ZeRO-3 partitioning and 4-bit packing too."""
    if hasattr(model, "get_nb_trainable_parameters"):  # PEFT counts both cases itself
        trainable, total = model.get_nb_trainable_parameters()
    else:
        sizes = [(p.requires_grad, getattr(p, "ds_numel", p.numel()))
                 for p in model.parameters()]
        trainable = sum(n for grad, n in sizes if grad)
        total = sum(n for _, n in sizes)
    return {"trainable_params": trainable, "total_params": total}
