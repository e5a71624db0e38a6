"""Progress lines: an epoch of training, a download, a folder of images being decoded.

    bar = Progress(50000, "Epoch 1/10", unit="img")
    bar.update(64, loss=2.30, accuracy=0.11)     # after each batch: running means
    bar.close(loss=1.52, accuracy=0.45, val_loss=1.31, val_accuracy=0.53)

    meter = Progress(total_bytes, "downloading cifar-10-python.tar.gz", unit="bytes",
                     mode="line", rate=False, delay=0.5, stream=sys.stderr)

On a terminal (``stream.isatty()``) the line is redrawn in place with ``\\r`` at most ten
times a second; ``mode="bar"`` draws a bar under the label, which gets a line of its own::

    Epoch 1/10
    [=======>......................]  12800/50000  loss: 1.9034  accuracy: 0.3011  812 img/s  ETA 0:45

``mode="line"`` redraws the label and the count (``decoding images in ...: 2000 / 50000
images``). Elsewhere (a log file, a CI console) both write a plain line each time another
``every`` (10 %) of the total is done, or, with no total known, each 10 MB or 1000 units,
and the end line at ``close``. ``mode="epoch"`` writes the end line only (Keras'
``verbose=2``); ``"silent"`` nothing. The end line gives the elapsed time instead of the ETA.

``delay``: nothing is written before that many seconds have passed, so quick work stays
silent (its end line too); once they have, the next update writes a line at once.

Values shown beside the count (running means of the loss, ...) can be given as a function
that ``update`` calls only when it writes a line: reading a running sum kept on a GPU waits
for the device, and a line is written far less often than a batch is trained.

This module imports nothing from minires: the training loop, ``Model.fit`` and the data
loaders all use it.
"""

from __future__ import annotations

import sys
import time

_MODES = ("bar", "line", "epoch", "silent")
_REDRAW_SECONDS = 0.1
# Plain lines with no total known: one per this many units.
_STEP_WITHOUT_TOTAL = {"bytes": 10_000_000}
_DEFAULT_STEP_WITHOUT_TOTAL = 1000


