"""`launch init`: a commented starter job file for a task, valid as written.

Each task is a template (the job file, with every section explained) and a few rows of
sample data in the shape its `data:` section reads, so `launch validate` passes at once and
the user swaps in their own model and data. A new task is one more entry in TASKS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import LaunchError

DEFAULT_NAME = "my-finetune"
DATA_FILE = "data/train.jsonl"

CAUSAL_LM = """\
# __NAME__: fine-tune a causal language model on prompt/response pairs with LoRA, on Ray
# Train workers with DeepSpeed ZeRO. Written by `launch init`. Check the set-up, then run it:
#   launch doctor __FILE__
#   launch submit __FILE__ --follow
# Every key is documented in launch's README (job.yaml reference) and in `launch schema`.

name: __NAME__          # names the run ids and the results folder

model:
  # A Hugging Face hub name, or a local folder holding config.json, the weights and the
  # tokenizer (relative paths are resolved against this file's folder).
  name_or_path: gpt2

data:
  # One example per row (.jsonl, .json, .csv or .parquet). The sample rows launch wrote are
  # only there to show the shape: replace them with your own.
  path: ./__DATA__
  prompt_field: prompt
  response_field: response
  prompt_template: "{prompt}\\n"   # how a prompt is shown; the response follows directly
  validation_fraction: 0.1        # held out (fixed seed) for eval loss before/after training
  max_length: 256                 # tokens per example; longer ones are truncated

method:
  type: lora
  r: 8                            # rank of the LoRA matrices
  alpha: 16                       # scale = alpha / r
  dropout: 0.05
  # target_modules: all-linear    # default: PEFT's choice for the architecture

training:
  epochs: 1
  # max_steps: 100                # stop after this many optimizer steps instead
  learning_rate: 0.0002
  lr_scheduler: linear            # linear | cosine | constant
  batch_size_per_worker: 8
  logging_steps: 5                # a metrics record (and a progress line) every N steps
  save_steps: 50                  # the final step is always checkpointed too
  seed: 42

scale:
  num_workers: 2                  # Ray Train workers, one process each
  cpus_per_worker: 1
  gpus_per_worker: 0              # > 0 on GPU machines
  precision: fp32                 # bf16 works on CPU too; fp16 needs GPUs
  deepspeed:
    stage: 2                      # ZeRO stage 0-3
    offload_optimizer: false

storage:
  # Results go to <uri>/<name>/<run id>/. For S3-compatible stores: s3://bucket/prefix with
  # endpoint_url (credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
  uri: ./runs

target:
  kind: local                     # a Ray head on this machine, started if none runs
"""

CAUSAL_LM_SAMPLES = [
    ("What does the `ls` command do?", "It lists the files in a directory."),
    ("What does the `cd` command do?", "It changes the current directory."),
    ("What does the `pwd` command do?", "It prints the current directory."),
    ("What does the `cp` command do?", "It copies files and directories."),
    ("What does the `mv` command do?", "It moves or renames files."),
    ("What does the `rm` command do?", "It removes files."),
    ("What does the `mkdir` command do?", "It creates directories."),
    ("What does the `cat` command do?", "It prints the contents of files."),
    ("What does the `grep` command do?", "It prints the lines that match a pattern."),
    ("What does the `wc` command do?", "It counts lines, words and bytes."),
]


@dataclass(frozen=True)
class Task:
    summary: str
    template: str  # the job file; __NAME__, __FILE__ and __DATA__ are filled in
    samples: list[tuple[str, str]]  # (prompt, response) rows for the sample data file


TASKS = {
    "causal_lm": Task("prompt → response fine-tuning of a causal LM (LoRA)", CAUSAL_LM,
                      CAUSAL_LM_SAMPLES),
}


@dataclass
class Starter:
    task: str
    job_file: Path
    data_file: Path | None  # None when a data file was already there (it is kept)


def write_starter(path: Path, task: str = "causal_lm", force: bool = False) -> Starter:
    """Write the task's job file at `path` (a path without a .yaml/.yml suffix is a folder
    that gets job.yaml), and sample data next to it unless a file is already there. An
    existing job file is kept unless `force`."""
    if task not in TASKS:
        raise LaunchError(f"unknown task `{task}`; launch knows: {', '.join(TASKS)}")
    job_file = path if path.suffix in (".yaml", ".yml") else path / "job.yaml"
    if job_file.exists() and not force:
        raise LaunchError(f"{job_file} exists; pass --force to overwrite it")
    chosen = TASKS[task]
    data_file = job_file.parent / DATA_FILE
    text = (chosen.template.replace("__NAME__", job_name(job_file.resolve().parent.name))
            .replace("__FILE__", str(job_file)).replace("__DATA__", DATA_FILE))
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(text, encoding="utf-8")
    if data_file.exists():
        return Starter(task, job_file, None)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text("".join(json.dumps({"prompt": prompt, "response": response}) + "\n"
                                 for prompt, response in chosen.samples), encoding="utf-8")
    return Starter(task, job_file, data_file)


def job_name(folder: str) -> str:
    """A valid job name from the project folder's name (or a default)."""
    from launcher.spec.models import (
        NAME_PATTERN,  # pydantic: not at `launch --help` time
    )

    name = re.sub(r"[^a-z0-9-]+", "-", folder.lower())[:40].strip("-")
    return name if NAME_PATTERN.match(name) else DEFAULT_NAME
