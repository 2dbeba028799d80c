"""`launch init --task T`: every starter validates as written and its sample rows split into
train and validation the way the job will split them."""

import pytest

from launcher.spec.load import load_spec
from launcher.starter import TASKS, write_starter


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_starter_validates_and_its_samples_split(cli, tmp_path, task):
    from jobs.data import load_splits

    made = write_starter(tmp_path / task, task)
    text = made.job_file.read_text()
    assert f"task: {task}\n" in text and "__" not in text  # every marker filled in
    assert cli("validate", made.job_file).stdout.strip() == f"{made.job_file}: OK"

    spec = load_spec(made.job_file)
    splits = load_splits(spec.data, spec.task, spec.training.seed)
    assert len(splits.train) and len(splits.validation)
    if task == "seq_classification":  # stratified: both classes are evaluated
        assert set(splits.validation["label"]) == {"positive", "negative"}
