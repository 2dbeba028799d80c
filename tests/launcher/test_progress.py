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


def test_on_a_terminal_the_bar_shows_step_loss_speed_and_eta(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("launcher.progress.time.monotonic", clock)
    screen = io.StringIO()
    with LogView(screen, live=True) as view:
        view.feed("loading the model\n" + LINES[0][:30])  # chunks split lines anywhere
        view.feed(LINES[0][30:] + "\n")
        clock.now += 20  # 10 more steps in 20 s: 60 steps left take 120 s
        view.feed(LINES[2] + "\nlast line without newline")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "loading the model" in text and "last line without newline" in text
    final = text.rstrip().splitlines()[-1]
    assert re.search(r"step 20/80 .* loss 4\.5 10010 tokens/s ETA 0:02:00", final), final


def test_piped_output_is_the_plain_log():
    out = io.StringIO()  # not a terminal
    with LogView(out) as view:
        for line in LINES:
            view.feed(line + "\n")
    assert out.getvalue() == "".join(line + "\n" for line in LINES)
