"""Keras' training API of ``Model``: compile, fit, evaluate, predict, and their one-batch forms.

    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=10, validation_split=0.1)
    loss, accuracy = model.evaluate(x_test, y_test)
    probs = model.predict(x_test)

``Training`` is a base class of ``Model`` (as Keras 3's ``Trainer`` is of its ``Model``): the
methods here use the model's graph (``forward``, ``backward``, ``layers``) and add the loss,
the optimizer and the loops over data sets. An epoch of ``fit`` is ``minires.model.loop``'s
``EpochLoop``, the same loop ``minires train`` runs.

Training with cross-entropy on a softmax output is fused: the output layer runs up to its
logits z, and the loss is ``ops.softmax_cross_entropy`` of z, whose gradient (p - t) / N is
exact and stable; no gradient ever passes through a separate softmax. Binary cross-entropy
on a sigmoid output is fused the same way (``ops.sigmoid_binary_cross_entropy``). ``predict``
returns the probabilities.

A model with several inputs takes x as a list of arrays, one per input, everywhere x is
taken (``minires.model.arrays.InputArrays`` slices them together).

The loss and the count of correct predictions of a batch stay on the device (0-d arrays);
they are read back when a result is returned or a progress line is written, never once per
batch of ``fit``.
"""

from __future__ import annotations

import math

import numpy

from .. import losses, optim
from ..backend import to_numpy, xp
from ..progress import Progress
from . import checks
from .callbacks import History, call_hooks
from .loop import EpochLoop, RunningTotals

_ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")


