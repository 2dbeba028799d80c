"""The code layer and the tags: deterministic, content-addressed, with ignore rules and a size
limit. Pure Python; the registry and builders are tested in tests/integration/test_image.py."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml

from launcher.errors import LaunchError
from launcher.image.context import code_layer, write_layer_blob
from launcher.image.ignore import IgnoreRules
from launcher.image.recipe import CPU_BASE, CPU_TORCH_INDEX, GPU_BASE, Recipe
from launcher.spec.load import load_spec


@pytest.fixture
def job_dir(tmp_path) -> Path:
    folder = tmp_path / "job"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n" for i in range(50)))
    (folder / "extras").mkdir()
    (folder / "extras" / "notes.txt").write_text("keep me\n")
    (folder / "extras" / "scratch.tmp").write_text("drop me\n")
    (folder / "job.yaml").write_text(yaml.safe_dump({
        "name": "ctx", "model": {"name_or_path": "gpt2"},
        "data": {"path": "data/train.jsonl"},
        "image": {"repository": "127.0.0.1:5000/launch/ctx", "files": ["extras"]}}))
    return folder


def build(job_dir: Path, out: Path):
    spec = load_spec(job_dir / "job.yaml")
    layer = code_layer(spec, job_dir)
    out.mkdir(exist_ok=True)
    return spec, layer, write_layer_blob(layer, out)


def test_same_inputs_give_the_same_digest_and_touching_files_changes_nothing(job_dir, tmp_path):
    _, _, first = build(job_dir, tmp_path / "a")
    for path in job_dir.rglob("*"):
        os.utime(path, (1e9, 1e9))
    _, _, second = build(job_dir, tmp_path / "b")
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)
    assert (tmp_path / "a" / "code-layer.tar.gz").read_bytes() == \
        (tmp_path / "b" / "code-layer.tar.gz").read_bytes()


def test_changing_one_line_changes_the_job_tag_but_not_the_runtime_tag(job_dir, tmp_path):
    spec, _, before = build(job_dir, tmp_path / "a")
    data = job_dir / "data" / "train.jsonl"
    data.write_text(data.read_text().replace('"r7"', '"r7 edited"'))
    _, _, after = build(job_dir, tmp_path / "b")
    recipe = Recipe.for_spec(spec)
    assert before.diff_id != after.diff_id
    assert recipe.job_tag(before.diff_id) != recipe.job_tag(after.diff_id)
    assert recipe.runtime_tag == Recipe.for_spec(load_spec(job_dir / "job.yaml")).runtime_tag


def test_the_tar_is_rooted_at_opt_launch_with_fixed_owner_mtime_and_sorted_names(job_dir, tmp_path):
    _, _, blob = build(job_dir, tmp_path / "a")
    with tarfile.open(fileobj=gzip.open(blob.path)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert all(name.startswith("opt") for name in names)
    assert {m.mtime for m in members} == {0} and {(m.uid, m.gid) for m in members} == {(0, 0)}
    files = [m.name for m in members if m.isfile()]
    assert files == sorted(files)
    assert "opt/launch/jobs/run.py" in files and "opt/launch/launcher/spec/models.py" in files
    assert "opt/launch/job/data/train.jsonl" in files and "opt/launch/job/spec.json" in files


def test_the_spec_in_the_image_points_at_the_files_inside_it(job_dir, tmp_path):
    _, layer, blob = build(job_dir, tmp_path / "a")
    with tarfile.open(fileobj=gzip.open(blob.path)) as tar:
        shipped = json.loads(tar.extractfile("opt/launch/job/spec.json").read())
    assert shipped["data"]["path"] == "/opt/launch/job/data/train.jsonl"
    assert shipped["image"]["files"] == ["/opt/launch/job/extras"]
    assert shipped["model"]["name_or_path"] == "gpt2"  # a hub id stays a hub id
    assert layer.spec.data.path == shipped["data"]["path"]


def test_a_saved_dataset_folder_is_shipped_and_remote_data_is_not(job_dir, tmp_path):
    saved = job_dir / "data" / "saved"
    saved.mkdir()
    (saved / "dataset_info.json").write_text(json.dumps(
        {"features": {"prompt": {"dtype": "string"}, "response": {"dtype": "string"}}}))
    (saved / "state.json").write_text("{}")
    (saved / "data-00000-of-00001.arrow").write_bytes(b"rows")
    job = yaml.safe_load((job_dir / "job.yaml").read_text())
    job["data"]["path"] = "data/saved"
    (job_dir / "job.yaml").write_text(yaml.safe_dump(job))
    _, layer, _ = build(job_dir, tmp_path / "a")
    names = {entry.name for entry in layer.entries}
    assert "job/data/saved/data-00000-of-00001.arrow" in names
    assert layer.spec.data.path == "/opt/launch/job/data/saved"

    job["data"]["path"] = "org/hub-dataset"
    (job_dir / "job.yaml").write_text(yaml.safe_dump(job))
    _, layer, _ = build(job_dir, tmp_path / "b")
    assert layer.spec.data.path == "org/hub-dataset"  # loaded by the job, not shipped
    assert not any(entry.name.startswith("job/data/") for entry in layer.entries)


def test_launchignore_excludes_files_and_negation_brings_them_back(job_dir, tmp_path):
    (job_dir / ".launchignore").write_text("# scratch files\n**/*.tmp\nextras/notes.txt\n"
                                           "!extras/notes.txt\n")
    _, layer, _ = build(job_dir, tmp_path / "a")
    names = {entry.name for entry in layer.entries}
    assert "job/extras/notes.txt" in names
    assert "job/extras/scratch.tmp" not in names


def test_ignore_rules_match_like_dockerignore():
    rules = IgnoreRules(["data/raw", "*.ckpt", "**/cache/**", "!keep.ckpt"])
    assert rules.ignored("data/raw/a.jsonl")  # a folder rule covers what is inside
    assert rules.ignored("model.ckpt") and not rules.ignored("sub/model.ckpt")
    assert not rules.ignored("keep.ckpt")
    assert rules.ignored("x/cache/y/z.bin")
    assert rules.ignored("pkg/__pycache__/m.pyc")
    assert not rules.ignored("data/raw.jsonl")


def test_a_model_folder_outside_the_job_folder_ships_under_external(job_dir, tmp_path):
    model = tmp_path / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "weights.bin").write_bytes(b"\0" * 1000)
    job = yaml.safe_load((job_dir / "job.yaml").read_text())
    job["model"]["name_or_path"] = str(model)
    (job_dir / "job.yaml").write_text(yaml.safe_dump(job))
    _, layer, _ = build(job_dir, tmp_path / "a")
    assert layer.spec.model.name_or_path.startswith("/opt/launch/job/external/")
    assert layer.spec.model.name_or_path.endswith("/tiny")
    inside = layer.spec.model.name_or_path.removeprefix("/opt/launch/")
    assert {f"{inside}/config.json", f"{inside}/weights.bin"} <= {e.name for e in layer.entries}


def test_a_context_over_the_limit_names_the_biggest_files(job_dir, tmp_path):
    (job_dir / "extras" / "huge.bin").write_bytes(os.urandom(3 << 20))
    job = yaml.safe_load((job_dir / "job.yaml").read_text())
    job["image"]["max_context_mb"] = 2
    (job_dir / "job.yaml").write_text(yaml.safe_dump(job))
    with pytest.raises(LaunchError, match=r"over image.max_context_mb \(2\); biggest: "
                                          r"job/extras/huge.bin \(3 MiB\)"):
        build(job_dir, tmp_path / "a")


def test_the_base_and_torch_build_follow_the_spec(job_dir):
    spec = load_spec(job_dir / "job.yaml")
    cpu = Recipe.for_spec(spec)
    gpu = Recipe.for_spec(spec.model_copy(update={
        "scale": spec.scale.model_copy(update={"gpus_per_worker": 1})}))
    assert (cpu.base, cpu.torch_index_url) == (CPU_BASE, CPU_TORCH_INDEX)
    assert (gpu.base, gpu.torch_index_url) == (GPU_BASE, "")
    # DeepSpeed's CPU collectives come built in CPU images only: GPU runs use NCCL.
    assert cpu.build_args["PREBUILD_CPU_OPS"] == "1" and gpu.build_args["PREBUILD_CPU_OPS"] == ""
    assert cpu.runtime_tag != gpu.runtime_tag
    assert "torch==2.13.0" in cpu.requirements.splitlines()
