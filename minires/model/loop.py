"""One epoch of training: the loop that ``Model.fit`` and ``minires.train.Trainer`` both run.

    loop = EpochLoop(model, x, y, batch_size=64, order=rng.permutation(len(x)))
    finished = loop.run(bar, callbacks, stop=lambda: interrupt.requested)
    logs = loop.logs()            # {"loss": ..., "accuracy": ...}: means over the epoch

Each batch takes the next examples in ``order`` (in sequence when None), passes them through
``transform`` (the trainer scales and augments there), moves them to the backend, and runs
forward, backward and the optimizer's update; then the batch's loss and correct predictions
join the running totals, the progress line and the callbacks' batch hooks hear of it, and
``stop`` is asked whether to stop after this batch.

Where the epoch stands (``next_batch``, ``totals``) stays in the object: a loop stopped after
a batch goes on from the next one when ``run`` is called again, or when a trainer rebuilds it
from a checkpoint.

Nothing in a batch waits for the device. Its loss and its count of correct predictions stay
0-d arrays where the model's arrays live, and ``RunningTotals`` adds them there; the sums are
read back only by ``logs()``, which the loop calls when the progress line is written (it hands
``Progress.update`` the function, not the values), for callbacks that have a batch-end hook,
and at the end of the epoch. On CuPy the host thus queues the next batch's kernels while the
device still runs this one's.

``check_finite=True`` (``minires train`` sets it; ``fit``, like Keras', trains on through a
NaN) raises ``NonFiniteLossError`` once the loss becomes NaN or infinite. The running loss
sum is non-finite from the first such batch on, so checking it is checking every batch: on
the CPU backends, where it costs nothing, after each batch; on CuPy, where reading it waits for
the device, whenever ``logs()`` reads it anyway (a progress line, a batch-end hook, the end of
the epoch), so a diverged batch is caught at the latest when the epoch ends.
"""

from __future__ import annotations

import math

import numpy

from .callbacks import call_hooks, hooks


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or weight); what follows it is meaningless."""


class RunningTotals:
    """Sums over an epoch's batches: examples, loss x examples, correct predictions.

    The loss sum is float64 whatever the model's dtype, and ``add`` does what ``+=`` on
    Python floats did: a float32 loss times a batch size is exact in float64, and each
    addition rounds once. A checkpoint keeps ``fetch()``'s Python numbers, and a resumed
    epoch's totals start from them, so its means equal those of an epoch never stopped.
    """

    def __init__(self, samples: int = 0, loss_sum: float = 0.0, correct: int = 0):
        self.samples = int(samples)
        self.loss_sum = loss_sum       # a float, or a 0-d float64 array on the device
        self.correct = correct         # an int, or a 0-d integer array on the device

    def add(self, loss, correct, n: int) -> None:
        """One batch of ``n`` examples: its mean ``loss`` (0-d array) and ``correct`` count."""
        self.samples += n
        self.loss_sum = self.loss_sum + loss.astype("float64") * n
        self.correct = self.correct + correct

    def fetch(self) -> tuple[int, float, int]:
        """(samples, loss sum, correct) as Python numbers; waits for the device."""
        return self.samples, float(self.loss_sum), int(self.correct)

    def logs(self, metric_names, prefix: str = "") -> dict:
        """The means: {"loss": ..., "<metric>": fraction correct, ...}, keys with ``prefix``."""
        samples, loss_sum, correct = self.fetch()
        n = max(samples, 1)
        logs = {prefix + "loss": loss_sum / n}
        for name in metric_names:
            logs[prefix + name] = correct / n
        return logs


class EpochLoop:
    """One pass over (x, y) in mini-batches of ``batch_size``, training a compiled ``model``.

    order: the examples' order (None: as they are). transform: applied to each batch of x on
    the host before it moves to the backend. who: the method named in error messages.
    next_batch, totals: where a pass stopped earlier stands (a fresh pass by default).
    check_finite: raise NonFiniteLossError when the loss becomes non-finite (module doc).
    """

    def __init__(self, model, x, y, batch_size: int, order=None, transform=None, who: str = "fit",
                 next_batch: int = 0, totals: RunningTotals | None = None, check_finite: bool = False):
        model._require_compiled(who)
        self.model = model
        self.x = model._check_x(x, who)
        self.y = model._check_y(self.x, y, who)
        self.batch_size = batch_size
        self.order = order
        self.transform = transform
        self.who = who
        self.next_batch = next_batch
        self.totals = RunningTotals() if totals is None else totals
        self.check_finite = check_finite

    @property
    def steps(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def _index(self, step: int):
        start, stop = step * self.batch_size, min((step + 1) * self.batch_size, self.x.shape[0])
        return slice(start, stop) if self.order is None else self.order[start:stop]

    def run(self, bar, callbacks=(), stop=None) -> bool:
        """Train on the rest of the epoch, updating ``bar`` (a ``minires.progress.Progress``).

        callbacks: objects with Keras' batch hooks. stop: asked once after each batch; True
        ends the pass there. Returns True when the epoch is complete, False when stopped.
        """
        model = self.model
        batch_end = hooks(callbacks, "on_train_batch_end")
        while self.next_batch < self.steps:
            step = self.next_batch
            call_hooks(callbacks, "on_train_batch_begin", step, {})
            index = self._index(step)
            x_batch = self.x[index]
            if self.transform is not None:
                x_batch = self.transform(x_batch)
            loss, correct = model._train_batch(model._to_backend(x_batch),
                                               model._targets(self.y[index], self.who))
            count = x_batch.shape[0]
            self.totals.add(loss, correct, count)
            self.next_batch += 1
            if self.check_finite and isinstance(self.totals.loss_sum, (float, numpy.generic, numpy.ndarray)):
                self._check_finite(float(self.totals.loss_sum))
            bar.update(count, self.logs)
            if batch_end:
                logs = self.logs()
                for hook in batch_end:
                    hook(step, logs)
            if stop is not None and stop():
                return False
        return True

    def logs(self) -> dict:
        """The running means of the loss and the metrics over the batches trained so far."""
        logs = self.totals.logs(self.model.metrics_names_)
        if self.check_finite:
            self._check_finite(logs["loss"])
        return logs

    def _check_finite(self, loss_sum: float) -> None:
        if not math.isfinite(loss_sum):
            raise NonFiniteLossError(f"the loss became non-finite ({loss_sum}) by batch "
                                     f"{self.next_batch} of {self.steps}")
