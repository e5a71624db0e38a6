"""The eight ops computed by JAX (``jax.lax`` and ``jax.numpy``), gradients by ``jax.vjp``.

Each op's forward pass is ``jax.jit``-compiled, as JAX code runs in practice, and
differentiated by ``jax.vjp`` with minires' upstream gradient ``dy``.

Importing this module turns on ``jax_enable_x64`` for the whole process, since JAX computes
float64 only with it (without it, float64 arrays silently become float32). That is a process
setting, so the module is only ever imported in a worker process of its own (``minires verify``
runs each framework in a child process), never in minires' own process.

minires              JAX
NHWC activations     NHWC       dimension_numbers ("NHWC", "HWIO", "NHWC"): no transposes
HWIO conv kernel     HWIO
(in, out) dense      (in, out)  x @ w + b
'same' / 'valid'     JAX's own "SAME" / "VALID" strings, so that JAX's rule is the one tested
explicit pads        [(top, bottom), (left, right)] as given
max-pool             lax.reduce_window(x, -inf, lax.max, ...): padding takes no part in a max

Conventions measured from JAX (tests/frameworks/test_jax_adapter.py checks each):
- "SAME" puts the odd padding pixel at the end (bottom/right), as Keras does.
- The gradient of a tied max-pool window goes to one element, the first maximum in row-major
  window order.
- ReLU'(0) = 0 (``jax.nn.relu``).

Softmax cross-entropy is written as JAX code writes it (optax's form): the mean over the batch
of ``-sum(t * log_softmax(z))`` for probability rows, and of ``-log_softmax(z)[label]`` for
class ids. Float inputs are converted to the requested dtype; results are returned in the dtype
JAX computed them in.
"""

from __future__ import annotations

import inspect
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after x64 is on, so float64 stays float64)
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

NAME = "jax"


def versions() -> dict[str, str]:
    """The versions of JAX and of its compiled half, jaxlib."""
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


def _padding(padding):
    """JAX's padding for minires' forms: its own strings, or [(top, bottom), (left, right)]."""
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, (int, np.integer)):
        return [(padding, padding), (padding, padding)]
    return [_pair(side) for side in padding]


def conv2d(x, w, b=None, stride=1, padding="same"):
    y = lax.conv_general_dilated(x, w, window_strides=_pair(stride), padding=_padding(padding),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if b is None else y + b


def maxpool2d(x, pool_size=2, strides=None, padding="valid"):
    kernel = _pair(pool_size)
    step = kernel if strides is None else _pair(strides)
    return lax.reduce_window(x, np.array(-np.inf, dtype=x.dtype), lax.max, (1, *kernel, 1),
                             (1, *step, 1), _padding(padding))


def relu(x):
    return jax.nn.relu(x)


def add(a, b):
    return a + b


def flatten(x):
    return x.reshape(x.shape[0], -1)     # row-major over (h, w, c), as Keras flattens


def dense(x, w, b=None):
    y = x @ w
    return y if b is None else y + b


def softmax(x, axis=-1):
    return jax.nn.softmax(x, axis=axis)


def softmax_cross_entropy(logits, labels):
    log_p = jax.nn.log_softmax(logits, axis=-1)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=-1))
    return -jnp.mean(jnp.sum(labels * log_p, axis=-1))


_OPS = {fn.__name__: fn for fn in (conv2d, maxpool2d, relu, add, flatten, dense, softmax,
                                   softmax_cross_entropy)}


def run_op(op: str, inputs: dict, options: dict, dy, dtype: str) -> dict:
    """{"y": forward value, "d<input>": gradient of each differentiable input} for upstream
    gradient ``dy``, all as NumPy arrays in minires' layouts."""
    if op not in _OPS:
        raise ValueError(f"{NAME}: unknown op {op!r}, expected one of {', '.join(_OPS)}")
    fn = _OPS[op]
    arrays = {name: jnp.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else jnp.asarray(a)
              for name, a in inputs.items() if a is not None}
    # every input but the labels is differentiated, in the order of the op's arguments
    names = [name for name in inspect.signature(fn).parameters if name in arrays and name != "labels"]
    fixed = {name: a for name, a in arrays.items() if name not in names}

    def forward(*args):
        return fn(**dict(zip(names, args)), **fixed, **options)

    y, pullback = jax.vjp(jax.jit(forward), *(arrays[name] for name in names))
    grads = pullback(jnp.asarray(dy, dtype=y.dtype).reshape(y.shape))
    out = {"y": np.asarray(y)}
    out.update({f"d{name}": np.asarray(g) for name, g in zip(names, grads)})
    return out
