"""Keras-like layers: each holds its parameters and runs one or two ops forward and backward.

A layer is built lazily, on its first call, from the shape of its input (Keras' style): the
parameters' shapes follow from it, so ``Conv2D(64, 3)`` needs no input channel count.

    y = layer.forward(x, training=True)      # keeps the ops' caches
    dx = layer.backward(dy)                  # input gradient; layer.grads holds dkernel, dbias

``layer(t)`` on a symbolic ``KerasTensor`` (from ``Input``) records a node of a model's graph
instead of computing; on an array it computes, in inference mode.

Shapes carry a leading ``None`` for the batch, as in Keras: ``(None, 32, 32, 64)``.
Activations are NHWC, conv kernels HWIO ``(kh, kw, c_in, c_out)``, dense kernels
``(in, out)``; ``get_weights()`` lists kernel then bias, Keras' order, so weights move
between minires and Keras unchanged.

``activation="relu"`` inside ``Conv2D``/``Dense`` is the layer's op followed by the ReLU op.
A layer ending in softmax can also be run up to its logits (``return_logits=True``): a model
trained with cross-entropy uses that to apply the fused, stable softmax-cross-entropy op
instead of differentiating through a separate softmax.

A layer may be called on several tensors (shared weights, as the two branches of a Siamese
network): ``forward(..., node=k)`` keeps call k's cache apart from the others', and
``backward(..., node=k, accumulate=True)`` adds that call's parameter gradients to those of
the calls already differentiated, since a shared parameter's gradient is the sum over its uses.
"""

from __future__ import annotations

import math

import numpy

from . import initializers, ops
from .backend import array_module, to_numpy, xp
from .graph import KerasTensor, record_call
from .ops.normalize import check_epsilon
from .windows import is_int

# --- names -----------------------------------------------------------------------------------

_name_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``, ...: Keras' automatic layer names."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Start automatic names afresh (``keras.backend.clear_session``)."""
    _name_counts.clear()


# --- argument checks -------------------------------------------------------------------------


def _positive_int(who: str, arg: str, value) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{who}: {arg} must be a positive int, got {value!r}")
    return int(value)


def _int_pair(who: str, arg: str, value) -> tuple[int, int]:
    items = (value, value) if is_int(value) else value
    try:
        first, second = items
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {arg} must be a positive int or a pair of them, got {value!r}") from None
    if not (is_int(first) and is_int(second)) or first < 1 or second < 1:
        raise ValueError(f"{who}: {arg} must be a positive int or a pair of them, got {value!r}")
    return int(first), int(second)


def _padding(who: str, value) -> str:
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise ValueError(f"{who}: padding must be 'valid' or 'same', got {value!r}")
    return value.lower()


def _data_format(who: str, value) -> None:
    if value not in (None, "channels_last"):
        raise ValueError(f"{who}: data_format must be 'channels_last' (NHWC), got {value!r}")


