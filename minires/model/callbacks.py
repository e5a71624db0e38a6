"""What ``fit`` reports to: Keras' ``Callback`` hooks, and the ``History`` it returns."""

from __future__ import annotations


class History:
    """What ``fit`` returns: ``history`` maps "loss", "accuracy", "val_loss", ... to lists."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict = {}
        self.model = None

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


class Callback:
    """Base of fit callbacks; every hook is optional (plain objects with some hooks work too)."""

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


def hooks(callbacks, name: str) -> list:
    """The callbacks' methods called ``name``, leaving out ``Callback``'s empty ones.

    So a batch's logs, which read the running totals back from the device, are made only
    when some callback will look at them.
    """
    base = getattr(Callback, name)
    methods = (getattr(cb, name, None) for cb in callbacks)
    return [m for m in methods if m is not None and getattr(m, "__func__", None) is not base]


def call_hooks(callbacks, name: str, *args) -> None:
    for method in hooks(callbacks, name):
        method(*args)
