"""jobs.train's resume: a run (or a PBT segment) trains to exactly its last step, checkpoints
it, and resumed from that checkpoint (a worker lost after the final save) trains nothing more.
Real Trainer, tiny model, no Ray (jobs.train.build, as bench/hf_loop.py)."""

from __future__ import annotations

import torch

from jobs.train import build, resume_training
from launcher.spec.load import load_spec, merge_overrides
from tests.support.project import EXAMPLES


def _trainer(write_job, tiny_model, out, overrides: dict | None = None):
    job = {"model": {"name_or_path": str(tiny_model)},
           "training": {"max_steps": 4, "save_steps": 3, "logging_steps": 2, "eval_steps": None},
           "scale": {"num_workers": 1, "deepspeed": {"stage": 0}}}
    merge_overrides(job, overrides or {})
    spec = load_spec(write_job(job))
    return build(spec, out, callbacks=[], eval_on_start=False, deepspeed=False).trainer


def _weights(trainer) -> dict:
    return {name: value.detach().clone() for name, value in trainer.model.named_parameters()
            if value.requires_grad}


def test_resume_trains_to_the_last_step_and_never_past_it(write_job, tiny_model, tmp_path):
    segment = _trainer(write_job, tiny_model, tmp_path / "segment")
    resume_training(segment, None, last_step=2)  # a PBT segment: steps 1-2 of 4
    assert segment.state.global_step == 2
    assert (tmp_path / "segment" / "checkpoint-2").is_dir()  # its end is checkpointed

    full = _trainer(write_job, tiny_model, tmp_path / "full")
    resume_training(full, str(tmp_path / "segment" / "checkpoint-2"))
    assert full.state.global_step == 4  # went on from step 2 to max_steps
    assert (tmp_path / "full" / "checkpoint-4").is_dir()  # the last step, off save_steps
    trained = _weights(full)

    again = _trainer(write_job, tiny_model, tmp_path / "again")
    resume_training(again, str(tmp_path / "full" / "checkpoint-4"))
    assert again.state.global_step == 4  # no fifth step
    assert not (tmp_path / "again" / "checkpoint-5").exists()
    resumed = _weights(again)
    assert all(torch.equal(resumed[name], trained[name]) for name in trained)  # loaded as saved
    assert again.evaluate()["eval_loss"] > 0  # and the run goes on to evaluate


def test_the_same_seed_starts_the_new_weights_the_same(write_job, tiny_model, tmp_path):
    """LoRA's matrices and a classifier head are created at random: training.seed fixes them,
    so a run repeats, and another seed gives another start."""
    def start(seed: int, out: str) -> dict:
        return _weights(_trainer(write_job, tiny_model, tmp_path / out, {
            "task": "seq_classification", "training": {"seed": seed},
            "data": {"path": str(EXAMPLES / "data" / "debian_sections.jsonl")}}))

    first, again, other = start(7, "first"), start(7, "again"), start(8, "other")
    assert any("lora_A" in name for name in first) and any("score" in name for name in first)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)
