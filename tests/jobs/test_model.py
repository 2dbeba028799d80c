"""Where a job loads its model from: an s3:// folder on the run's store loads like a local one."""

from __future__ import annotations

import pytest
import torch

from jobs.model import ModelSourceError, check_model_source, load_base_model, load_tokenizer
from jobs.tasks import task_for
from launcher.spec.models import ModelSpec


def test_an_s3_model_folder_is_copied_once_and_loads_like_the_local_one(
        s3_store, job_s3_settings, tiny_model):
    client, bucket = s3_store.client(), s3_store.bucket
    for file in tiny_model.iterdir():
        client.upload_file(str(file), bucket, f"models/tiny/{file.name}")
    spec = ModelSpec(name_or_path=f"s3://{bucket}/models/tiny")
    assert spec.location == "s3"
    check_model_source(spec)  # what the driver asks before any worker starts

    task = task_for("causal_lm")
    tokenizer = load_tokenizer(spec)
    model = load_base_model(spec, task, tokenizer)
    local = load_base_model(ModelSpec(name_or_path=str(tiny_model)), task, tokenizer)
    assert tokenizer("apt install vim")["input_ids"] == \
        load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))("apt install vim")["input_ids"]
    for (name, weight), (_, expected) in zip(model.state_dict().items(),
                                             local.state_dict().items(), strict=True):
        assert torch.equal(weight, expected), name
    assert len(list(job_s3_settings.iterdir())) == 1  # loaded twice, copied once


def test_a_missing_s3_model_fails_in_one_line_naming_it(s3_store, job_s3_settings):
    missing = ModelSpec(name_or_path=f"s3://{s3_store.bucket}/models/nope")
    with pytest.raises(ModelSourceError, match=f"model {missing.name_or_path}: no config.json"):
        check_model_source(missing)
    with pytest.raises(ModelSourceError) as raised:
        load_tokenizer(missing)
    assert str(raised.value) == f"model.name_or_path: no object or folder at {missing.name_or_path}"
