"""The eight ops computed by Keras 3's own layers and losses, gradients by its backend's autodiff.

Keras picks its backend once per process, from ``KERAS_BACKEND``, which must be set before
this module is imported (Keras' default, TensorFlow, is not supported here); the registry
runs it as ``keras-jax`` (``KERAS_BACKEND=jax``) and ``keras-torch`` (``KERAS_BACKEND=torch``),
each in a worker process of its own. On the JAX backend, importing this module turns on
``jax_enable_x64`` for the process, since JAX computes float64 only with it.

Each op is what a Keras user writes: ``Conv2D``, ``MaxPooling2D``, ``ReLU``, ``Add``,
``Flatten``, ``Dense``, ``Softmax`` layers, ``CategoricalCrossentropy(from_logits=True)``
for probability rows and ``SparseCategoricalCrossentropy(from_logits=True)`` for class ids,
built after ``keras.config.set_floatx(dtype)`` and ``set_dtype_policy(dtype)``. Layers with
weights run through ``stateless_call`` with minires' arrays as their weights, so the backend
can differentiate with respect to them: ``jax.vjp`` of the jitted forward pass on JAX,
``torch.autograd.grad`` on PyTorch.

minires              Keras
NHWC, HWIO, (in, out) the same ("channels_last", Keras' default): no transposes
'same' / 'valid'     passed to Keras as they are, so that Keras' own rule is the one tested
explicit pads        ZeroPadding2D(((top, bottom), (left, right))) then Conv2D(padding="valid"):
                     Keras' Conv2D has no explicit padding
results              returned in the dtype Keras returned them in, never cast

Conventions and findings measured from Keras 3.15.1 (tests/frameworks/test_keras_adapter.py
checks each, on both backends):
- 'same' puts the odd padding pixel at the bottom/right (on PyTorch, Keras pads the max-pool
  input by replicating the edge, which changes neither the maxima nor where they are).
- The gradient of a tied max-pool window goes to its first maximum in row-major order.
- ReLU'(0) = 0.
- On the PyTorch backend with floatx float64, Keras' type promotion maps every 64-bit result
  type to its 32-bit one (keras.src.backend.common.dtypes, "to be aligned with JAX's default
  behavior"), and two of the ops used here cast their result to that type:
  ``keras.ops.matmul`` of two float64 tensors returns float32, so a float64 Dense layer is
  only float32-accurate (its output is float32 without a bias, float64 again after a float64
  bias is added, float32-rounded either way; its x and kernel gradients likewise); and
  ``keras.ops.divide_no_nan``, with which a loss divides its sum by the batch size, so the
  cross-entropy's value and its gradient are float32-rounded too. On the JAX backend the same
  ops stay float64. docs/findings/keras_torch_float64_matmul.py reproduces the first.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

if os.environ.get("KERAS_BACKEND") not in ("jax", "torch"):
    raise ImportError("minires.frameworks.keras_adapter: set KERAS_BACKEND to 'jax' or 'torch' "
                      f"before importing it, got {os.environ.get('KERAS_BACKEND')!r}")

import keras  # noqa: E402  (after the backend is checked)

BACKEND = keras.backend.backend()
NAME = f"keras-{BACKEND}"

if BACKEND == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)

    def _differentiate(forward, primals, dy):
        """(y, gradients of y along dy with respect to each primal), by jax.vjp of the
        jit-compiled forward pass, as Keras runs on JAX (its train steps are jitted)."""
        y, pullback = jax.vjp(jax.jit(forward), *(jax.numpy.asarray(p) for p in primals))
        return y, pullback(jax.numpy.asarray(dy, dtype=y.dtype).reshape(y.shape))

    def _numpy(t):
        return np.asarray(t)

    def _backend_version():
        return jax.__version__
else:
    import torch

    def _differentiate(forward, primals, dy):
        """(y, gradients of y along dy with respect to each primal), by torch.autograd.

        The upstream gradient takes y's dtype (float32 where Keras returned float32 from
        float64 inputs); autograd then returns each gradient in its input's dtype."""
        leaves = [torch.tensor(np.ascontiguousarray(p), requires_grad=True) for p in primals]
        y = forward(*leaves)
        grads = torch.autograd.grad(y, leaves, torch.as_tensor(np.asarray(dy)).to(y.dtype).reshape(y.shape))
        return y, grads

    def _numpy(t):
        return t.detach().cpu().numpy()

    def _backend_version():
        return torch.__version__


