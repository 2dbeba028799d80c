"""Load the base model and tokenizer (hub name, local folder or s3:// folder, one code path)
and apply the method.

The task picks the model class (a causal LM, a classifier, an encoder-decoder...);
classifiers get their class names in the config, so the exported model carries them.
"""

from __future__ import annotations

from jobs.s3_cache import FetchError, fetch
from jobs.tasks import Task
from jobs.tasks.chat import use_chat_template
from launcher.spec.data import DataSpec
from launcher.spec.method import MethodSpec
from launcher.spec.models import ModelSpec


class ModelSourceError(Exception):
    """The model cannot be loaded from where the job runs."""


def check_model_source(spec: ModelSpec) -> None:
    """The model can be had from where the job runs: a hub model in the hub cache or on a hub
    that answers (transformers retries an unreachable hub for about a minute), an s3:// folder
    holding a config. Asked once, before any worker waits on it."""
    if spec.location == "hub":
        from launcher.hub import hub_model

        found = hub_model(spec.name_or_path)
        if not found.ok:
            raise ModelSourceError(f"model `{spec.name_or_path}`: {found.detail} -> {found.fix}")
    elif spec.location == "s3":
        import pyarrow.fs

        from jobs.storage import s3_filesystem

        config = f"{spec.name_or_path.removeprefix('s3://').rstrip('/')}/config.json"
        try:
            found = s3_filesystem().get_file_info(config).type == pyarrow.fs.FileType.File
        except OSError as err:
            raise ModelSourceError(f"model {spec.name_or_path}: cannot read it: "
                                   f"{str(err).splitlines()[0]}") from err
        if not found:
            raise ModelSourceError(f"model {spec.name_or_path}: no config.json there; upload "
                                   "a folder saved with save_pretrained")


def model_path(spec: ModelSpec) -> str:
    """What from_pretrained reads: a hub name or local folder as it is, an s3:// folder copied
    to this node's disk first (once per version, shared by the node's workers)."""
    if spec.location != "s3":
        return spec.name_or_path
    try:
        return str(fetch(spec.name_or_path))
    except FetchError as err:
        raise ModelSourceError(f"model.name_or_path: {err}") from err


def load_tokenizer(spec: ModelSpec, data: DataSpec | None = None):
    """The model's tokenizer, with a pad token; for chat rows (`data.messages_field`), with the
    chat template that renders them (saved with the tokenizer, so the exported model has it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path(spec))
    if tokenizer.pad_token is None:  # GPT-2 style tokenizers have no pad token
        tokenizer.pad_token = tokenizer.eos_token
    if data is not None and data.messages_field:
        use_chat_template(tokenizer, data.chat_template)
    return tokenizer


def load_base_model(spec: ModelSpec, task: Task, tokenizer, labels: list[str] | None = None,
                    path: str | None = None, **load_kwargs):
    """The task's model class loaded from `path` (default: the spec's model), before any
    adapter. With `labels`, a classification head sized and named for them (a head trained
    on other classes is replaced)."""
    import transformers

    auto_class = getattr(transformers, task.model_class)
    extra = {}
    if labels is not None:
        extra = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                 "label2id": {name: i for i, name in enumerate(labels)},
                 "ignore_mismatched_sizes": True}
    model = auto_class.from_pretrained(path or model_path(spec), **extra, **load_kwargs)
    if model.config.pad_token_id is None:  # classifiers find each row's last token by it
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_model(spec: ModelSpec, method: MethodSpec, task: Task, tokenizer,
               labels: list[str] | None = None):
    """The task's model made ready to train by the spec's method (jobs.methods)."""
    from jobs.methods import apply_method, model_load_kwargs

    model = load_base_model(spec, task, tokenizer, labels, **model_load_kwargs(method))
    model = apply_method(model, method, task.peft_task_type)
    # A saved adapter names its base: as the job named it, not by a node's copy of it.
    for config in getattr(model, "peft_config", {}).values():
        config.base_model_name_or_path = spec.name_or_path
    return model
