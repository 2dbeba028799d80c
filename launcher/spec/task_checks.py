"""What `launch validate` checks of the task against the local data file and model folder:
a classifier has at least two classes, seq2seq has an encoder-decoder, the slice column exists,
chat rows hold conversations.

Reads the data file's bounded sample (data_sample; the launcher never imports `datasets`);
other sources, and what only the whole file shows, are checked when the job loads them.
"""

from __future__ import annotations

import json
from pathlib import Path

from launcher.spec.chat import conversation_problem, has_assistant_turn
from launcher.spec.data_sample import Sample
from launcher.spec.models import JobSpec

Loc = tuple[str, ...]
CLASS_FIELDS = {"seq_classification": "label_field", "token_classification": "tags_field"}
# Chat rows checked at validate: enough to catch a wrong column or format. The job checks every
# row's format, and drops a row without an assistant turn (nothing to learn) rather than fail.
CHAT_ROWS_CHECKED = 20


def task_problems(spec: JobSpec, sample: Sample) -> list[tuple[Loc, str]]:
    """(location, message) for each problem; `spec` has its local paths resolved, `sample` is
    its data file's (empty for other sources)."""
    problems = _model_fits_task(spec)
    rows = sample.rows
    if not rows:
        return problems
    slice_field = spec.data.slice_field
    if slice_field and slice_field not in rows[0]:
        problems.append((("data", "slice_field"), f"column `{slice_field}` is not in "
                         f"{Path(spec.data.path).name} (it has: {', '.join(sorted(rows[0]))})"))
    problems += _chat_rows(spec, rows)
    field = CLASS_FIELDS.get(spec.task)
    column = getattr(spec.data, field) if field else None
    if column and column in rows[0]:
        values = [row.get(column) for row in rows]
        if spec.task == "token_classification":
            values = [tag for tags in values if isinstance(tags, list) for tag in tags]
        classes = {str(value) for value in values if value is not None}
        if len(classes) < 2 and sample.complete:  # a longer file may have more further down
            problems.append((("data", field), f"column `{column}` holds {len(classes)} "
                             f"distinct value(s) ({', '.join(sorted(classes)) or 'none'}); "
                             f"{spec.task} needs at least 2 classes"))
    return problems


def _chat_rows(spec: JobSpec, rows: list[dict]) -> list[tuple[Loc, str]]:
    column = spec.data.messages_field
    if column is None or spec.task != "causal_lm" or column not in rows[0]:
        return []  # the spec check reports another task, the column check a missing column
    for number, row in enumerate(rows[:CHAT_ROWS_CHECKED], start=1):
        messages = row.get(column)
        problem = conversation_problem(messages)
        if problem is None and not has_assistant_turn(messages):
            problem = "no assistant message, so nothing to learn"
        if problem:
            return [(("data", "messages_field"), f"`{column}` in row {number} of "
                     f"{Path(spec.data.path).name}: {problem}")]
    return []


def _model_fits_task(spec: JobSpec) -> list[tuple[Loc, str]]:
    config_file = Path(spec.model.name_or_path) / "config.json"
    if spec.task != "seq2seq" or not config_file.is_file():
        return []  # a hub model's config is not fetched at validate
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("is_encoder_decoder"):
        return []
    kind = config.get("model_type", "unknown")
    return [(("model", "name_or_path"), f"task seq2seq needs an encoder-decoder model (e.g. "
             f"T5, BART), not a {kind} model: use task causal_lm for a decoder-only model")]
