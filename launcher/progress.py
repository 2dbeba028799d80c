"""A followed run's log on the terminal: launch's own lines (`[launch] …`), with a live
training progress bar (step/total, loss, tokens/s, ETA) kept under them, parsed from the job's
progress lines (`[launch] step 10/85 epoch 0.12 loss 5.386 lr 0.003 tokens/s 9852`,
launcher/contract.py). Ray's and the libraries' lines show too with `verbose`; all of them are
in the run's logs/driver.log either way.

Only on a terminal: piped into a file or another program, the log passes through unchanged.
"""

from __future__ import annotations

import time
from typing import TextIO

from launcher.contract import LOG_PREFIX, StepReport, parse_progress


class LogView:
    """Write log chunks to `stream`; on a terminal, with the progress bar under them."""

    def __init__(self, stream: TextIO, live: bool | None = None, verbose: bool = False):
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.verbose = verbose
        self._pending = ""
        self._shown = {"loss": "-", "tokens": "-"}  # an eval line leaves the last ones up
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
        if self.verbose or LOG_PREFIX in line:
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
        if report.loss is not None:
            self._shown["loss"] = f"{report.loss:.4g}"
        if report.tokens_per_s is not None:
            self._shown["tokens"] = f"{report.tokens_per_s:.0f}"
        fields = {**self._shown, "eta": "-:--:--" if eta is None else _clock(eta)}
        if self._bar is None:
            self._start_bar()
        self._bar.update(self._task, total=report.total, completed=report.step, **fields)

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("step {task.completed:.0f}/{task.total:.0f}"), BarColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tokens]} tokens/s"),
            TextColumn("ETA {task.fields[eta]}"), console=self._console, transient=False)
        self._task = self._bar.add_task("train", loss="-", tokens="-", eta="-:--:--")
        self._bar.start()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