class Training:
    """compile / fit / evaluate / predict for a model with ``forward`` and ``backward``."""

    # -- compile ------------------------------------------------------------------------------

    def compile(self, optimizer=None, loss=None, metrics=None) -> None:
        """Choose the optimizer ("adam", "sgd", Adam(...), SGD(...)), the loss and the metrics.

        metrics: None or a list of "accuracy" (also "acc", "categorical_accuracy",
        "sparse_categorical_accuracy"): the fraction of examples whose argmax is the label.
        """
        who = self._who("compile")
        if optimizer is None:
            raise ValueError(f"{who}: optimizer is required ('adam', 'sgd', Adam(...) or SGD(...))")
        if loss is None:
            raise ValueError(f"{who}: loss is required (e.g. 'categorical_crossentropy')")
        try:
            optimizer = optim.get(optimizer)
        except ValueError as exc:
            raise ValueError(f"{who}: optimizer: {exc}") from None
        try:
            loss = losses.get(loss)
        except ValueError as exc:
            raise ValueError(f"{who}: loss: {exc}") from None
        names = []
        for metric in metrics or []:
            if not isinstance(metric, str) or metric not in _ACCURACY_NAMES:
                raise ValueError(f"{who}: metrics must be a list of {', '.join(map(repr, _ACCURACY_NAMES))},"
                                 f" got {metric!r}")
            names.append(metric)
        if names and len(self.output.shape) != 2:
            raise ValueError(f"{who}: accuracy needs outputs of shape (N, classes), got {self.output.shape}")
        self.optimizer, self.loss, self.metrics_names_ = optimizer, loss, names
        self._fused = bool(loss.fusable and self._output_layer.output_activation == loss.fused_activation)
        if loss.needs_fusion and not self._fused:
            raise ValueError(f"{who}: {type(loss).__name__} with from_logits=False needs an output layer "
                             f"ending in {loss.fused_activation} (or use from_logits=True on logits)")

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self.metrics_names_] if self.loss is not None else []

    def _require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"{self._who(method)}: compile the model first (model.compile(...))")

    # -- targets ------------------------------------------------------------------------------

    def _check_y(self, x, y, method: str):
        if not hasattr(y, "shape"):
            y = numpy.asarray(y)
        if y.shape[:1] != x.shape[:1]:
            raise ValueError(f"{self._who(method)}: x has {x.shape[0]} examples but y has "
                             f"{y.shape[0] if y.ndim else 'a scalar'}")
        # The loss checks the targets once, here, all of them (shape, kind, class ids in range)
        # where they live: a bad label in the last batch is refused before the first update.
        self.loss.prepare_targets(y, self.output.shape, self.dtype, self._who(method))
        return y

    def _targets(self, y_batch, method: str):
        # Prepared where y lives (host data stays on the host, so checking its values waits
        # for no device), then moved to the backend.
        return xp().asarray(self.loss.prepare_targets(y_batch, self.output.shape, self.dtype,
                                                      self._who(method)))

    # -- one batch ----------------------------------------------------------------------------

    def _loss_forward(self, xb, targets, training: bool):
        """(loss, cache, output) where output is the logits when fused."""
        if self._fused:
            out = self.forward(xb, training=training, return_logits=True)
            loss, cache = self.loss.fused_forward(out, targets)
        else:
            out = self.forward(xb, training=training)
            loss, cache = self.loss.forward(out, targets)
        return loss, cache, out

    def _loss_backward(self, cache, input_grad: bool):
        dout = self.loss.fused_backward(cache) if self._fused else self.loss.backward(cache)
        return self.backward(dout, input_grad=input_grad)

    def _count_correct(self, out, targets):
        """How many rows of ``out`` have their argmax at the label: a 0-d array on the device."""
        if not self.metrics_names_:
            return 0
        predicted = out.argmax(axis=-1)
        truth = targets.argmax(axis=-1) if targets.ndim == 2 else targets
        return (predicted == truth).sum()

    def _train_batch(self, xb, targets):
        """One optimizer step on backend arrays: (loss, correct), both 0-d device arrays."""
        loss, cache, out = self._loss_forward(xb, targets, training=True)
        correct = self._count_correct(out, targets)
        self._loss_backward(cache, input_grad=False)
        params, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                for name, p in layer.params.items():
                    params.append(p)
                    grads.append(layer.grads[name])
        self.optimizer.apply(params, grads)
        return loss, correct

    def _test_batch(self, xb, targets):
        loss, _, out = self._loss_forward(xb, targets, training=False)
        return loss, self._count_correct(out, targets)

    def _result(self, logs: dict, return_dict: bool):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def loss_and_gradients(self, x, y):
        """(loss, grads, dx) of the compiled loss on one batch, with no update.

        ``grads`` lines up with ``weights`` (every parameter, Keras' order); ``dx`` is the
        gradient wrt ``x``. For gradient checks and custom training loops.
        """
        self._require_compiled("loss_and_gradients")
        x = self._check_x(x, "loss_and_gradients")
        y = self._check_y(x, y, "loss_and_gradients")
        loss, cache, _ = self._loss_forward(self._to_backend(x), self._targets(y, "loss_and_gradients"),
                                            training=True)
        dx = self._loss_backward(cache, input_grad=True)
        grads = [layer.grads[name] for layer in self.layers for name in layer.params]
        return float(loss), grads, dx

    def _on_batch(self, step, x, y, method: str, return_dict: bool):
        self._require_compiled(method)
        x = self._check_x(x, method)
        y = self._check_y(x, y, method)
        totals = RunningTotals()
        totals.add(*step(self._to_backend(x), self._targets(y, method)), x.shape[0])
        return self._result(totals.logs(self.metrics_names_), return_dict)

    def train_on_batch(self, x, y, return_dict: bool = False):
        """One optimizer step on (x, y): [loss, accuracy] (or the loss alone without metrics)."""
        return self._on_batch(self._train_batch, x, y, "train_on_batch", return_dict)

    def test_on_batch(self, x, y, return_dict: bool = False):
        return self._on_batch(self._test_batch, x, y, "test_on_batch", return_dict)

    def predict_on_batch(self, x) -> numpy.ndarray:
        x = self._check_x(x, "predict_on_batch")
        return to_numpy(self.forward(self._to_backend(x), training=False))

    # -- whole data sets ----------------------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            seed=None, validation_batch_size=None) -> History:
        """Train for ``epochs`` epochs of mini-batches; returns a ``History``.

        batch_size: default 32. shuffle: a new permutation each epoch, drawn from the model's
        generator ``model.rng`` (``seed`` resets it first, making the run deterministic).
        validation_split: the *last* fraction of (x, y), taken before shuffling, is held out
        (Keras' rule); ignored when ``validation_data=(x_val, y_val)`` is given.
        verbose: 0 silent, 1 a progress bar (plain lines when stdout is not a terminal),
        2 one line per epoch. History keys: loss, accuracy, val_loss, val_accuracy.
        """
        who = "fit"
        self._require_compiled(who)
        batch_size = checks.batch_size(self._who(who), batch_size)
        if not checks.is_int(epochs) or epochs < 0:
            raise ValueError(f"{self._who(who)}: epochs must be an int >= 0, got {epochs!r}")
        if not checks.is_int(initial_epoch) or initial_epoch < 0:
            raise ValueError(f"{self._who(who)}: initial_epoch must be an int >= 0, got {initial_epoch!r}")
        mode = checks.progress_mode(self._who(who), verbose)
        if x is None or y is None:
            raise ValueError(f"{self._who(who)}: x and y are required")
        x = self._check_x(x, who)
        y = self._check_y(x, y, who)
        if seed is not None:
            self.rng = numpy.random.default_rng(seed)

        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"{self._who(who)}: validation_data must be a pair (x_val, y_val)")
            x_val = self._check_x(validation_data[0], who + " (validation_data)")
            y_val = self._check_y(x_val, validation_data[1], who + " (validation_data)")
        elif validation_split:
            if not isinstance(validation_split, (int, float)) or not 0.0 < validation_split < 1.0:
                raise ValueError(f"{self._who(who)}: validation_split must be in [0, 1), "
                                 f"got {validation_split!r}")
            split_at = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split_at < 1 or split_at >= x.shape[0]:
                raise ValueError(f"{self._who(who)}: validation_split={validation_split} leaves "
                                 f"{split_at} training and {x.shape[0] - split_at} validation examples")
            x, x_val = x[:split_at], x[split_at:]
            y, y_val = y[:split_at], y[split_at:]
        else:
            x_val = y_val = None
        val_batch = batch_size if validation_batch_size is None else checks.batch_size(
            self._who(who), validation_batch_size)

        n = x.shape[0]
        if n == 0:
            raise ValueError(f"{self._who(who)}: x has no examples")
        history = History()
        history.model = self
        history.params = {"epochs": epochs, "steps": -(-n // batch_size), "batch_size": batch_size,
                          "samples": n}
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
        self.stop_training = False
        call_hooks(callbacks, "on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            call_hooks(callbacks, "on_epoch_begin", epoch, {})
            order = self.rng.permutation(n) if shuffle else None
            bar = Progress(n, f"Epoch {epoch + 1}/{epochs}", _unit(x), mode)
            loop = EpochLoop(self, x, y, batch_size, order=order, who=who)
            loop.run(bar, callbacks)
            logs = loop.logs()
            if x_val is not None:
                logs.update(self._evaluate_arrays(x_val, y_val, val_batch, prefix="val_"))
            bar.close(**logs)
            history.append(epoch, logs)
            call_hooks(callbacks, "on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        call_hooks(callbacks, "on_train_end", {k: v[-1] for k, v in history.history.items()})
        self.history = history
        return history

    def _evaluate_arrays(self, x, y, batch_size, prefix="", bar=None) -> dict:
        totals = RunningTotals()
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            loss, correct = self._test_batch(self._to_backend(x[start:stop]),
                                             self._targets(y[start:stop], "evaluate"))
            totals.add(loss, correct, stop - start)
            if bar is not None:
                bar.update(stop - start, lambda: totals.logs(self.metrics_names_))
        return totals.logs(self.metrics_names_, prefix)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, return_dict: bool = False):
        """[loss, accuracy] over (x, y) in inference mode (the loss alone without metrics)."""
        who = "evaluate"
        self._require_compiled(who)
        batch_size = checks.batch_size(self._who(who), batch_size)
        mode = checks.progress_mode(self._who(who), verbose)
        x = self._check_x(x, who)
        y = self._check_y(x, y, who)
        if x.shape[0] == 0:
            raise ValueError(f"{self._who(who)}: x has no examples")
        bar = Progress(x.shape[0], "Evaluate", _unit(x), mode)
        logs = self._evaluate_arrays(x, y, batch_size, bar=bar)
        bar.close(**logs)
        return self._result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose=0) -> numpy.ndarray:
        """The model's outputs (probabilities for a softmax output) as one NumPy array."""
        who = "predict"
        batch_size = checks.batch_size(self._who(who), batch_size)
        mode = checks.progress_mode(self._who(who), verbose)
        x = self._check_x(x, who)
        bar = Progress(x.shape[0], "Predict", _unit(x), mode)
        outputs = []
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            outputs.append(to_numpy(self.forward(self._to_backend(x[start:stop]), training=False)))
            bar.update(stop - start)
        bar.close()
        if not outputs:
            return numpy.zeros((0, *self.output.shape[1:]), dtype=self.dtype)
        return numpy.concatenate(outputs, axis=0)


def _unit(x) -> str:
    return "img" if x.ndim == 4 else "samples"
