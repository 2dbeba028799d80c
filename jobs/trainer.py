"""The job's Hugging Face Trainer: its optimizer gives parameters their own learning rates, and
it saves prompt-learning adapters under ZeRO-3 on every rank in step.

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
    each trainable parameter in a group with its own learning rate, and whose saves keep
    ZeRO-3 ranks in step."""
    if base is None:
        from transformers import Trainer as base

    class JobTrainer(base):
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

        def _save(self, output_dir=None, state_dict=None):
            # PEFT saves a prefix / prompt adapter by running its prompt encoder. Under ZeRO-3
            # that forward gathers weights and changes DeepSpeed's record of the forward
            # passes: on rank 0 alone, the ranks fell out of step and the next evaluation or
            # training step hung. Every rank runs it; rank 0 alone writes.
            if not self.args.should_save and _saves_by_running_the_prompt_encoder(self.model):
                self.model.save_pretrained(output_dir or self.args.output_dir,
                                           state_dict=state_dict, is_main_process=False)
                return
            super()._save(output_dir, state_dict)

    JobTrainer.__name__ = JobTrainer.__qualname__ = f"Job{base.__name__}"
    return JobTrainer


def _saves_by_running_the_prompt_encoder(model) -> bool:
    """A prompt-learning PEFT model partitioned by ZeRO-3."""
    from peft import PeftModel
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return (is_deepspeed_zero3_enabled() and isinstance(model, PeftModel)
            and model.active_peft_config.is_prompt_learning)
