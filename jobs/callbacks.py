"""Hugging Face Trainer callbacks: metrics to storage, and a checkpoint at the final step."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class MetricsFileCallback(TrainerCallback):
    """Appends {step, epoch, time, tokens_per_s, <Trainer logs>} to metrics.jsonl."""

    def __init__(self, path: Path, is_rank_zero: bool):
        self.path = path
        self.is_rank_zero = is_rank_zero
        self._last = (time.time(), 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.is_rank_zero or not logs:
            return
        now, tokens = time.time(), state.num_input_tokens_seen
        last_time, last_tokens = self._last
        record = {"step": state.global_step, "epoch": state.epoch, "time": now, **logs}
        if "loss" in logs and tokens > last_tokens:
            record["tokens_per_s"] = (tokens - last_tokens) / max(now - last_time, 1e-9)
            self._last = (now, tokens)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()
                 if k != "time"}
        print(f"[launch] step {state.global_step}/{state.max_steps} {json.dumps(shown)}",
              flush=True)



class CheckpointLastStep(TrainerCallback):
    """Always checkpoint the final step, so every finished run leaves a resumable checkpoint."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control
