"""The tasks a job can train (the spec's `task:`), and the steps every task shares: the class
names of a classification task, and rows → model inputs."""

from __future__ import annotations

from jobs.data import DataError
from jobs.tasks import causal_lm, seq2seq, seq_classification, token_classification
from jobs.tasks.base import IGNORE_INDEX, Task

TASKS = {task.name: task for task in (causal_lm.TASK, seq_classification.TASK,
                                      token_classification.TASK, seq2seq.TASK)}
SLICE = "slice"  # the column encode() keeps each row's slice value in, until it returns

__all__ = ["IGNORE_INDEX", "TASKS", "Task", "encode", "label_names", "task_for"]


def task_for(name: str) -> Task:
    return TASKS[name]


def label_names(task: Task, train_rows, data) -> list[str] | None:
    """A classification task's class names: every value in the training split, sorted.

    The order is fixed by the data, so class ids mean the same in every worker and every run
    on the same data; the names go into the model config (id2label), so the exported model
    carries them.
    """
    if task.label_field is None:
        return None
    column = getattr(data, task.label_field)
    values = train_rows[column]
    if task.labels_per_word:
        values = [value for row in values for value in row]
    names = sorted({str(value) for value in values if value is not None}, key=_number_first)
    if len(names) < 2:
        raise DataError(f"`{column}` has {len(names)} distinct value(s) in the training split "
                        f"({', '.join(names) or 'none'}); {task.name} needs at least 2 classes")
    return names


def encode(task: Task, rows, tokenizer, data, labels: list[str] | None = None):
    """Model inputs for `rows`; also, in the same order, each kept row's value of
    data.slice_field (as text), or None when the spec sets no slice field."""
    slice_field = data.slice_field

    def one(row):
        encoded = task.encode_row(row, tokenizer, data, labels)
        if slice_field:
            encoded[SLICE] = str(row[slice_field])
        return encoded

    encoded = rows.map(one, remove_columns=rows.column_names)
    if task.keep is not None:
        encoded = encoded.filter(task.keep)
    if not slice_field:
        return encoded, None
    return encoded.remove_columns(SLICE), encoded[SLICE]


def _number_first(name: str):
    """Numeric class names in numeric order (2 before 10), then the others alphabetically."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)
