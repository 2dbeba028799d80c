"""A Hugging Face Trainer whose optimizer gives parameters their own learning rates.

The Trainer refuses `optimizers=` together with DeepSpeed, but it builds the optimizer through
`create_optimizer` in both cases and hands it to `deepspeed.initialize` when the DeepSpeed
config has no optimizer section, so overriding that method carries the parameter groups
(and their learning rates) into DeepSpeed ZeRO too. jobs.methods sets the multipliers.
"""

from __future__ import annotations

LR_MULTIPLIER = "lr_multiplier"  # attribute on a parameter: its lr is the job's lr times this


def set_lr_multiplier(param, multiplier: float) -> None:
    setattr(param, LR_MULTIPLIER, multiplier)


def lr_multiplier(param) -> float:
    return getattr(param, LR_MULTIPLIER, 1.0)


def trainer_class(base=None):
    """`base` (transformers.Trainer by default, or e.g. Seq2SeqTrainer) whose optimizer puts
    each trainable parameter in a group with its own learning rate."""
    if base is None:
        from transformers import Trainer as base

    class MultiplierTrainer(base):
        def create_optimizer(self, model=None):
            opt_model = self.model if model is None else model
            trainable = [(n, p) for n, p in opt_model.named_parameters() if p.requires_grad]
            if self.optimizer is not None or all(lr_multiplier(p) == 1 for _, p in trainable):
                return super().create_optimizer(model)  # the Trainer's own groups, unchanged
            decayed = set(self.get_decay_parameter_names(opt_model))  # not biases, norms
            groups: dict[tuple[bool, float], list] = {}
            for name, param in trainable:
                groups.setdefault((name in decayed, lr_multiplier(param)), []).append(param)
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls([
                {"params": params, "lr": self.args.learning_rate * multiplier,
                 "weight_decay": self.args.weight_decay if decays else 0.0}
                for (decays, multiplier), params in sorted(groups.items())
            ], **kwargs)
            return self.optimizer

    MultiplierTrainer.__name__ = MultiplierTrainer.__qualname__ = f"Multiplier{base.__name__}"
    return MultiplierTrainer
