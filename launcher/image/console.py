"""Build feedback on the terminal: builder output on stderr, rich progress bars for uploads."""

from __future__ import annotations

import sys
from collections.abc import Callable

from launcher.image.build import Feedback


def terminal_feedback() -> Feedback:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    console = Console(stderr=True, highlight=False)

    def log(line: str) -> None:
        console.print(line, style="dim", markup=False)

    def transfer(what: str, total: int) -> Callable[[int], None]:
        progress = Progress(TextColumn(what), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), console=console, transient=False,
                            disable=not sys.stderr.isatty())
        task = progress.add_task(what, total=total)

        def advance(count: int) -> None:
            if not progress.live.is_started:  # shown from the first byte: a skipped upload
                progress.start()              # (the registry has the blob) shows nothing
            progress.update(task, advance=count)
            if progress.tasks[task].finished:
                progress.stop()

        return advance

    return Feedback(log=log, transfer=transfer)
