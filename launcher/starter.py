"""`launch init`: a commented starter job file for a task, valid as written.

Each task contributes what differs (a headline, the model, the data columns, the method, a few
sample rows in the shape its `data:` section reads); the training, scale, storage and target
sections are shared. `launch validate` passes at once and the user swaps in their own model
and data. A new task is one more entry in TASKS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import LaunchError

DEFAULT_NAME = "my-finetune"
DATA_FILE = "data/train.jsonl"

HEADER = """\
# __NAME__: __HEADLINE__, on Ray Train workers with DeepSpeed ZeRO.
# Written by `launch init`. Check the set-up, then run it:
#   launch doctor __FILE__
#   launch submit __FILE__ --follow
# Every key is documented in launch's docs/reference.md and in `launch schema`.

name: __NAME__          # names the run ids and the results folder
task: __TASK__

model:
  # A Hugging Face hub name, or a local folder holding config.json, the weights and the
  # tokenizer (relative paths are resolved against this file's folder).
  name_or_path: __MODEL__

data:
  # One example per row (.jsonl, .json, .csv or .parquet). The sample rows launch wrote are
  # only there to show the shape: replace them with your own.
  path: ./__DATA__
"""

SHARED_TAIL = """\

training:
  epochs: 1
  # max_steps: 100                # stop after this many optimizer steps instead
  learning_rate: __LR__
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
  kind: ray                       # the Ray head on this machine, started if none runs
"""

LORA = """
method:
  type: lora
  r: 8                            # rank of the LoRA matrices
  alpha: 16                       # scale = alpha / r
  dropout: 0.05
__LORA_NOTE__"""


@dataclass(frozen=True)
class Task:
    summary: str  # one line for `launch init --help`
    headline: str  # what the job does, the job file's first line
    model: str
    data: str  # the task's `data:` keys, commented
    lora_note: str  # what to know about LoRA on this task
    learning_rate: str
    samples: list[dict]  # rows of the sample data file


def _commands(*pairs: tuple[str, str]) -> list[dict]:
    return [{"prompt": f"What does the `{name}` command do?", "response": answer}
            for name, answer in pairs]


COMMANDS = (("ls", "It lists the files in a directory."),
            ("cd", "It changes the current directory."),
            ("pwd", "It prints the current directory."),
            ("cp", "It copies files and directories."),
            ("mv", "It moves or renames files."),
            ("rm", "It removes files."),
            ("mkdir", "It creates directories."),
            ("cat", "It prints the contents of files."),
            ("grep", "It prints the lines that match a pattern."),
            ("wc", "It counts lines, words and bytes."))

REVIEWS = [("The set-up took two minutes and everything worked.", "positive"),
           ("Clear documentation and friendly maintainers.", "positive"),
           ("It does exactly what it promises, and fast.", "positive"),
           ("The new release fixed every crash I had.", "positive"),
           ("I would recommend it to any team.", "positive"),
           ("Solid, simple and well tested.", "positive"),
           ("It crashed twice before I could save anything.", "negative"),
           ("The error messages tell you nothing.", "negative"),
           ("Installing it broke my other packages.", "negative"),
           ("Slow, and the defaults are wrong.", "negative"),
           ("Support never answered my question.", "negative"),
           ("Half the features in the guide are missing.", "negative")]

ENTITIES = [("Ada moved to London in 1843".split(), ["B-PER", "O", "O", "B-LOC", "O", "O"]),
            ("Linus wrote Linux in Helsinki".split(), ["B-PER", "O", "O", "O", "B-LOC"]),
            ("Grace Hopper worked in Arlington".split(), ["B-PER", "I-PER", "O", "O", "B-LOC"]),
            ("Alan visited Manchester".split(), ["B-PER", "O", "B-LOC"]),
            ("Margaret flew to Houston".split(), ["B-PER", "O", "O", "B-LOC"]),
            ("Dennis lived near New York".split(), ["B-PER", "O", "O", "B-LOC", "I-LOC"]),
            ("Barbara taught in Boston".split(), ["B-PER", "O", "O", "B-LOC"]),
            ("Ken retired to Berkeley".split(), ["B-PER", "O", "O", "B-LOC"]),
            ("Frances studied in Rochester".split(), ["B-PER", "O", "O", "B-LOC"]),
            ("Edsger taught at Austin".split(), ["B-PER", "O", "O", "B-LOC"])]

SUMMARIES = [("The build failed because the compiler was missing from the image, so the team "
              "added it to the base layer and the build passed.", "A missing compiler broke "
              "the build."),
             ("Training stopped at step 400 when a worker ran out of memory; halving the batch "
              "size let it finish.", "Out of memory; a smaller batch fixed it."),
             ("The storage bucket was renamed last week, and every job that still used the old "
              "name failed at upload.", "Jobs failed on a renamed bucket."),
             ("After the upgrade the dashboard loads in one second instead of ten, because the "
              "queries are cached.", "Caching made the dashboard ten times faster."),
             ("The nightly sweep found a learning rate that halves the validation loss of the "
              "baseline.", "The sweep found a much better learning rate."),
             ("A typo in the configuration pointed the job at an empty dataset, so it trained "
              "on nothing.", "A config typo left the job without data."),
             ("The cluster scaled from two to eight nodes during the run without losing a "
              "checkpoint.", "The cluster grew without losing checkpoints."),
             ("Logs were missing because the driver wrote them to a node that was deleted.",
              "Logs vanished with a deleted node."),
             ("Two teams submitted jobs with the same name and their results overwrote each "
              "other.", "Same-named jobs overwrote results."),
             ("The exported model was twice as large as expected because the optimizer state "
              "was saved with it.", "Optimizer state doubled the model size.")]

TASKS = {
    "causal_lm": Task(
        "prompt → response fine-tuning of a causal LM (LoRA)",
        "fine-tune a causal language model on prompt/response pairs with LoRA", "gpt2", """\
  prompt_field: prompt
  response_field: response
  prompt_template: "{prompt}\\n"   # how a prompt is shown; the response follows directly
  validation_fraction: 0.1        # held out (fixed seed) for eval loss before/after training
  max_length: 256                 # tokens per example; longer ones are truncated
