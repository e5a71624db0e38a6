"""The functional ``Model``: a graph of layers run forward and backward, its weights, its config.

    inputs = Input(shape=(32, 32, 3))
    x = Conv2D(64, 3, padding="same", activation="relu")(inputs)
    outputs = Dense(10, activation="softmax")(Flatten()(x))
    model = Model(inputs, outputs)
    model.summary()
    probs = model(x_test)                       # eager inference, NumPy in and out

``Model`` holds the layers between an input and an output in the order ``minires.graph``
gives (a topological order, Keras' own): ``forward`` runs through it, ``backward`` runs
through it reversed, and a tensor used by several layers receives the sum of their gradients
(the multivariate chain rule). ``get_weights`` lists the parameters in the same order, layer by
layer (kernel, bias), which is Keras' order. ``get_config``/``from_config`` describe and
rebuild the graph.

The training API (``compile``, ``fit``, ``evaluate``, ``predict``, ...) is the ``Training``
base class, in ``minires.model.training``. Saving is ``minires.serialization``'s: that module
sits above the model and hands ``Model.save`` and ``load_weights`` their functions when it is
imported, which ``import minires`` does (``set_saving``).

A model has one output and one input or several (``Model([before, after], change_map)``,
whose ``fit``/``predict`` take a list of arrays, one per input). A layer may be called on
several tensors (shared weights): the model runs it once per call, each call's cache kept
apart, and its parameter gradients are the sum over the calls.
"""

from __future__ import annotations

import numpy

from .. import initializers
from ..backend import to_numpy, xp
from ..graph import KerasTensor, map_nodes
from ..layers import LAYER_CLASSES, Layer, assign_param, unique_name
from .arrays import InputArrays
from .callbacks import History
from .inputs import InputLayer
from .training import Training

# save_model, save_weights, load_weights: minires.serialization's, set when it is imported.
_saving: dict = {}


def set_saving(save_model, save_weights, load_weights) -> None:
    """Give ``Model.save``, ``save_weights`` and ``load_weights`` the functions that write files."""
    _saving.update(save_model=save_model, save_weights=save_weights, load_weights=load_weights)


def _saver(name: str):
    if name not in _saving:
        raise RuntimeError(f"Model: {name} needs minires.serialization; import minires (or "
                           f"minires.serialization) first")
    return _saving[name]


