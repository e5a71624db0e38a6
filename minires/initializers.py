"""How new parameters get their values: initializers, the random generator they draw from,
and the default float type.

Parameters are created on the host with NumPy (a ``numpy.random.Generator``), then moved to
the current backend by the layer that owns them, so a seed gives the same weights on every
device.

Glorot (Xavier) uniform, Keras' default kernel initializer, draws

    w ~ U(-limit, limit),   limit = sqrt(6 / (fan_in + fan_out))

with, for a dense kernel (in, out), fan_in = in and fan_out = out, and for a conv kernel
HWIO (kh, kw, c_in, c_out), fan_in = kh*kw*c_in and fan_out = kh*kw*c_out (each output pixel
reads kh*kw*c_in values; each input value reaches kh*kw*c_out outputs). The variance
limit^2 / 3 = 2 / (fan_in + fan_out) keeps activations and gradients of similar scale from
layer to layer (Glorot & Bengio, 2010).

Randomness: every initializer without its own ``seed`` draws from one global generator, reset
by ``set_random_seed(seed)``; a model also takes its shuffling generator from it. So

    set_random_seed(0); model = build_resnet()

gives the same weights, and the same training run, every time.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy

_FLOAT_TYPES = ("float32", "float64")

_state = {"rng": numpy.random.default_rng(), "floatx": "float32", "placeholders": False}


# --- the default float type ------------------------------------------------------------------

def floatx() -> str:
    """The dtype new inputs and layers get when none is given: "float32" unless changed."""
    return _state["floatx"]


def set_floatx(value: str) -> None:
    """Set the default float type of new inputs and layers ("float32" or "float64")."""
    name = numpy.dtype(value).name if _is_dtype_like(value) else None
    if name not in _FLOAT_TYPES:
        raise ValueError(f"set_floatx: value must be 'float32' or 'float64', got {value!r}")
    _state["floatx"] = name


def _is_dtype_like(value) -> bool:
    try:
        numpy.dtype(value)
    except TypeError:
        return False
    return True


def float_dtype(value, who: str) -> str:
    """``value`` (a dtype, its name, or None for floatx()) as "float32" or "float64"."""
    if value is None:
        return floatx()
    name = numpy.dtype(value).name if _is_dtype_like(value) else None
    if name not in _FLOAT_TYPES:
        raise ValueError(f"{who}: dtype must be 'float32' or 'float64', got {value!r}")
    return name


# --- the global generator --------------------------------------------------------------------

def set_random_seed(seed: int) -> None:
    """Reset the global generator that initializers and new models draw from."""
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be an int >= 0, got {seed!r}")
    _state["rng"] = numpy.random.default_rng(int(seed))


def global_generator() -> numpy.random.Generator:
    """The generator that initializers without their own seed draw from."""
    return _state["rng"]


@contextlib.contextmanager
def use_generator(rng: numpy.random.Generator) -> Iterator[numpy.random.Generator]:
    """Draw from ``rng`` instead of the global generator inside a block.

    Used to build a model from a seed (``build_resnet(seed=0)``) without touching the global
    stream, and to rebuild a saved model without consuming it.
    """
    previous = _state["rng"]
    _state["rng"] = rng
    try:
        yield rng
    finally:
        _state["rng"] = previous


# --- parameters that are only shapes ----------------------------------------------------------

@contextlib.contextmanager
def placeholder_parameters() -> Iterator[None]:
    """Inside the block, layers give their new parameters no memory and no values.

    Each parameter is a read-only zero-stride view (``placeholder``) that has the shape and
    dtype of the real one. A file's architecture is built this way before its arrays are
    checked against it, so that a few bytes declaring a huge layer allocate nothing.
    """
    previous = _state["placeholders"]
    _state["placeholders"] = True
    try:
        yield
    finally:
        _state["placeholders"] = previous


def making_placeholders() -> bool:
    """True inside ``placeholder_parameters()``."""
    return _state["placeholders"]


def placeholder(shape, dtype) -> numpy.ndarray:
    """A read-only array of ``shape`` and ``dtype`` that takes no memory (every element is one)."""
    return numpy.broadcast_to(numpy.zeros((), dtype=float_dtype(dtype, "placeholder")), tuple(shape))


# --- initializers ----------------------------------------------------------------------------

def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: (in, out) for dense, HWIO for conv (see module doc)."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


class Initializer:
    """Makes a host (NumPy) array of a given shape and dtype."""

    def __call__(self, shape, dtype=None) -> numpy.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        return cls(**config)


class Zeros(Initializer):
    """All zeros: Keras' default bias."""

    def __call__(self, shape, dtype=None):
        return numpy.zeros(tuple(shape), dtype=float_dtype(dtype, "Zeros"))


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return numpy.ones(tuple(shape), dtype=float_dtype(dtype, "Ones"))


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return numpy.full(tuple(shape), self.value, dtype=float_dtype(dtype, "Constant"))

    def get_config(self):
        return {"value": self.value}


class _Random(Initializer):
    """An initializer that draws from its own seeded generator, or else the global one."""

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer))):
            raise ValueError(f"{type(self).__name__}: seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else numpy.random.default_rng(self.seed)

    def _generator(self) -> numpy.random.Generator:
        return self._rng if self._rng is not None else global_generator()

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_Random):
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)): Keras' default kernel."""

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(tuple(shape))
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        values = self._generator().uniform(-limit, limit, size=tuple(shape))
        return values.astype(float_dtype(dtype, "GlorotUniform"))


class GlorotNormal(_Random):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out)), cut at 2 stddev (Keras)."""

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(tuple(shape))
        # Keras divides by .87962566 so the truncated distribution keeps the wanted variance.
        std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
        return _truncated_normal(self._generator(), std, shape).astype(float_dtype(dtype, "GlorotNormal"))


class HeUniform(_Random):
    """U(-limit, limit), limit = sqrt(6 / fan_in): suits ReLU networks (He et al., 2015)."""

    def __call__(self, shape, dtype=None):
        fan_in, _ = compute_fans(tuple(shape))
        limit = math.sqrt(6.0 / fan_in)
        values = self._generator().uniform(-limit, limit, size=tuple(shape))
        return values.astype(float_dtype(dtype, "HeUniform"))


class RandomNormal(_Random):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        values = self._generator().normal(self.mean, self.stddev, size=tuple(shape))
        return values.astype(float_dtype(dtype, "RandomNormal"))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Random):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        values = self._generator().uniform(self.minval, self.maxval, size=tuple(shape))
        return values.astype(float_dtype(dtype, "RandomUniform"))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng, std, shape):
    values = rng.normal(0.0, std, size=tuple(shape))
    bad = numpy.abs(values) > 2 * std
    while bad.any():
        values[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = numpy.abs(values) > 2 * std
    return values


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier) -> Initializer:
    """An initializer from a name ("glorot_uniform"), a class name, a config dict, or itself."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in _BY_CLASS else identifier.lower()
        cls = _BY_CLASS.get(key) or _BY_NAME.get(key)
        if cls is None:
            raise ValueError(
                f"unknown initializer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown initializer class {identifier['class_name']!r}")
        return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"initializer must be a name, a config dict or an Initializer, got {identifier!r}")


def serialize(initializer: Initializer) -> dict:
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
