"""A followed run's log on the terminal: the log lines, with a live training progress bar
(step/total, loss, tokens/s, ETA) kept under them, parsed from the job's progress lines
(`[launch] step 10/85 epoch 0.12 loss 5.386 lr 0.003 tokens/s 9852`, jobs/callbacks.py).

Only on a terminal: piped into a file or another program, the log passes through unchanged.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TextIO

PROGRESS_LINE = re.compile(r"\[launch\] step (?P<step>\d+)/(?P<total>\d+)\b(?P<rest>.*)")
NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf)"
FIELDS = {"loss": re.compile(rf"(?<!\w)(?<!train )loss {NUMBER}"),
          "eval_loss": re.compile(rf"\beval_loss {NUMBER}"),
          "tokens_per_s": re.compile(rf"\btokens/s {NUMBER}")}


@dataclass
class StepReport:
    step: int
    total: int
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_s: float | None = None


def parse_progress(line: str) -> StepReport | None:
    """The numbers of one progress line; None for any other log line."""
    match = PROGRESS_LINE.search(line)
    if match is None:
        return None
    found = {name: pattern.search(match["rest"]) for name, pattern in FIELDS.items()}
    return StepReport(step=int(match["step"]), total=int(match["total"]),
                      **{name: float(m[1]) for name, m in found.items() if m})


class LogView:
    """Write log chunks to `stream`; on a terminal, with the progress bar under them."""

    def __init__(self, stream: TextIO, live: bool | None = None):
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._pending = ""
        self._first: tuple[float, int] | None = None  # (time, step) of the first report seen
        self._bar = self._task = self._console = None

    def __enter__(self) -> LogView:
        return self

    def __exit__(self, *exc) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        if self._bar is not None:
            self._bar.stop()

    def feed(self, chunk: str) -> None:
        if not self.live:
            self.stream.write(chunk)
            self.stream.flush()
            return
        lines = (self._pending + chunk).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=True, highlight=False)
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)
        report = parse_progress(line)
        if report is not None:
            self._update(report)

    def _update(self, report: StepReport) -> None:
        now = time.monotonic()
        if self._first is None or report.step < self._first[1]:  # a resumed attempt restarts
            self._first = (now, report.step)
        started, first_step = self._first
        rate = (report.step - first_step) / (now - started) if now > started else 0.0
        eta = (report.total - report.step) / rate if rate > 0 else None
        fields = {"loss": "-" if report.loss is None else f"{report.loss:.4g}",
                  "tokens": "-" if report.tokens_per_s is None else f"{report.tokens_per_s:.0f}",
                  "eta": "-:--:--" if eta is None else _clock(eta)}
        if self._bar is None:
            self._start_bar()
        self._bar.update(self._task, total=report.total, completed=report.step, **fields)

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("step {task.completed}/{task.total}"), BarColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tokens]} tokens/s"),
            TextColumn("ETA {task.fields[eta]}"), console=self._console, transient=False)
        self._task = self._bar.add_task("train", loss="-", tokens="-", eta="-:--:--")
        self._bar.start()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