""", "  # target_modules: all-linear    # default: PEFT's choice for the architecture\n",
        "0.0002", _commands(*COMMANDS)),
    "seq_classification": Task(
        "one label per text (sentiment, topic, intent)",
        "fine-tune a text classifier (one label per text) with LoRA",
        "distilbert-base-uncased", """\
  text_field: text
  label_field: label              # the classes are the values in the training split
  validation_fraction: 0.2        # stratified: every class keeps its share in each split
  # slice_field: source           # also report every metric per value of this column
  max_length: 128
""", "  # The new classification head trains in full beside the adapters.\n", "0.0005",
        [{"text": text, "label": label} for text, label in REVIEWS]),
    "token_classification": Task(
        "one tag per word (named entities, parts of speech)",
        "fine-tune a word tagger (named entities) with LoRA", "bert-base-cased", """\
  tokens_field: tokens            # a list of words per row
  tags_field: tags                # one tag per word; scored as entities (seqeval)
  validation_fraction: 0.2
  max_length: 128
""", "  # The new tagging head trains in full beside the adapters.\n", "0.0005",
        [{"tokens": words, "tags": tags} for words, tags in ENTITIES]),
    "seq2seq": Task(
        "source → target text with an encoder-decoder (summaries, translation)",
        "fine-tune an encoder-decoder (summaries) with LoRA", "t5-small", """\
  source_field: source            # the input text
  target_field: target            # the text to produce; scored with ROUGE and BLEU
  validation_fraction: 0.2
  max_length: 256
""", "", "0.0005",
        [{"source": f"summarize: {source}", "target": target} for source, target in SUMMARIES]),
}


@dataclass
class Starter:
    task: str
    job_file: Path
    data_file: Path | None  # None when a data file was already there (it is kept)


def starter_text(task: str, name: str, job_file: str) -> str:
    """The commented job file of `task`."""
    chosen = TASKS[task]
    text = (HEADER + chosen.data + LORA.replace("__LORA_NOTE__", chosen.lora_note)
            + SHARED_TAIL)
    for marker, value in (("__HEADLINE__", chosen.headline), ("__TASK__", task),
                          ("__MODEL__", chosen.model), ("__LR__", chosen.learning_rate),
                          ("__NAME__", name), ("__FILE__", job_file), ("__DATA__", DATA_FILE)):
        text = text.replace(marker, value)
    return text


def write_starter(path: Path, task: str = "causal_lm", force: bool = False) -> Starter:
    """Write the task's job file at `path` (a path without a .yaml/.yml suffix is a folder
    that gets job.yaml), and sample data next to it unless a file is already there. An
    existing job file is kept unless `force`."""
    if task not in TASKS:
        raise LaunchError(f"unknown task `{task}`; launch knows: {', '.join(TASKS)}")
    job_file = path if path.suffix in (".yaml", ".yml") else path / "job.yaml"
    if job_file.exists() and not force:
        raise LaunchError(f"{job_file} exists; pass --force to overwrite it")
    data_file = job_file.parent / DATA_FILE
    if data_file.exists():  # the user's rows are kept: the starter must read them
        _check_kept_data(data_file, task)
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(starter_text(task, job_name(job_file.resolve().parent.name),
                                     str(job_file)), encoding="utf-8")
    if data_file.exists():
        return Starter(task, job_file, None)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text("".join(json.dumps(row) + "\n" for row in TASKS[task].samples),
                         encoding="utf-8")
    return Starter(task, job_file, data_file)


def _check_kept_data(data_file: Path, task: str) -> None:
    """An existing data file must hold the columns the task's starter reads; otherwise nothing
    is written, and the error says which task its columns suit."""
    wanted = set(TASKS[task].samples[0])
    try:
        with data_file.open(encoding="utf-8") as rows:
            first = next((line for line in rows if line.strip()), "{}")
        columns = set(json.loads(first))
    except (OSError, ValueError, TypeError) as err:
        raise LaunchError(f"{data_file} exists and is not JSON lines ({err}); move it away or "
                          "pick another folder") from None
    if wanted <= columns:
        return
    suited = [name for name, other in TASKS.items() if set(other.samples[0]) <= columns]
    hint = f"pass --task {suited[0]}" if suited else "move it away"
    has = ", ".join(sorted(columns)) or "none"
    raise LaunchError(f"{data_file} exists with columns {has}, not the "
                      f"{', '.join(sorted(wanted))} a {task} starter reads: {hint}, or pick "
                      "another folder")


def job_name(folder: str) -> str:
    """A valid job name from the project folder's name (or a default)."""
    from launcher.spec.models import (
        NAME_PATTERN,  # pydantic: not at `launch --help` time
    )

    name = re.sub(r"[^a-z0-9-]+", "-", folder.lower())[:40].strip("-")
    return name if NAME_PATTERN.match(name) else DEFAULT_NAME
