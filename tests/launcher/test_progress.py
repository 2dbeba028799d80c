"""`launch logs -f` on a terminal: the job's progress lines drive a live bar; elsewhere the
log passes through untouched."""

from __future__ import annotations

import io
import re

from launcher.contract import StepReport, parse_progress
from launcher.progress import LogView

LINES = [("(RayTrainWorker pid=42) [launch] step 10/80 epoch 0.12 loss 5.386 lr 0.003 "
          "tokens/s 9852"),
         "[launch] step 40/80 epoch 0.5 eval_loss 4.2 mean train loss 4.9",
         "[launch] step 20/80 epoch 0.25 loss 4.5 lr 0.002 tokens/s 10010"]


def test_progress_lines_parse_to_their_numbers():
    assert parse_progress(LINES[0]) == StepReport(10, 80, loss=5.386, tokens_per_s=9852)
    # `mean train loss` is not the step's loss; eval reports carry eval_loss only.
    assert parse_progress(LINES[1]) == StepReport(40, 80, eval_loss=4.2)
    assert parse_progress("Epoch 1: loss went down") is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _screen(monkeypatch, chunks: list[str], verbose: bool = False) -> str:
    """What a terminal shows after `chunks` (10 more steps in each 20 s), escapes removed."""
    clock = FakeClock()
    monkeypatch.setattr("launcher.progress.time.monotonic", clock)
    screen = io.StringIO()
    with LogView(screen, live=True, verbose=verbose) as view:
        for chunk in chunks:
            view.feed(chunk)
            clock.now += 20
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())


def test_on_a_terminal_the_bar_shows_step_loss_speed_and_eta(monkeypatch):
    text = _screen(monkeypatch, [  # chunks split lines anywhere
        "loading the model\n" + LINES[0][:30], LINES[0][30:] + "\n", LINES[2] + "\n"])
    final = text.rstrip().splitlines()[-1]
    # 10 steps in 20 s: the 60 left take 120 s
    assert re.search(r"step 20/80 .* loss 4\.5 10010 tokens/s ETA 0:02:00", final), final
    assert LINES[2] in text
    assert "loading the model" not in text  # Ray's and the libraries' lines: only with -v


def test_verbose_shows_every_line(monkeypatch):
    text = _screen(monkeypatch, ["loading the model\n", LINES[0] + "\nlast line, no newline"],
                   verbose=True)
    assert "loading the model" in text and "last line, no newline" in text


def test_the_first_frame_counts_whole_steps_and_an_eval_line_keeps_loss_and_speed(monkeypatch):
    first = _screen(monkeypatch, [LINES[0] + "\n"]).rstrip().splitlines()[-1]
    assert re.search(r"step 10/80 ", first), first  # not 10/80.0
    after_eval = _screen(monkeypatch, [LINES[0] + "\n", LINES[1] + "\n"]).rstrip().splitlines()[-1]
    assert re.search(r"step 40/80 .* loss 5\.386 9852 tokens/s", after_eval), after_eval


def test_piped_output_is_the_plain_log():
    out = io.StringIO()  # not a terminal
    with LogView(out) as view:
        for line in LINES:
            view.feed(line + "\n")
    assert out.getvalue() == "".join(line + "\n" for line in LINES)
