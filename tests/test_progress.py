"""The training progress bar: redrawn on a terminal, plain lines in a log."""

import io

import pytest

from minires.progress import ProgressBar, format_duration


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_format_duration():
    assert format_duration(7.4) == "0:07"
    assert format_duration(754) == "12:34"
    assert format_duration(3723) == "1:02:03"


def test_terminal_bar_redraws_one_line():
    stream, clock = io.StringIO(), FakeClock()
    bar = ProgressBar(1000, header="Epoch 1/2", stream=stream, interactive=True, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        bar.update(100, loss=0.5, accuracy=0.25)
    bar.close(val_loss=0.4)
    text = stream.getvalue()
    assert text.startswith("Epoch 1/2\n")
    assert text.count("\r") == 11 and text.count("\n") == 2
    assert "[===============>" in text and "ETA 0:05" in text   # half way, after 5 s at 100 img/s
    last = text.rsplit("\r", 1)[1]
    assert "[==============================]" in last and "1000/1000" in last
    assert "loss: 0.5000" in last and "accuracy: 0.2500" in last and "val_loss: 0.4000" in last
    assert "100 img/s" in last and "0:10" in last


def test_plain_lines_every_tenth_when_not_a_terminal():
    stream, clock = io.StringIO(), FakeClock()
    bar = ProgressBar(1000, header="Epoch 3/9", stream=stream, interactive=False, clock=clock)
    for _ in range(100):
        clock.now += 0.1
        bar.update(10, loss=1.0)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10                                      # 10%, ..., 90%, and the end
    assert all(line.startswith("Epoch 3/9") for line in lines)
    assert "\r" not in stream.getvalue()
    assert lines[0].split()[2] == "100/1000"


@pytest.mark.parametrize("mode, count", [("epoch", 1), ("silent", 0)])
def test_epoch_and_silent_modes(mode, count):
    stream = io.StringIO()
    bar = ProgressBar(10, header="Epoch 1/1", stream=stream, mode=mode)
    bar.update(10, loss=0.1)
    bar.close()
    assert len(stream.getvalue().splitlines()) == count