def versions() -> dict[str, str]:
    """The versions of Keras and of the backend it runs on."""
    return {"keras": keras.__version__, BACKEND: _backend_version()}


def _given(array):
    """An initializer that returns ``array``: the layer starts from minires' weights, and
    building it runs no random initializer (on JAX, each would be compiled for its shape)."""
    return lambda shape, dtype=None: keras.ops.convert_to_tensor(array, dtype=dtype)


def _with_weights(layer, input_shape):
    """``layer`` built for ``input_shape``, as a function of (x, kernel[, bias]):
    ``stateless_call`` takes the weights as arguments, so the backend differentiates them."""
    layer.build(tuple(input_shape))

    def call(x, *weights):
        y, _ = layer.stateless_call(list(weights), [], x)
        return y
    return call


# Each op below takes minires' inputs (as NumPy arrays) and options, builds the Keras layers,
# and returns the forward pass as a function of the inputs it is differentiated with respect
# to (all but the labels), in the order of its own arguments.

def conv2d(x, w, b=None, stride=1, padding="same"):
    pad = None
    if not isinstance(padding, str):
        pad = keras.layers.ZeroPadding2D((padding, padding) if isinstance(padding, (int, np.integer))
                                         else tuple(padding))
        padding = "valid"
    conv = keras.layers.Conv2D(w.shape[-1], tuple(w.shape[:2]), strides=stride, padding=padding,
                               use_bias=b is not None, kernel_initializer=_given(w),
                               bias_initializer=_given(b))
    call = _with_weights(conv, x.shape if pad is None else pad.compute_output_shape(x.shape))
    return call if pad is None else lambda x, *weights: call(pad(x), *weights)


def maxpool2d(x, pool_size=2, strides=None, padding="valid"):
    return keras.layers.MaxPooling2D(pool_size, strides, padding=padding)


def relu(x):
    return keras.layers.ReLU()


def add(a, b):
    layer = keras.layers.Add()
    return lambda a, b: layer([a, b])


def flatten(x):
    return keras.layers.Flatten()


def dense(x, w, b=None):
    layer = keras.layers.Dense(w.shape[1], use_bias=b is not None, kernel_initializer=_given(w),
                               bias_initializer=_given(b))
    return _with_weights(layer, x.shape)


def softmax(x, axis=-1):
    return keras.layers.Softmax(axis=axis)


def softmax_cross_entropy(logits, labels):
    """The mean over the batch ("sum_over_batch_size", Keras' default reduction)."""
    if labels.dtype.kind in "iu":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    labels = keras.ops.convert_to_tensor(labels)
    return lambda logits: loss(labels, logits)


_OPS = {fn.__name__: fn for fn in (conv2d, maxpool2d, relu, add, flatten, dense, softmax,
                                   softmax_cross_entropy)}


def run_op(op: str, inputs: dict, options: dict, dy, dtype: str) -> dict:
    """{"y": forward value, "d<input>": gradient of each differentiable input} for upstream
    gradient ``dy``, all as NumPy arrays in minires' layouts, in the dtypes Keras returned."""
    if op not in _OPS:
        raise ValueError(f"{NAME}: unknown op {op!r}, expected one of {', '.join(_OPS)}")
    fn = _OPS[op]
    # Both: floatx for what reads it (losses, tensors made from Python numbers), and the
    # default dtype policy for new layers, which Keras fixes from floatx on first use and
    # never updates when floatx changes later.
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    arrays = {name: np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for name, a in inputs.items() if a is not None}
    # every input but the labels is differentiated, in the order of the op's arguments
    names = [name for name in inspect.signature(fn).parameters if name in arrays and name != "labels"]
    y, grads = _differentiate(fn(**arrays, **options), [arrays[name] for name in names], dy)
    out = {"y": _numpy(y)}
    out.update({f"d{name}": _numpy(g) for name, g in zip(names, grads)})
    return out
