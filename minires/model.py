"""Functional models: a graph of layers traced from symbolic tensors, and its training loop.

    inputs = Input(shape=(32, 32, 3))                  # a KerasTensor: a shape, no values
    x = Conv2D(64, 3, padding="same")(inputs)          # records a node of the graph
    outputs = Dense(10, activation="softmax")(Flatten()(x))
    model = Model(inputs, outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=10)

The graph is a DAG (a residual block's input feeds two paths). ``Model`` orders its layers
as Keras does (by decreasing depth from the output, ties in the order a depth-first walk
from the output first meets them), which is a topological order: forward runs through it,
backward runs through it reversed, and a tensor used by several layers receives the sum of
their gradients (the multivariate chain rule). ``get_weights`` lists the parameters in the
same order, layer by layer (kernel, bias), which is Keras' order.

Training with cross-entropy on a softmax output is fused: the output layer runs up to its
logits z, and the loss is ``ops.softmax_cross_entropy`` of z, whose gradient (p - t) / N is
exact and stable; no gradient ever passes through a separate softmax. ``predict`` returns
the probabilities.

Each layer appears once in a graph (its cache holds one forward pass); single input,
single output.
"""

from __future__ import annotations

import math

import numpy

from . import initializers, losses, optim
from .backend import to_numpy, xp
from .layers import Layer, unique_name
from .windows import is_int
from .progress import ProgressBar


# --- symbolic tensors and the graph ----------------------------------------------------------

class KerasTensor:
    """A symbolic tensor: the shape (batch None) and dtype of a layer's future output."""

    def __init__(self, shape, dtype, layer, inbound=(), list_call=False):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer              # the layer that produces it
        self.inbound = list(inbound)    # the tensors that layer was called on
        self.list_call = list_call      # True when the layer was called on a list

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class InputLayer(Layer):
    """The entry of a graph: passes its input through."""

    default_name = "input_layer"

    def __init__(self, batch_shape, dtype=None, name=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self._dtype = initializers.float_dtype(dtype, self._who())
        self.batch_shape = tuple(batch_shape)
        self.input_shape = self.output_shape = self.batch_shape
        self.built = True
        self.output = KerasTensor(self.batch_shape, self.dtype, self)
        self._nodes.append(self.output)

    def _forward(self, x, return_logits, training):
        return x, True

    def _backward(self, dy, cache):
        return dy

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "batch_shape": list(self.batch_shape)}


def Input(shape, batch_size=None, dtype=None, name=None) -> KerasTensor:  # noqa: N802 (Keras' name)
    """A symbolic model input of per-example ``shape`` (dims may be None); dtype floatx()."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"Input: shape must be a tuple of positive ints (or None), "
                         f"got {shape!r}") from None
    if not all(d is None or (is_int(d) and d >= 1) for d in dims):
        raise ValueError(f"Input: shape must be a tuple of positive ints (or None), got {shape!r}")
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(f"Input: batch_size must be a positive int or None, got {batch_size!r}")
    batch = None if batch_size is None else int(batch_size)
    layer = InputLayer((batch, *(None if d is None else int(d) for d in dims)), dtype=dtype, name=name)
    return layer.output



def record_call(layer: Layer, inputs, **kwargs) -> KerasTensor:
    """``layer(inputs)`` on KerasTensors: build the layer and add a node to the graph."""
    who = layer._who()
    if kwargs:
        raise ValueError(f"{who}: unsupported call arguments {sorted(kwargs)}")
    if layer._nodes:
        raise ValueError(f"{who}: has already been called on {layer._nodes[0].inbound}; a minires "
                         f"layer is used once in a graph: create a new layer")
    list_call = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if list_call else [inputs]
    if not tensors:
        raise ValueError(f"{who}: called on an empty list")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise ValueError(f"{who}: inputs have different dtypes {sorted(dtypes)}")
    dtype = tensors[0].dtype
    if layer._dtype is not None and layer._dtype != dtype:
        raise ValueError(f"{who}: dtype {layer._dtype} differs from its input's {dtype}")
    shapes = [t.shape for t in tensors]
    layer._ensure_built(shapes if list_call else shapes[0], dtype)
    out = KerasTensor(layer.output_shape, layer.dtype, layer, tensors, list_call)
    layer._nodes.append(out)
    return out


def map_graph(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list[Layer]:
    """The layers between ``inputs`` and ``outputs``, in Keras' order (see module doc)."""
    first_seen: dict[Layer, int] = {}
    finished: set[int] = set()
    in_progress: set[int] = set()
    post_order: list[KerasTensor] = []
    input_ids = {id(t) for t in inputs}

    def visit(tensor: KerasTensor) -> None:
        # Iterative depth-first walk (a deep network must not hit Python's recursion limit).
        stack = [(tensor, False)]
        while stack:
            t, expanded = stack.pop()
            if id(t) in finished:
                continue
            if expanded:
                in_progress.discard(id(t))
                finished.add(id(t))
                post_order.append(t)
                continue
            if id(t) in in_progress:
                raise ValueError(f"Model: the graph has a cycle through layer {t.layer.name!r}")
            first_seen.setdefault(t.layer, len(first_seen))
            in_progress.add(id(t))
            stack.append((t, True))
            if id(t) in input_ids:
                continue
            if isinstance(t.layer, InputLayer):
                raise ValueError(f"Model: the outputs depend on the input {t.layer.name!r}, which "
                                 f"is not among the model's inputs (graph disconnected)")
            for parent in reversed(t.inbound):
                stack.append((parent, False))

    for out in outputs:
        visit(out)

    depth: dict[int, int] = {}
    tensors = {id(t): t for t in post_order}
    for t in reversed(post_order):          # consumers before producers
        d = depth.setdefault(id(t), 0)
        if id(t) in input_ids:
            continue
        for parent in t.inbound:
            depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
    by_depth: dict[int, list[Layer]] = {}
    for tid, d in depth.items():
        by_depth.setdefault(d, []).append(tensors[tid].layer)
    ordered = []
    for d in sorted(by_depth, reverse=True):
        ordered.extend(sorted(by_depth[d], key=first_seen.__getitem__))
    for t in inputs:
        if t.layer not in first_seen:
            raise ValueError(f"Model: the input {t.layer.name!r} is not connected to the outputs")
    return ordered