def _window_out(n, k, s, padding):
    """Output length of one axis (None stays None): ceil(n/s) for 'same', (n-k)//s+1 for 'valid'."""
    if n is None:
        return None
    return -(-n // s) if padding == "same" else (n - k) // s + 1


# --- activations -----------------------------------------------------------------------------

ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax")
#: Activations that a cross-entropy loss may fuse with (the layer then runs up to its logits).
FUSABLE_ACTIVATIONS = ("sigmoid", "softmax")


def _activation_name(who: str, value) -> str:
    if value is None:
        return "linear"
    if not isinstance(value, str) or value.lower() not in ACTIVATIONS:
        raise ValueError(f"{who}: activation must be one of {', '.join(map(repr, ACTIVATIONS))} "
                         f"or None, got {value!r}")
    return value.lower()


def activation_forward(name: str, x):
    """(y, cache) of a named activation."""
    if name == "relu":
        return ops.relu_forward(x)
    if name == "softmax":
        return ops.softmax_forward(x, axis=-1)
    if name == "sigmoid":
        return ops.sigmoid_forward(x)
    return x, None


def activation_backward(name: str, dy, cache):
    if name == "relu":
        return ops.relu_backward(dy, cache)
    if name == "softmax":
        return ops.softmax_backward(dy, cache)
    if name == "sigmoid":
        return ops.sigmoid_backward(dy, cache)
    return dy


# --- the base class --------------------------------------------------------------------------

class Layer:
    """Base of all layers: naming, lazy building, parameters, the forward/backward protocol.

    Subclasses implement ``build(input_shape)`` (creating parameters with ``add_weight``),
    ``compute_output_shape(input_shape)``, ``_forward(inputs, return_logits, training)`` returning
    ``(output, cache)`` and ``_backward(dout, cache)`` returning the input gradient(s) and
    writing ``self.grads``.
    """

    default_name = "layer"

    def __init__(self, name: str | None = None, dtype=None, trainable: bool = True):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string without '/', "
                             f"got {name!r}")
        self.name = name if name is not None else unique_name(self.default_name)
        self._dtype = None if dtype is None else initializers.float_dtype(dtype, self._who())
        self.trainable = bool(trainable)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.params: dict = {}       # name -> backend array, in Keras' order (kernel, bias)
        self.grads: dict = {}        # name -> gradient of the last backward pass
        self._caches: dict = {}      # node index -> cache of that call's last training forward
        self._nodes: list = []       # graph nodes this layer produced (see minires.graph)

    def _who(self) -> str:
        return f"{type(self).__name__} {getattr(self, 'name', '?')!r}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    @property
    def dtype(self) -> str:
        return self._dtype if self._dtype is not None else initializers.floatx()

    # -- building -----------------------------------------------------------------------------

    def build(self, input_shape) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch dim first, None)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def _ensure_built(self, input_shape, input_dtype=None) -> None:
        if self.built:
            if not _shapes_compatible(self.input_shape, input_shape):
                raise ValueError(f"{self._who()}: was built for inputs of shape {self.input_shape}, "
                                 f"got {input_shape}")
            return
        if self._dtype is None:
            self._dtype = input_dtype if input_dtype in ("float32", "float64") else initializers.floatx()
        output_shape = self.compute_output_shape(input_shape)
        self.build(input_shape)
        self.input_shape, self.output_shape = input_shape, output_shape
        self.built = True

    def add_weight(self, name: str, shape, initializer) -> object:
        """A new parameter made on the host by ``initializer`` and moved to the backend (a host
        placeholder, its shape alone, inside ``initializers.placeholder_parameters()``)."""
        if initializers.making_placeholders():
            self.params[name] = initializers.placeholder(shape, self.dtype)
        else:
            self.params[name] = xp().asarray(initializers.get(initializer)(tuple(shape), self.dtype))
        return self.params[name]

    # -- calling ------------------------------------------------------------------------------

    def __call__(self, inputs, **kwargs):
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        symbolic = [isinstance(t, KerasTensor) for t in items]
        if any(symbolic):
            if not all(symbolic):
                raise ValueError(f"{self._who()}: inputs must be all KerasTensors or all arrays")
            return record_call(self, inputs, **kwargs)
        if kwargs:
            raise ValueError(f"{self._who()}: unsupported call arguments {sorted(kwargs)}")
        inputs = self._build_for_arrays(inputs)
        return to_numpy_if_host(self.forward(inputs, training=False), inputs)

    def _build_for_arrays(self, inputs):
        """Build (or check the shapes of) the layer for concrete input arrays."""
        multi = isinstance(inputs, (list, tuple))
        arrays = [a if hasattr(a, "shape") else xp().asarray(a) for a in (inputs if multi else [inputs])]
        shapes = [(None,) + tuple(a.shape[1:]) for a in arrays]
        dtype = arrays[0].dtype.name if arrays[0].dtype.kind == "f" else None
        self._ensure_built(shapes if multi else shapes[0], dtype)
        return arrays if multi else arrays[0]

    def forward(self, inputs, training: bool = False, return_logits: bool = False, node: int = 0):
        """The layer's output for ``inputs`` (an array, or a list for multi-input layers).

        ``training=True`` keeps the caches that ``backward`` needs, for call ``node`` of a
        shared layer (0 for a layer called once). ``return_logits=True`` stops a layer that
        ends in softmax before its softmax.
        """
        if return_logits and self.output_activation not in FUSABLE_ACTIVATIONS:
            raise ValueError(f"{self._who()}: return_logits=True needs a layer that ends in softmax or sigmoid")
        if not self.built:
            inputs = self._build_for_arrays(inputs)
        out, cache = self._forward(inputs, return_logits, training)
        if training:
            self._caches[node] = cache
        else:
            self._caches.pop(node, None)
        return out

    def backward(self, dout, input_grad: bool = True, node: int = 0, accumulate: bool = False):
        """Gradient of the loss wrt the input(s), given ``dout`` = dL/d(output).

        Needs a preceding ``forward(..., training=True, node=node)``; writes ``self.grads``,
        or with ``accumulate=True`` adds this call's parameter gradients to those already there
        (the later uses of a shared layer). ``input_grad=False``: only the parameter gradients
        are wanted (the input is data); returns None, and layers that can skip their input's
        gradient do.
        """
        cache = self._caches.pop(node, None)
        if cache is None:
            raise RuntimeError(f"{self._who()}: backward needs a forward(..., training=True) first")
        earlier = self.grads if accumulate else None
        if input_grad:
            dx = self._backward(dout, cache)
        else:
            self._backward_weights(dout, cache)
            dx = None
        if earlier:
            # New arrays, never +=: a gradient may be a view of an upstream array.
            self.grads = {name: earlier[name] + g for name, g in self.grads.items()}
        return dx

    def _forward(self, inputs, return_logits, training):
        raise NotImplementedError

    def _backward(self, dout, cache):
        raise NotImplementedError

    def _backward_weights(self, dout, cache):
        """The parameter gradients alone; a layer that can skip its input's gradient overrides it."""
        self._backward(dout, cache)

    @property
    def output_activation(self) -> str:
        """The activation the layer ends in ("linear" when none): what ``return_logits`` skips."""
        return "linear"

    @property
    def ends_in_softmax(self) -> bool:
        return self.output_activation == "softmax"

    # -- parameters ---------------------------------------------------------------------------

    @property
    def weights(self) -> list:
        """The parameters as live backend arrays, in Keras' order."""
        return list(self.params.values())

    def get_weights(self) -> list[numpy.ndarray]:
        """NumPy copies of the parameters, in Keras' order (kernel, bias)."""
        return [numpy.array(to_numpy(p), copy=True) for p in self.params.values()]

    def set_weights(self, weights) -> None:
        """Overwrite the parameters (in place) with arrays of the same shapes."""
        weights = list(weights)
        names = list(self.params)
        if len(weights) != len(names):
            raise ValueError(f"{self._who()}: set_weights expected {len(names)} arrays "
                             f"({', '.join(names) or 'none'}), got {len(weights)}")
        for name, value in zip(names, weights):
            assign_param(self.params[name], value, f"{self._who()}: set_weights: {name}")

    def count_params(self) -> int:
        return sum(int(math.prod(p.shape)) for p in self.params.values())

    # -- configuration ------------------------------------------------------------------------

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)


