"""The training progress display: one bar per epoch, redrawn in place on a terminal.

    bar = ProgressBar(total=50000, header="Epoch 1/10", unit="img")
    bar.update(64, loss=2.30, accuracy=0.11)     # after each batch: running means
    bar.close(loss=1.52, accuracy=0.45, val_loss=1.31, val_accuracy=0.53)

On a terminal (``stream.isatty()``) the line is redrawn with ``\\r`` at most ten times a
second:

    Epoch 1/10
    [=======>......................]  12800/50000  loss: 1.9034  accuracy: 0.3011  812 img/s  ETA 0:45

Elsewhere (a log file, a CI console) a plain line is written each time another ``every``
(10 %) of the total is done, and at the end; ``mode="epoch"`` writes the end line only
(Keras' ``verbose=2``). The end line gives the elapsed time instead of the ETA.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_values(values: dict) -> str:
    return "  ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


class ProgressBar:
    """Progress of ``total`` units (images) through one epoch, with running values.

    mode: "bar" (a bar on a terminal, 10 % lines elsewhere), "epoch" (the end line only),
    or "silent".
    """

    def __init__(self, total: int, header: str = "", unit: str = "img", mode: str = "bar",
                 stream=None, width: int = 30, every: float = 0.1, interactive: bool | None = None,
                 clock=time.monotonic):
        if mode not in ("bar", "epoch", "silent"):
            raise ValueError(f"ProgressBar: mode must be 'bar', 'epoch' or 'silent', got {mode!r}")
        self.total = max(int(total), 0)
        self.header = header
        self.unit = unit
        self.mode = mode
        self.stream = sys.stdout if stream is None else stream
        self.width = width
        self.every = every
        self.interactive = (bool(getattr(self.stream, "isatty", lambda: False)())
                            if interactive is None else interactive)
        self._clock = clock
        self.done = 0
        self.values: dict = {}
        self._start = clock()
        self._last_draw = -1.0
        self._next_fraction = every
        self._drawn_width = 0
        if mode == "bar" and header and self.interactive:
            self._write(header + "\n")

    # -- text ---------------------------------------------------------------------------------

    def _rate(self, now: float) -> float:
        elapsed = now - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def _bar(self) -> str:
        if not self.total:
            return ""
        filled = self.width * min(self.done, self.total) // self.total
        arrow = ">" if filled < self.width else ""
        pad = self.width - filled - len(arrow)
        return "[" + "=" * filled + arrow + "." * pad + "]"

    def _count(self) -> str:
        digits = len(str(self.total))
        return f"{self.done:>{digits}}/{self.total}"

    def line(self, final: bool = False, now: float | None = None) -> str:
        """The current line of text (without a newline)."""
        now = self._clock() if now is None else now
        rate = self._rate(now)
        parts = []
        if self.interactive and self.mode == "bar":
            parts.append(self._bar())
        elif self.header:
            parts.append(self.header)
        parts.append(self._count())
        if self.values:
            parts.append(format_values(self.values))
        parts.append(f"{rate:.0f} {self.unit}/s")
        if final:
            parts.append(f"{format_duration(now - self._start)}")
        elif rate > 0:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
        return "  ".join(parts)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    # -- updates ------------------------------------------------------------------------------

    def update(self, n: int, **values) -> None:
        """Record ``n`` more units done; ``values`` (running means) replace the shown ones."""
        self.done += n
        self.values.update(values)
        if self.mode != "bar":
            return
        now = self._clock()
        if self.interactive:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._redraw(self.line(now=now))
                self._last_draw = now
            return
        if self.total and self.done < self.total and self.done / self.total >= self._next_fraction:
            self._write(self.line(now=now) + "\n")
            fraction = self.done / self.total
            self._next_fraction = (int(fraction / self.every + 1e-9) + 1) * self.every

    def _redraw(self, text: str) -> None:
        pad = max(self._drawn_width - len(text), 0)
        self._write("\r" + text + " " * pad)
        self._drawn_width = len(text)

    def close(self, **values) -> None:
        """End the epoch: show the final values (e.g. with val_loss) and the elapsed time."""
        self.values.update(values)
        if self.mode == "silent":
            return
        text = self.line(final=True)
        if self.mode == "bar" and self.interactive:
            self._redraw(text)
            self._write("\n")
        else:
            self._write(text + "\n")