# --- training bookkeeping --------------------------------------------------------------------

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


def _hook(callbacks, name, *args) -> None:
    for cb in callbacks:
        method = getattr(cb, name, None)
        if method is not None:
            method(*args)


_ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")


class _Totals:
    """Sample-weighted running means of the loss and the accuracy over an epoch."""

    def __init__(self):
        self.samples = 0
        self.loss_sum = 0.0
        self.correct = 0

    def add(self, loss: float, correct: int, n: int) -> None:
        self.samples += n
        self.loss_sum += loss * n
        self.correct += correct

    def logs(self, metric_names, prefix: str = "") -> dict:
        n = max(self.samples, 1)
        logs = {prefix + "loss": self.loss_sum / n}
        for name in metric_names:
            logs[prefix + name] = self.correct / n
        return logs


# --- the model -------------------------------------------------------------------------------

class Model:
    """A functional model from one input KerasTensor to one output KerasTensor."""

    def __init__(self, inputs, outputs, name: str | None = None):
        self.input = _single(inputs, "inputs")
        self.output = _single(outputs, "outputs")
        if not isinstance(self.input.layer, InputLayer):
            raise ValueError("Model: inputs must come from Input(...)")
        self.name = name if name is not None else unique_name("functional")
        self.layers: list[Layer] = map_graph([self.input], [self.output])
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Model: layer names must be unique, got {duplicates} more than once")
        self._output_layer = self.output.layer
        self.rng = initializers.global_generator().spawn(1)[0]   # shuffling, owned by the model
        self.optimizer = None
        self.loss = None
        self.metrics_names_: list[str] = []
        self._fused = False
        self.stop_training = False
        self.history: History | None = None

    # -- structure ----------------------------------------------------------------------------

    @property
    def inputs(self) -> list[KerasTensor]:
        return [self.input]

    @property
    def outputs(self) -> list[KerasTensor]:
        return [self.output]

    @property
    def dtype(self) -> str:
        return self.input.dtype

    def get_layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"Model {self.name!r}: no layer named {name!r}")

    @property
    def weights(self) -> list:
        """All parameters as live backend arrays, in Keras' order."""
        return [p for layer in self.layers for p in layer.params.values()]

    @property
    def trainable_weights(self) -> list:
        return [p for layer in self.layers if layer.trainable for p in layer.params.values()]

    def weight_names(self) -> list[str]:
        """"layer/param" names of ``weights``, in the same order."""
        return [f"{layer.name}/{name}" for layer in self.layers for name in layer.params]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self) -> list[numpy.ndarray]:
        """NumPy copies of every parameter, in Keras' order (per layer: kernel, bias)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Overwrite every parameter from a list shaped like ``get_weights()``."""
        weights = list(weights)
        names = self.weight_names()
        if len(weights) != len(names):
            raise ValueError(f"Model {self.name!r}: set_weights expected {len(names)} arrays, "
                             f"got {len(weights)}")
        from .layers import assign_param

        for name, param, value in zip(names, self.weights, weights):
            assign_param(param, value, f"Model {self.name!r}: set_weights: {name}")

    # -- forward and backward -----------------------------------------------------------------

    def forward(self, x, training: bool = False, return_logits: bool = False):
        """The output for a backend array ``x``; ``return_logits`` stops before a final softmax."""
        values = {}
        for layer in self.layers:
            if isinstance(layer, InputLayer):
                values[layer] = x
                continue
            node = layer._nodes[0]
            args = [values[t.layer] for t in node.inbound]
            logits = return_logits and layer is self._output_layer
            values[layer] = layer.forward(args if node.list_call else args[0], training=training,
                                          return_logits=logits)
        return values[self._output_layer]

    def backward(self, dout, input_grad: bool = True):
        """dL/dx from dL/d(output) of the last ``forward(..., training=True)``.

        Every layer's ``grads`` holds its parameter gradients afterwards. ``input_grad=False``
        (what training uses) returns None and spares the layers fed by the input their input
        gradient, which nothing needs: for the seed's first convolution, a third of its cost.
        """
        grads = {self._output_layer: dout}
        dx = None
        for layer in reversed(self.layers):
            g = grads.pop(layer, None)
            if g is None:
                continue
            if isinstance(layer, InputLayer):
                dx = g
                continue
            node = layer._nodes[0]
            if not input_grad and all(isinstance(t.layer, InputLayer) for t in node.inbound):
                layer.backward(g, input_grad=False)
                continue
            upstream = layer.backward(g)
            upstream = upstream if node.list_call else [upstream]
            for t, gi in zip(node.inbound, upstream):
                previous = grads.get(t.layer)
                # A new array, never +=: add's backward hands one array to both of its inputs.
                grads[t.layer] = gi if previous is None else previous + gi
        return dx

    def __call__(self, x):
        """Eager inference on an array: the model's output (NumPy in, NumPy out)."""
        batch = self._to_backend(self._check_x(x, "Model.__call__"))
        out = self.forward(batch, training=False)
        return to_numpy(out) if isinstance(x, numpy.ndarray) else out

    # -- data checks --------------------------------------------------------------------------

    def _who(self, method: str) -> str:
        return f"Model {self.name!r}: {method}"

    def _check_x(self, x, method: str):
        if not hasattr(x, "shape"):
            x = numpy.asarray(x)
        expected = self.input.shape[1:]
        got = tuple(x.shape[1:])
        if x.ndim != len(expected) + 1 or any(e is not None and e != g for e, g in zip(expected, got)):
            dims = ", ".join("?" if d is None else str(d) for d in expected)
            raise ValueError(f"{self._who(method)}: x must have shape (N, {dims}), got {tuple(x.shape)}")
        if x.dtype.kind not in "fiub":
            raise ValueError(f"{self._who(method)}: x must be numeric, got dtype {x.dtype}")
        return x

    def _to_backend(self, batch):
        return xp().asarray(batch).astype(self.dtype, copy=False)

    def _check_y(self, x, y, method: str):
        if not hasattr(y, "shape"):
            y = numpy.asarray(y)
        if y.shape[:1] != x.shape[:1]:
            raise ValueError(f"{self._who(method)}: x has {x.shape[0]} examples but y has "
                             f"{y.shape[0] if y.ndim else 'a scalar'}")
        # The loss checks the targets' shape and kind (one-hot rows vs class ids) once, here.
        self.loss.prepare_targets(to_numpy(y[:1]) if y.shape[0] else to_numpy(y),
                                  self.output.shape, self.dtype, self._who(method))
        return y

    def _targets(self, y_batch, method: str):
        return self.loss.prepare_targets(xp().asarray(y_batch), self.output.shape, self.dtype,
                                         self._who(method))

    def _require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"{self._who(method)}: compile the model first (model.compile(...))")

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
        self._fused = bool(loss.fusable and self._output_layer.ends_in_softmax)

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self.metrics_names_] if self.loss is not None else []

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

    def _count_correct(self, out, targets) -> int:
        if not self.metrics_names_:
            return 0
        predicted = out.argmax(axis=-1)
        truth = targets.argmax(axis=-1) if targets.ndim == 2 else targets
        return int((predicted == truth).sum())

    def _train_batch(self, xb, targets) -> tuple[float, int]:
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
        return float(loss), correct

    def _test_batch(self, xb, targets) -> tuple[float, int]:
        loss, _, out = self._loss_forward(xb, targets, training=False)
        return float(loss), self._count_correct(out, targets)

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

    def train_on_batch(self, x, y, return_dict: bool = False):
        """One optimizer step on (x, y): [loss, accuracy] (or the loss alone without metrics)."""
        self._require_compiled("train_on_batch")
        x = self._check_x(x, "train_on_batch")
        y = self._check_y(x, y, "train_on_batch")
        loss, correct = self._train_batch(self._to_backend(x), self._targets(y, "train_on_batch"))
        totals = _Totals()
        totals.add(loss, correct, x.shape[0])
        return self._result(totals.logs(self.metrics_names_), return_dict)

    def test_on_batch(self, x, y, return_dict: bool = False):
        self._require_compiled("test_on_batch")
        x = self._check_x(x, "test_on_batch")
        y = self._check_y(x, y, "test_on_batch")
        loss, correct = self._test_batch(self._to_backend(x), self._targets(y, "test_on_batch"))
        totals = _Totals()
        totals.add(loss, correct, x.shape[0])
        return self._result(totals.logs(self.metrics_names_), return_dict)

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
        batch_size = _batch_size(self._who(who), batch_size)
        if not is_int(epochs) or epochs < 0:
            raise ValueError(f"{self._who(who)}: epochs must be an int >= 0, got {epochs!r}")
        if not is_int(initial_epoch) or initial_epoch < 0:
            raise ValueError(f"{self._who(who)}: initial_epoch must be an int >= 0, got {initial_epoch!r}")
        mode = _progress_mode(self._who(who), verbose)
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
        val_batch = batch_size if validation_batch_size is None else _batch_size(
            self._who(who), validation_batch_size)

        n = x.shape[0]
        if n == 0:
            raise ValueError(f"{self._who(who)}: x has no examples")
        steps = -(-n // batch_size)
        history = History()
        history.model = self
        history.params = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": n}
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
        self.stop_training = False
        unit = "img" if x.ndim == 4 else "samples"
        _hook(callbacks, "on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            _hook(callbacks, "on_epoch_begin", epoch, {})
            order = self.rng.permutation(n) if shuffle else None
            bar = ProgressBar(n, header=f"Epoch {epoch + 1}/{epochs}", unit=unit, mode=mode)
            totals = _Totals()
            for step in range(steps):
                start, stop = step * batch_size, min((step + 1) * batch_size, n)
                index = order[start:stop] if order is not None else slice(start, stop)
                _hook(callbacks, "on_train_batch_begin", step, {})
                xb, targets = self._to_backend(x[index]), self._targets(y[index], who)
                loss, correct = self._train_batch(xb, targets)
                totals.add(loss, correct, stop - start)
                logs = totals.logs(self.metrics_names_)
                bar.update(stop - start, **logs)
                _hook(callbacks, "on_train_batch_end", step, logs)
            logs = totals.logs(self.metrics_names_)
            if x_val is not None:
                logs.update(self._evaluate_arrays(x_val, y_val, val_batch, prefix="val_"))
            bar.close(**logs)
            history.append(epoch, logs)
            _hook(callbacks, "on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        _hook(callbacks, "on_train_end", {k: v[-1] for k, v in history.history.items()})
        self.history = history
        return history

    def _evaluate_arrays(self, x, y, batch_size, prefix="", bar=None) -> dict:
        totals = _Totals()
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            loss, correct = self._test_batch(self._to_backend(x[start:stop]),
                                             self._targets(y[start:stop], "evaluate"))
            totals.add(loss, correct, stop - start)
            if bar is not None:
                bar.update(stop - start, **totals.logs(self.metrics_names_))
        return totals.logs(self.metrics_names_, prefix)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, return_dict: bool = False):
        """[loss, accuracy] over (x, y) in inference mode (the loss alone without metrics)."""
        who = "evaluate"
        self._require_compiled(who)
        batch_size = _batch_size(self._who(who), batch_size)
        mode = _progress_mode(self._who(who), verbose)
        x = self._check_x(x, who)
        y = self._check_y(x, y, who)
        if x.shape[0] == 0:
            raise ValueError(f"{self._who(who)}: x has no examples")
        bar = ProgressBar(x.shape[0], header="Evaluate", unit="img" if x.ndim == 4 else "samples",
                          mode=mode)
        logs = self._evaluate_arrays(x, y, batch_size, bar=bar)
        bar.close(**logs)
        return self._result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose=0) -> numpy.ndarray:
        """The model's outputs (probabilities for a softmax output) as one NumPy array."""
        who = "predict"
        batch_size = _batch_size(self._who(who), batch_size)
        mode = _progress_mode(self._who(who), verbose)
        x = self._check_x(x, who)
        bar = ProgressBar(x.shape[0], header="Predict", unit="img" if x.ndim == 4 else "samples",
                          mode=mode)
        outputs = []
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            outputs.append(to_numpy(self.forward(self._to_backend(x[start:stop]), training=False)))
            bar.update(stop - start)
        bar.close()
        if not outputs:
            return numpy.zeros((0, *self.output.shape[1:]), dtype=self.dtype)
        return numpy.concatenate(outputs, axis=0)

    # -- description --------------------------------------------------------------------------

    def summary(self, line_length: int | None = None, print_fn=None) -> None:
        """Print a Keras-like table: layer (type), output shape, parameters, inputs; totals."""
        print_fn = print if print_fn is None else print_fn
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        for layer in self.layers:
            node = layer._nodes[0]
            inbound = ", ".join(f"{t.layer.name}[0][0]" for t in node.inbound) or "-"
            rows.append((f"{layer.name} ({type(layer).__name__})", str(node.shape),
                         f"{layer.count_params():,}", inbound))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(4)]
        total = sum(widths) if line_length is None else max(line_length, sum(widths[:3]) + 10)

        def fmt(row):
            return " " + "".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + row[3]

        trainable = sum(layer.count_params() for layer in self.layers if layer.trainable)
        itemsize = numpy.dtype(self.dtype).itemsize
        count = self.count_params()
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * total)
        print_fn(fmt(rows[0]))
        print_fn("=" * total)
        for i, row in enumerate(rows[1:]):
            print_fn(fmt(row))
            if i < len(rows) - 2:
                print_fn("")
        print_fn("=" * total)
        print_fn(f"Total params: {count:,} ({_readable_size(count * itemsize)})")
        print_fn(f"Trainable params: {trainable:,} ({_readable_size(trainable * itemsize)})")
        print_fn(f"Non-trainable params: {count - trainable:,} "
                 f"({_readable_size((count - trainable) * itemsize)})")
        print_fn("_" * total)

    def get_config(self) -> dict:
        """The architecture as JSON-able data: every layer's class, config and inputs."""
        layers = []
        for layer in self.layers:
            node = layer._nodes[0]
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config(),
                           "inbound": [t.layer.name for t in node.inbound],
                           "list_call": node.list_call})
        return {"name": self.name, "layers": layers, "input": self.input.layer.name,
                "output": self._output_layer.name}

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        """Rebuild the graph of ``get_config()`` (fresh parameters from the global generator)."""
        from .layers import LAYER_CLASSES

        tensors: dict[str, KerasTensor] = {}
        try:
            for entry in config["layers"]:
                class_name, layer_config = entry["class_name"], dict(entry["config"])
                if class_name == "InputLayer":
                    layer = InputLayer(**layer_config)
                    tensors[layer.name] = layer.output
                    continue
                if class_name not in LAYER_CLASSES:
                    raise ValueError(f"unknown layer class {class_name!r}")
                layer = LAYER_CLASSES[class_name].from_config(layer_config)
                inbound = [tensors[name] for name in entry["inbound"]]
                tensors[layer.name] = layer(inbound if entry["list_call"] else inbound[0])
            return cls(tensors[config["input"]], tensors[config["output"]], name=config["name"])
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"Model.from_config: malformed configuration "
                             f"({type(exc).__name__}: {exc})") from None

    # -- saving -------------------------------------------------------------------------------

    def save(self, path, include_optimizer: bool = True, metadata: dict | None = None) -> None:
        """Write the architecture, weights, compile settings and optimizer state to one file."""
        from .serialization import save_model

        save_model(self, path, include_optimizer=include_optimizer, metadata=metadata)

    def save_weights(self, path) -> None:
        from .serialization import save_weights

        save_weights(self, path)

    def load_weights(self, path) -> None:
        from .serialization import load_weights

        load_weights(self, path)


def _single(value, what: str) -> KerasTensor:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Model: minires models have one input and one output; {what} has {len(value)}")
        value = value[0]
    if not isinstance(value, KerasTensor):
        raise ValueError(f"Model: {what} must be a KerasTensor (from Input or a layer call), got {value!r}")
    return value


def _batch_size(who: str, value) -> int:
    if value is None:
        return 32
    if not is_int(value) or value < 1:
        raise ValueError(f"{who}: batch_size must be a positive int, got {value!r}")
    return int(value)


def _progress_mode(who: str, verbose) -> str:
    if verbose == "auto":
        verbose = 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"{who}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return ("silent", "bar", "epoch")[verbose]


def _readable_size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"