def assign_param(param, value, who: str) -> None:
    """Copy ``value`` into ``param`` in place, after checking its shape (dtype is cast)."""
    host = numpy.asarray(to_numpy(value))
    if host.dtype.kind not in "fiu":
        raise ValueError(f"{who}: expected a numeric array, got dtype {host.dtype}")
    if tuple(host.shape) != tuple(param.shape):
        raise ValueError(f"{who}: expected shape {tuple(param.shape)}, got {tuple(host.shape)}")
    param[...] = array_module(param).asarray(host.astype(param.dtype, copy=False))


def to_numpy_if_host(out, inputs):
    """Eager calls give back what they were given: NumPy in, NumPy out."""
    first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    return to_numpy(out) if isinstance(first, numpy.ndarray) else out


def _shapes_compatible(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_shapes_compatible(x, y) for x, y in zip(a, b)))
    if len(a) != len(b):
        return False
    return all(x is None or y is None or x == y for x, y in zip(a, b))


def _require_rank(who: str, input_shape, rank: int, meaning: str) -> None:
    if isinstance(input_shape, list) or len(input_shape) != rank:
        raise ValueError(f"{who}: input must be {rank}-D {meaning}, got shape {input_shape}")


# --- layers with parameters ------------------------------------------------------------------

class Conv2D(Layer):
    """2-D convolution, NHWC x HWIO, optionally followed by an activation (ops.conv2d_*)."""

    default_name = "conv2d"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 data_format=None, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        who = self._who()
        self.filters = _positive_int(who, "filters", filters)
        self.kernel_size = _int_pair(who, "kernel_size", kernel_size)
        self.strides = _int_pair(who, "strides", strides)
        self.padding = _padding(who, padding)
        self.activation = _activation_name(who, activation)
        if not isinstance(use_bias, bool):
            raise ValueError(f"{who}: use_bias must be True or False, got {use_bias!r}")
        self.use_bias = use_bias
        _data_format(who, data_format)
        self.kernel_initializer = _initializer(who, "kernel_initializer", kernel_initializer)
        self.bias_initializer = _initializer(who, "bias_initializer", bias_initializer)

    def compute_output_shape(self, input_shape):
        _require_rank(self._who(), input_shape, 4, "(batch, height, width, channels)")
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        h = _window_out(input_shape[1], kh, sh, self.padding)
        w = _window_out(input_shape[2], kw, sw, self.padding)
        if (h is not None and h < 1) or (w is not None and w < 1):
            raise ValueError(f"{self._who()}: kernel_size {self.kernel_size} does not fit the input "
                             f"{input_shape[1:3]} with padding 'valid'")
        return (input_shape[0], h, w, self.filters)

    def build(self, input_shape):
        channels = input_shape[3]
        if channels is None:
            raise ValueError(f"{self._who()}: the channel dimension of the input must be known, "
                             f"got shape {input_shape}")
        self.add_weight("kernel", (*self.kernel_size, channels, self.filters), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    @property
    def output_activation(self):
        return self.activation

    def _forward(self, x, return_logits, training):
        act = "linear" if return_logits else self.activation
        fused = "relu" if act == "relu" else None        # bias + ReLU in one pass (ops.bias_relu)
        z, conv_cache = ops.conv2d_forward(x, self.params["kernel"], self.params.get("bias"),
                                           stride=self.strides, padding=self.padding,
                                           activation=fused, keep_cache=training)
        if fused:
            return z, (conv_cache, "linear", None)
        y, act_cache = activation_forward(act, z)
        return y, (conv_cache, act, act_cache)

    def fuses_with(self, pool, training: bool = False) -> bool:
        """Whether ``forward_pooled`` can run this layer and ``pool`` (a layer reading this
        one's output, and nothing else reading it) as one step: a 2x2, stride-2, 'valid'
        MaxPooling2D after a linear or ReLU convolution; in training, after a ReLU one only
        (where the pair gains: ``ops.conv2d_maxpool_forward`` may apply the ReLU after the
        pool, on a quarter of the values; a linear pair would run the same two ops)."""
        return (isinstance(pool, MaxPooling2D) and pool.pool_size == (2, 2) and pool.strides == (2, 2)
                and pool.padding == "valid" and self.built
                and self.activation in (("relu",) if training else ("linear", "relu")))

    def forward_pooled(self, x, node: int = 0, training: bool = False):
        """This layer's output max-pooled 2x2 at stride 2 (``fuses_with``), by
        ``ops.conv2d_maxpool_forward``, which never writes the full-size output where the
        backend fuses the two. In training, the pair's cache is kept as this layer's, and
        ``backward`` then takes the gradient of the pooled output."""
        y, cache = ops.conv2d_maxpool_forward(x, self.params["kernel"], self.params.get("bias"),
                                              stride=self.strides, padding=self.padding,
                                              activation="relu" if self.activation == "relu" else None,
                                              keep_cache=training)
        if training:
            self._caches[node] = cache
        else:
            self._caches.pop(node, None)
        return y

    def _backward(self, dy, cache):
        return self._gradients(dy, cache, input_grad=True)

    def _backward_weights(self, dy, cache):
        self._gradients(dy, cache, input_grad=False)

    def _gradients(self, dy, cache, input_grad):
        if isinstance(cache, ops.ConvMaxPoolCache):          # forward_pooled: dy is the pool's
            dx, dw, db = ops.conv2d_maxpool_backward(dy, cache, input_grad=input_grad)
        else:
            conv_cache, act, act_cache = cache
            dz = activation_backward(act, dy, act_cache)
            dx, dw, db = ops.conv2d_backward(dz, conv_cache, input_grad=input_grad)
        self.grads = {"kernel": dw} if db is None else {"kernel": dw, "bias": db}
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class Dense(Layer):
    """Fully connected layer y = x @ kernel + bias on (batch, features), then an activation."""

    default_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        who = self._who()
        self.units = _positive_int(who, "units", units)
        self.activation = _activation_name(who, activation)
        if not isinstance(use_bias, bool):
            raise ValueError(f"{who}: use_bias must be True or False, got {use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = _initializer(who, "kernel_initializer", kernel_initializer)
        self.bias_initializer = _initializer(who, "bias_initializer", bias_initializer)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(f"{self._who()}: input must be 2-D (batch, features), got shape "
                             f"{input_shape}; add a Flatten() layer before it")
        return (input_shape[0], self.units)

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError(f"{self._who()}: the feature dimension of the input must be known, "
                             f"got shape {input_shape}")
        self.add_weight("kernel", (input_shape[1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    @property
    def output_activation(self):
        return self.activation

    def _forward(self, x, return_logits, training):
        z, dense_cache = ops.dense_forward(x, self.params["kernel"], self.params.get("bias"))
        act = "linear" if return_logits else self.activation
        y, act_cache = activation_forward(act, z)
        return y, (dense_cache, act, act_cache)

    def _backward(self, dy, cache):
        dense_cache, act, act_cache = cache
        dz = activation_backward(act, dy, act_cache)
        dx, dw, db = ops.dense_backward(dz, dense_cache)
        self.grads = {"kernel": dw} if db is None else {"kernel": dw, "bias": db}
        return dx

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


def _initializer(who, arg, value):
    try:
        return initializers.get(value)
    except ValueError as exc:
        raise ValueError(f"{who}: {arg}: {exc}") from None


# --- layers without parameters ---------------------------------------------------------------

class MaxPooling2D(Layer):
    """Max over pool_size windows of each channel (ops.maxpool2d_*); strides default to pool_size."""

    default_name = "max_pooling2d"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        who = self._who()
        self.pool_size = _int_pair(who, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _int_pair(who, "strides", strides)
        self.padding = _padding(who, padding)
        _data_format(who, data_format)

    def compute_output_shape(self, input_shape):
        _require_rank(self._who(), input_shape, 4, "(batch, height, width, channels)")
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        h = _window_out(input_shape[1], ph, sh, self.padding)
        w = _window_out(input_shape[2], pw, sw, self.padding)
        if (h is not None and h < 1) or (w is not None and w < 1):
            raise ValueError(f"{self._who()}: pool_size {self.pool_size} is larger than the input "
                             f"{input_shape[1:3]} with padding 'valid'")
        return (input_shape[0], h, w, input_shape[3])

    def _forward(self, x, return_logits, training):
        return ops.maxpool2d_forward(x, pool_size=self.pool_size, strides=self.strides,
                                     padding=self.padding, keep_cache=training)

    def _backward(self, dy, cache):
        return ops.maxpool2d_backward(dy, cache)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


MaxPool2D = MaxPooling2D


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...), row-major: Keras' order on NHWC."""

    default_name = "flatten"

    def __init__(self, data_format=None, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        _data_format(self._who(), data_format)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{self._who()}: input must have a batch dim and at least one more, "
                             f"got shape {input_shape}")
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def _forward(self, x, return_logits, training):
        return ops.flatten_forward(x)

    def _backward(self, dy, cache):
        return ops.flatten_backward(dy, cache)


class Reshape(Layer):
    """Reshape each example to ``target_shape`` (one entry may be -1, inferred)."""

    default_name = "reshape"

    def __init__(self, target_shape, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        who = self._who()
        try:
            target = tuple(target_shape)
        except TypeError:
            raise ValueError(f"{who}: target_shape must be a tuple of ints, got {target_shape!r}") from None
        if not all(is_int(d) and (d >= 1 or d == -1) for d in target) or sum(d == -1 for d in target) > 1:
            raise ValueError(f"{who}: target_shape must be positive ints with at most one -1, "
                             f"got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{self._who()}: input must have a batch dim and at least one more, "
                             f"got shape {input_shape}")
        rest = input_shape[1:]
        if None in rest:
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"{self._who()}: cannot reshape {rest} ({size} values) to "
                                 f"{self.target_shape}")
            out = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            if size != known:
                raise ValueError(f"{self._who()}: cannot reshape {rest} ({size} values) to "
                                 f"{self.target_shape} ({known} values)")
            out = self.target_shape
        return (input_shape[0], *out)

    def _forward(self, x, return_logits, training):
        return x.reshape((x.shape[0], *self.target_shape)), tuple(x.shape)

    def _backward(self, dy, cache):
        # A reshape moves no value, so its gradient is the upstream gradient reshaped back.
        return dy.reshape(cache)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Activation(Layer):
    """An activation on its own: "relu", "softmax" (last axis) or "linear"."""

    default_name = "activation"

    def __init__(self, activation, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.activation = _activation_name(self._who(), activation)

    @property
    def output_activation(self):
        return self.activation

    def _forward(self, x, return_logits, training):
        act = "linear" if return_logits else self.activation
        y, cache = activation_forward(act, x)
        return y, (act, cache)

    def _backward(self, dy, cache):
        act, act_cache = cache
        return activation_backward(act, dy, act_cache)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class Add(Layer):
    """Element-wise sum of two or more inputs of one shape: the residual connection."""

    default_name = "add"

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{self._who()}: needs a list of at least 2 inputs, got {input_shape}")
        first = input_shape[0]
        for shape in input_shape[1:]:
            if not _shapes_compatible(first, shape):
                raise ValueError(f"{self._who()}: inputs must all have the same shape, got "
                                 f"{', '.join(map(str, input_shape))}")
        return first

    def _forward(self, inputs, return_logits, training):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{self._who()}: needs a list of at least 2 arrays")
        y, caches = inputs[0], []
        for other in inputs[1:]:
            y, cache = ops.add_forward(y, other)
            caches.append(cache)
        return y, caches

    def _backward(self, dy, caches):
        # Walk the chain (((a + b) + c) + ...) backwards; every input receives dy unchanged.
        grads = []
        for cache in reversed(caches):
            dy, dother = ops.add_backward(dy, cache)
            grads.append(dother)
        grads.append(dy)
        return grads[::-1]


def add(inputs, **kwargs):
    """Functional form of ``Add``: ``add([a, b])``."""
    return Add(**kwargs)(inputs)


class _TwoInputs(Layer):
    """A layer of exactly two inputs of one shape (``ops.<op>_forward(a, b)``)."""

    _op = None   # (forward, backward) of the op

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(f"{self._who()}: needs a list of exactly 2 inputs, got {input_shape}")
        if not _shapes_compatible(*input_shape):
            raise ValueError(f"{self._who()}: inputs must have the same shape, got "
                             f"{input_shape[0]} and {input_shape[1]}")
        return input_shape[0]

    def _forward(self, inputs, return_logits, training):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"{self._who()}: needs a list of exactly 2 arrays")
        return type(self)._op[0](*inputs)

    def _backward(self, dy, cache):
        return list(type(self)._op[1](dy, cache))


class Subtract(_TwoInputs):
    """Keras' Subtract: ``a - b`` of two inputs of one shape (ops.subtract_*)."""

    default_name = "subtract"
    _op = (ops.subtract_forward, ops.subtract_backward)


class AbsoluteDifference(_TwoInputs):
    """``|a - b|`` of two inputs of one shape (ops.abs_diff_*; gradient 0 where a == b): how a
    Siamese change detector compares its two branches' features."""

    default_name = "absolute_difference"
    _op = (ops.abs_diff_forward, ops.abs_diff_backward)


def subtract(inputs, **kwargs):
    """Functional form of ``Subtract``: ``subtract([a, b])``."""
    return Subtract(**kwargs)(inputs)


class Concatenate(Layer):
    """Keras' Concatenate: two or more inputs joined along ``axis`` (default the channels)."""

    default_name = "concatenate"

    def __init__(self, axis=-1, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        if not is_int(axis):
            raise ValueError(f"{self._who()}: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        who = self._who()
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{who}: needs a list of at least 2 inputs, got {input_shape}")
        rank = len(input_shape[0])
        if not -rank < self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"{who}: axis {self.axis} is not a non-batch axis of inputs of rank {rank}")
        axis = self.axis % rank
        for shape in input_shape:
            if len(shape) != rank or not all(
                    a is None or b is None or a == b
                    for i, (a, b) in enumerate(zip(shape, input_shape[0])) if i != axis):
                raise ValueError(f"{who}: inputs must match on every axis but {self.axis}, got "
                                 f"{', '.join(map(str, input_shape))}")
        sizes = [shape[axis] for shape in input_shape]
        out = list(input_shape[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def _forward(self, inputs, return_logits, training):
        return ops.concat_forward(list(inputs), axis=self.axis)

    def _backward(self, dy, cache):
        return list(ops.concat_backward(dy, cache))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of ``Concatenate``: ``concatenate([a, b], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


class UpSampling2D(Layer):
    """Keras' UpSampling2D with interpolation "nearest": each pixel repeated into a
    size[0] x size[1] block (ops.upsample2d_*), NHWC."""

    default_name = "up_sampling2d"

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", name=None, dtype=None,
                 trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        who = self._who()
        self.size = _int_pair(who, "size", size)
        _data_format(who, data_format)
        if interpolation != "nearest":
            raise ValueError(f"{who}: interpolation must be 'nearest', got {interpolation!r}")

    def compute_output_shape(self, input_shape):
        _require_rank(self._who(), input_shape, 4, "(batch, height, width, channels)")
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def _forward(self, x, return_logits, training):
        return ops.upsample2d_forward(x, self.size)

    def _backward(self, dy, cache):
        return ops.upsample2d_backward(dy, cache)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size)}


class InstanceNormalization(Layer):
    """Each image's channels brought to mean 0 and variance 1 over its pixels
    (ops.instance_norm_*), NHWC, with no learned scale or shift: Keras'
    ``GroupNormalization(groups=-1, center=False, scale=False)``. A change net puts it on both
    inputs, so that a global gain and offset per channel (brightness, contrast, a colour
    cast) is not seen as change."""

    default_name = "instance_normalization"

    def __init__(self, epsilon=1e-3, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.epsilon = check_epsilon(self._who(), epsilon)

    def compute_output_shape(self, input_shape):
        _require_rank(self._who(), input_shape, 4, "(batch, height, width, channels)")
        return input_shape

    def _forward(self, x, return_logits, training):
        return ops.instance_norm_forward(x, self.epsilon)

    def _backward(self, dy, cache):
        return ops.instance_norm_backward(dy, cache)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


LAYER_CLASSES = {cls.__name__: cls for cls in (Conv2D, Dense, MaxPooling2D, Flatten, Reshape,
                                                Activation, Add, Subtract, AbsoluteDifference,
                                                Concatenate, UpSampling2D, InstanceNormalization)}
