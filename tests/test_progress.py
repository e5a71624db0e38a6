"""The progress printer: a training bar redrawn on a terminal, download and decoding counts,
plain lines in a log, silence for quick work, values read only when a line is written."""

import io

import pytest

from minires.progress import Progress, format_bytes, format_duration


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_format_duration():
    assert format_duration(7.4) == "0:07"
    assert format_duration(754) == "12:34"
    assert format_duration(3723) == "1:02:03"


def test_format_bytes():
    assert format_bytes(999) == "999 B"
    assert format_bytes(1000) == "1.0 kB"
    assert format_bytes(170_498_071) == "170.5 MB"
    assert format_bytes(3e12) == "3000.0 GB"


# --- training: a bar per epoch --------------------------------------------------------------

def test_terminal_bar_redraws_one_line():
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, "Epoch 1/2", stream=stream, interactive=True, clock=clock)
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
    bar = Progress(1000, "Epoch 3/9", stream=stream, interactive=False, clock=clock)
    for _ in range(100):
        clock.now += 0.1
        bar.update(10, loss=1.0)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10                                      # 10%, ..., 90%, and the end
    assert all(line.startswith("Epoch 3/9") for line in lines)
    assert "\r" not in stream.getvalue()
    assert lines[0].split()[2] == "100/1000"
    assert [line.split()[2] for line in lines[:9]] == [f"{k}00/1000" for k in range(1, 10)]


@pytest.mark.parametrize("mode, count", [("epoch", 1), ("silent", 0)])
def test_epoch_and_silent_modes(mode, count):
    stream = io.StringIO()
    bar = Progress(10, "Epoch 1/1", stream=stream, mode=mode)
    bar.update(10, loss=0.1)
    bar.close()
    assert len(stream.getvalue().splitlines()) == count


def test_values_from_a_function_are_read_only_when_a_line_is_written():
    """Running means kept on a GPU are fetched once per line, not once per batch."""
    calls = []

    def running_means():
        calls.append(bar.done)
        return {"loss": 1.0 / bar.done}

    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, "Epoch 1/1", stream=stream, interactive=False, clock=clock)
    for _ in range(100):
        clock.now += 0.1
        bar.update(10, running_means)
    assert calls == [k * 100 for k in range(1, 10)]              # the nine plain lines
    bar.close()
    assert calls[-1] == 1000 and len(calls) == 10
    assert "loss: 0.0010" in stream.getvalue().splitlines()[-1]

    calls.clear()
    bar = Progress(1000, "Epoch 1/1", stream=stream, mode="epoch", clock=clock)
    for _ in range(100):
        bar.update(10, running_means)
    assert calls == []
    bar.close()
    assert calls == [1000]


def test_terminal_redraws_at_most_ten_times_a_second():
    stream, clock = _Terminal(), FakeClock()
    bar = Progress(1000, "Epoch 1/1", stream=stream, clock=clock)
    for _ in range(39):
        clock.now += 1 / 32                                      # exact in binary
        bar.update(25)
    assert stream.getvalue().count("\r") == 10                   # every 4th update: 1, 5, ..., 37
    clock.now += 1 / 32
    bar.update(25)
    assert stream.getvalue().count("\r") == 11                   # and when the total is reached


# --- downloads and decoding: counts, bytes, unknown totals ----------------------------------

def test_progress_writes_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    meter = Progress(1000, "downloading x", "bytes", "line", rate=False, delay=0.0, stream=stream)
    for _ in range(100):
        meter.update(10)
    meter.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 11, lines                # one per 10 %, not one per update
    assert lines[-1].startswith("downloading x: 1.0 kB / 1.0 kB")


def test_progress_redraws_one_line_on_a_terminal():
    stream = _Terminal()
    meter = Progress(3, "decoding", "images", "line", rate=False, delay=0.0, stream=stream)
    meter.update(3)
    meter.close()
    assert stream.getvalue().startswith("\rdecoding: 3 / 3 images")
    assert stream.getvalue().endswith("\n")


def test_progress_stays_silent_for_quick_work():
    stream = io.StringIO()
    meter = Progress(10, "quick", "items", "line", rate=False, delay=60.0, stream=stream)
    meter.update(10)
    meter.close()
    assert stream.getvalue() == ""


def test_progress_speaks_once_the_delay_has_passed():
    stream, clock = io.StringIO(), FakeClock()
    meter = Progress(100, "slow", "items", "line", rate=False, delay=1.0, stream=stream, clock=clock)
    meter.update(1)
    clock.now = 2.0
    meter.update(1)
    meter.close()
    assert stream.getvalue().splitlines() == ["slow: 2 / 100 items", "slow: 2 / 100 items  0:02"]


def test_unknown_total_writes_a_line_per_10_mb_or_1000_units():
    stream, clock = io.StringIO(), FakeClock()
    meter = Progress(None, "downloading y", "bytes", "line", rate=False, stream=stream, clock=clock)
    for _ in range(25):
        meter.update(1_000_000)
    clock.now = 5.0
    meter.close()
    assert stream.getvalue().splitlines() == ["downloading y: 10.0 MB", "downloading y: 20.0 MB",
                                              "downloading y: 25.0 MB  0:05"]
    stream = io.StringIO()
    meter = Progress(None, "scanning", "files", stream=stream, clock=clock)
    for _ in range(2500):
        meter.update(1)
    assert [line.split()[1] for line in stream.getvalue().splitlines()] == ["1000", "2000"]


def test_a_rate_in_bytes_per_second():
    stream, clock = io.StringIO(), FakeClock()
    meter = Progress(4_000_000, "downloading z", "bytes", stream=stream, clock=clock)
    clock.now = 2.0
    meter.update(1_000_000)
    assert stream.getvalue() == "downloading z: 1.0 MB/4.0 MB  500.0 kB/s  ETA 0:06\n"


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="Progress: mode must be one of 'bar', 'line'"):
        Progress(10, mode="fancy")