def format_duration(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_bytes(n: float) -> str:
    """999 B, 1.0 kB, 170.5 MB (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # unreachable; keeps type checkers content


def format_values(values: dict) -> str:
    return "  ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


class Progress:
    """Progress of ``total`` units (None: unknown) of work, with values shown beside it.

    label: what is being done ("Epoch 1/10", "downloading x"). unit: "img", "images", ... or
    "bytes" (amounts then print as sizes: 12.3 MB). mode: "bar", "line", "epoch" or "silent"
    (see the module doc). rate: show units per second and the ETA; the unit is then named in
    the rate (``812 img/s``) and the count is a bare fraction (``12800/50000``), otherwise the
    count names it (``2000 / 50000 images``). delay: seconds of silence first, or None.
    """

    def __init__(self, total: int | None, label: str = "", unit: str = "img", mode: str = "bar", *,
                 rate: bool = True, delay: float | None = None, every: float = 0.1, stream=None,
                 width: int = 30, interactive: bool | None = None, clock=time.monotonic):
        if mode not in _MODES:
            raise ValueError(f"Progress: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
        self.total = None if total is None else max(int(total), 0)
        self.label = label
        self.unit = unit
        self.mode = mode
        self.rate = rate
        self.delay = delay
        self.every = every
        self.stream = sys.stdout if stream is None else stream
        self.width = width
        self.interactive = (bool(getattr(self.stream, "isatty", lambda: False)())
                            if interactive is None else interactive)
        self._clock = clock
        self.done = 0
        self.values: dict = {}
        self._pending = None           # a function giving the latest values, not yet called
        self._start = clock()
        self._last_draw = None
        self._next_fraction = every
        self._next_count = _STEP_WITHOUT_TOTAL.get(unit, _DEFAULT_STEP_WITHOUT_TOTAL)
        self._drawn_width = 0
        self._shown = False            # anything written yet

    # -- text ---------------------------------------------------------------------------------

    def _amount(self, n: float) -> str:
        return format_bytes(n) if self.unit == "bytes" else f"{n:.0f}"

    def _count(self) -> str:
        done = self._amount(self.done)
        if self.rate:
            if self.total is None:
                return done
            total = self._amount(self.total)
            return f"{done:>{len(total)}}/{total}"
        text = done if self.total is None else f"{done} / {self._amount(self.total)}"
        return text if self.unit == "bytes" else f"{text} {self.unit}"

    def _has_bar(self) -> bool:
        return self.mode == "bar" and self.interactive and bool(self.total)

    def _bar(self) -> str:
        filled = self.width * min(self.done, self.total) // self.total
        arrow = ">" if filled < self.width else ""
        pad = self.width - filled - len(arrow)
        return "[" + "=" * filled + arrow + "." * pad + "]"

    def line(self, final: bool = False, now: float | None = None) -> str:
        """The current line of text (without a newline)."""
        now = self._clock() if now is None else now
        self._take_pending()
        if self._has_bar():
            parts = [self._bar(), self._count()]
        else:
            parts = [f"{self.label}: {self._count()}" if self.label else self._count()]
        if self.values:
            parts.append(format_values(self.values))
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.rate:
            parts.append(f"{format_bytes(rate)}/s" if self.unit == "bytes" else f"{rate:.0f} {self.unit}/s")
        if final:
            parts.append(format_duration(elapsed))
        elif self.rate and rate > 0 and self.total is not None:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
        return "  ".join(parts)

    # -- writing ------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if not self._shown and self._has_bar() and self.label:
            self.stream.write(self.label + "\n")
        self._shown = True
        self.stream.write(text)
        self.stream.flush()

    def _redraw(self, text: str) -> None:
        pad = max(self._drawn_width - len(text), 0)
        self._write("\r" + text + " " * pad)
        self._drawn_width = len(text)

    def _draw(self, now: float) -> None:
        text = self.line(now=now)
        if self.interactive:
            self._redraw(text)
            self._last_draw = now
        else:
            self._write(text + "\n")

    def _take_pending(self) -> None:
        if self._pending is not None:
            self.values.update(self._pending())
            self._pending = None

    # -- updates ------------------------------------------------------------------------------

    def update(self, n: int, values=None, **named) -> None:
        """Record ``n`` more units done, and write a line if it is time to.

        ``values`` (a dict, or a function returning one, called only if a line is written)
        and ``named`` replace the values shown.
        """
        self.done += n
        if callable(values):
            self._pending = values
        elif values:
            self._pending = None
            self.values.update(values)
        if named:
            self._take_pending()
            self.values.update(named)
        if self.mode in ("epoch", "silent"):
            return
        now = self._clock()
        if self.delay is not None and not self._shown:
            if now - self._start >= self.delay:
                self._draw(now)
            return
        if self.interactive:
            at_end = self.total is not None and self.done >= self.total
            if self._last_draw is None or now - self._last_draw >= _REDRAW_SECONDS or at_end:
                self._draw(now)
        elif self._plain_line_due():
            self._draw(now)

    def _plain_line_due(self) -> bool:
        """Another ``every`` of the total done (no line at the end: ``close`` writes that one)."""
        if self.total is None:
            if self.done < self._next_count:
                return False
            step = _STEP_WITHOUT_TOTAL.get(self.unit, _DEFAULT_STEP_WITHOUT_TOTAL)
            self._next_count = (self.done // step + 1) * step
            return True
        if not self.total or self.done >= self.total:
            return False
        fraction = self.done / self.total + 1e-9       # 0.3 reaches 3 * 0.1 = 0.30000000000000004
        if fraction < self._next_fraction:
            return False
        self._next_fraction = (int(fraction / self.every) + 1) * self.every
        return True

    def close(self, **values) -> None:
        """The end line: the final values (e.g. with val_loss) and the elapsed time."""
        self._take_pending()
        self.values.update(values)
        now = self._clock()
        quick = self.delay is not None and not self._shown and now - self._start < self.delay
        if self.mode == "silent" or quick:
            return
        text = self.line(final=True, now=now)
        if self.mode != "epoch" and self.interactive:
            self._redraw(text)
            self._write("\n")
        else:
            self._write(text + "\n")