class Model(Training):
    """A functional model from one or several input KerasTensors to one output KerasTensor."""
    def __init__(self, inputs, outputs, name: str | None = None):
        self._inputs = _input_list(inputs)
        # Keras' attribute: the input tensor, or the list of them for several inputs.
        self.input = self._inputs[0] if len(self._inputs) == 1 else list(self._inputs)
        self.output = _single(outputs, "outputs")
        self.name = name if name is not None else unique_name("functional")
        self._nodes: list[KerasTensor] = map_nodes(self._inputs, [self.output])
        self.layers: list[Layer] = list(dict.fromkeys(t.layer for t in self._nodes))
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Model: layer names must be unique, got {duplicates} more than once")
        self._output_layer = self.output.layer
        self.rng = initializers.global_generator().spawn(1)[0]   # shuffling, owned by the model
        # What compile and fit set (minires.model.training).
        self.optimizer = None
        self.loss = None
        self.metrics_names_: list[str] = []
        self._fused = False
        self._pooled_in_training: dict = {}   # {id(pool node): conv node} of the last training forward
        self.stop_training = False
        self.history: History | None = None

    # -- structure ----------------------------------------------------------------------------

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return [self.output]

    @property
    def dtype(self) -> str:
        return self._inputs[0].dtype

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
        for name, param, value in zip(names, self.weights, weights):
            assign_param(param, value, f"Model {self.name!r}: set_weights: {name}")

    # -- forward and backward -----------------------------------------------------------------

    def forward(self, x, training: bool = False, return_logits: bool = False):
        """The output for a backend array ``x`` (a list of them, one per input, for several
        inputs); ``return_logits`` stops before a final softmax or sigmoid.

        A convolution whose output only a 2x2 max-pool reads runs with that pool as one step
        (``Conv2D.forward_pooled``): the values are the two layers' to rounding. Outside
        training, the full-size output is never made where the backend fuses them; in
        training (ReLU convolutions only), the ReLU may run after the pool, on a quarter of
        the values, and ``backward`` hands the pool's gradient to the convolution.
        """
        given = list(x) if len(self._inputs) > 1 else [x]
        values = {id(t): value for t, value in zip(self._inputs, given)}
        pooled = self._conv_pool_pairs(training)
        if training:
            self._pooled_in_training = {id(pool): conv for conv in self._nodes
                                        if (pool := pooled.get(id(conv))) is not None}
        for node in self._nodes:
            if id(node) in values:
                continue
            layer = node.layer
            args = [values[id(t)] for t in node.inbound]
            pool = pooled.get(id(node))
            if pool is not None:
                values[id(pool)] = layer.forward_pooled(args[0], node=node.node_index, training=training)
                pool.layer._caches.pop(pool.node_index, None)
                continue
            logits = return_logits and node is self.output
            values[id(node)] = layer.forward(args if node.list_call else args[0], training=training,
                                             return_logits=logits, node=node.node_index)
        return values[id(self.output)]

    def _conv_pool_pairs(self, training: bool = False) -> dict:
        """{id(conv node): its pool node} for each convolution whose only reader is a 2x2
        max-pool it fuses with (``Conv2D.fuses_with``), the convolution not being the output."""
        readers: dict[int, list] = {}
        for node in self._nodes:
            for t in node.inbound:
                readers.setdefault(id(t), []).append(node)
        pairs = {}
        for node in self._nodes:
            after = readers.get(id(node), [])
            fuses = getattr(node.layer, "fuses_with", None)
            if (fuses is not None and node is not self.output and not node.list_call
                    and len(after) == 1 and not after[0].list_call and fuses(after[0].layer, training)):
                pairs[id(node)] = after[0]
        return pairs

    def backward(self, dout, input_grad: bool = True):
        """dL/dx from dL/d(output) of the last ``forward(..., training=True)``: one array, or a
        list with one per input for several inputs (None for an input the output ignores).

        Every layer's ``grads`` holds its parameter gradients afterwards, summed over the calls
        of a shared layer. ``input_grad=False`` (what training uses) returns None and spares the
        layers fed by the inputs their input gradient, which nothing needs (for a convolution,
        one of the two matrix products of its backward pass).
        """
        grads = {id(self.output): dout}
        differentiated: set = set()
        inputs = {id(t) for t in self._inputs}
        for node in reversed(self._nodes):
            g = grads.get(id(node))
            if g is None or id(node) in inputs:
                continue
            del grads[id(node)]
            conv = self._pooled_in_training.get(id(node))
            if conv is not None:
                # A max-pool run with its convolution (forward): the pair's backward is the
                # convolution's, from the pool's output gradient. Only the pool reads the conv.
                grads[id(conv)] = g
                continue
            layer = node.layer
            accumulate = layer in differentiated
            differentiated.add(layer)
            if not input_grad and all(id(t) in inputs for t in node.inbound):
                layer.backward(g, input_grad=False, node=node.node_index, accumulate=accumulate)
                continue
            upstream = layer.backward(g, node=node.node_index, accumulate=accumulate)
            upstream = upstream if node.list_call else [upstream]
            for t, gi in zip(node.inbound, upstream):
                previous = grads.get(id(t))
                # A new array, never +=: add's backward hands one array to both of its inputs.
                grads[id(t)] = gi if previous is None else previous + gi
        if not input_grad:
            return None
        dx = [grads.get(id(t)) for t in self._inputs]
        return dx if len(dx) > 1 else dx[0]

    def __call__(self, x):
        """Eager inference on an array (a list of arrays for several inputs): the model's
        output (NumPy in, NumPy out)."""
        batch = self._to_backend(self._check_x(x, "Model.__call__"))
        out = self.forward(batch, training=False)
        first = x[0] if len(self._inputs) > 1 else x
        return to_numpy(out) if isinstance(first, numpy.ndarray) else out

    # -- data checks --------------------------------------------------------------------------

    def _who(self, method: str) -> str:
        return f"Model {self.name!r}: {method}"

    def _check_x(self, x, method: str):
        """x checked against the input shapes: an array for one input, ``InputArrays`` (a list
        of arrays with one number of examples) for several."""
        if len(self._inputs) == 1:
            return self._check_one_x(x, self._inputs[0], "x", method)
        if isinstance(x, InputArrays):
            return x
        count = len(self._inputs)
        if not isinstance(x, (list, tuple)) or len(x) != count:
            raise ValueError(f"{self._who(method)}: x must be a list of {count} arrays, one per input "
                             f"({', '.join(t.name for t in self._inputs)}), got "
                             f"{type(x).__name__}{f' of {len(x)}' if isinstance(x, (list, tuple)) else ''}")
        arrays = [self._check_one_x(a, t, f"x[{k}]", method) for k, (a, t) in enumerate(zip(x, self._inputs))]
        lengths = [a.shape[0] for a in arrays]
        if len(set(lengths)) > 1:
            raise ValueError(f"{self._who(method)}: the arrays of x must have one number of examples, "
                             f"got {lengths}")
        return InputArrays(arrays)

    def _check_one_x(self, x, tensor, what: str, method: str):
        if not hasattr(x, "shape"):
            x = numpy.asarray(x)
        expected = tensor.shape[1:]
        got = tuple(x.shape[1:])
        if x.ndim != len(expected) + 1 or any(e is not None and e != g for e, g in zip(expected, got)):
            dims = ", ".join("?" if d is None else str(d) for d in expected)
            raise ValueError(f"{self._who(method)}: {what} must have shape (N, {dims}), got {tuple(x.shape)}")
        if x.dtype.kind not in "fiub":
            raise ValueError(f"{self._who(method)}: {what} must be numeric, got dtype {x.dtype}")
        return x

    def _to_backend(self, batch):
        if isinstance(batch, InputArrays):
            return [xp().asarray(a).astype(self.dtype, copy=False) for a in batch]
        return xp().asarray(batch).astype(self.dtype, copy=False)

    # -- description --------------------------------------------------------------------------

    def summary(self, line_length: int | None = None, print_fn=None) -> None:
        """Print a Keras-like table: layer (type), output shape, parameters, inputs; totals."""
        print_fn = print if print_fn is None else print_fn
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        for layer in self.layers:
            node = layer._nodes[0]
            calls = [t for t in self._nodes if t.layer is layer]
            inbound = ", ".join(f"{t.layer.name}[{t.node_index}][0]" for call in calls for t in call.inbound) or "-"
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
        """The architecture as JSON-able data: every layer's class, config and inputs.

        A model with one input and no shared layer keeps the one-call form (each layer's
        ``inbound`` names the layers it was called on). Several inputs add ``inputs``; a shared
        layer adds ``nodes``, every call in the order the model runs them, as
        [layer, call index, [[inbound layer, its call index], ...], list_call].
        """
        layers = []
        for layer in self.layers:
            node = layer._nodes[0]
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config(),
                           "inbound": [t.layer.name for t in node.inbound],
                           "list_call": node.list_call})
        config = {"name": self.name, "layers": layers, "input": self._inputs[0].layer.name,
                  "output": self._output_layer.name}
        if len(self._inputs) > 1:
            config["inputs"] = [t.layer.name for t in self._inputs]
        if len(self._nodes) > len(self.layers) or any(t.node_index for t in self._nodes):
            config["nodes"] = [[t.layer.name, t.node_index, [[p.layer.name, p.node_index] for p in t.inbound],
                                t.list_call] for t in self._nodes if not isinstance(t.layer, InputLayer)]
            config["output_node"] = self.output.node_index
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        """Rebuild the graph of ``get_config()`` (fresh parameters from the global generator)."""
        tensors: dict[tuple[str, int], KerasTensor] = {}
        layers: dict[str, Layer] = {}
        calls = config.get("nodes")
        try:
            for entry in config["layers"]:
                class_name, layer_config = entry["class_name"], dict(entry["config"])
                if class_name == "InputLayer":
                    layer = InputLayer(**layer_config)
                    tensors[layer.name, 0] = layer.output
                    continue
                if class_name not in LAYER_CLASSES:
                    raise ValueError(f"unknown layer class {class_name!r}")
                layer = LAYER_CLASSES[class_name].from_config(layer_config)
                layers[layer.name] = layer
                if calls is None:
                    inbound = [tensors[name, 0] for name in entry["inbound"]]
                    tensors[layer.name, 0] = layer(inbound if entry["list_call"] else inbound[0])
            for name, index, inbound_names, list_call in calls or []:
                # Keyed by the saved call index: the rebuilt layer numbers its calls afresh.
                inbound = [tensors[parent, int(i)] for parent, i in inbound_names]
                tensors[name, int(index)] = layers[name](inbound if list_call else inbound[0])
            input_names = config.get("inputs", [config["input"]])
            output = tensors[config["output"], int(config.get("output_node", 0))]
            return cls([tensors[n, 0] for n in input_names], output, name=config["name"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ValueError(f"Model.from_config: malformed configuration "
                             f"({type(exc).__name__}: {exc})") from None

    # -- saving -------------------------------------------------------------------------------

    def save(self, path, include_optimizer: bool = True, metadata: dict | None = None) -> None:
        """Write the architecture, weights, compile settings and optimizer state to one file."""
        _saver("save_model")(self, path, include_optimizer=include_optimizer, metadata=metadata)

    def save_weights(self, path) -> None:
        _saver("save_weights")(self, path)

    def load_weights(self, path, allow_nonfinite: bool = False) -> None:
        _saver("load_weights")(self, path, allow_nonfinite=allow_nonfinite)


def _single(value, what: str) -> KerasTensor:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Model: minires models have one output; {what} has {len(value)}")
        value = value[0]
    if not isinstance(value, KerasTensor):
        raise ValueError(f"Model: {what} must be a KerasTensor (from Input or a layer call), got {value!r}")
    return value


def _input_list(value) -> list[KerasTensor]:
    """One input tensor, or a list of distinct ones, each from ``Input(...)``."""
    tensors = list(value) if isinstance(value, (list, tuple)) else [value]
    if not tensors:
        raise ValueError("Model: inputs must have at least one tensor from Input(...)")
    for t in tensors:
        if not isinstance(t, KerasTensor):
            raise ValueError(f"Model: inputs must be KerasTensors (from Input), got {t!r}")
        if not isinstance(t.layer, InputLayer):
            raise ValueError("Model: inputs must come from Input(...)")
    if len({id(t) for t in tensors}) != len(tensors):
        raise ValueError("Model: inputs must be distinct tensors, got one more than once")
    return tensors


def _readable_size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"
