"""Parameter updates applied in place: Adam (Keras' and PyTorch's epsilon) and SGD (momentum,
Nesterov), for optimizers to call on any backend.

Step t = 1, 2, ...; g is the gradient; every line is element by element.

Adam in Keras' form (Kingma & Ba 2015, section 2's "epsilon hat" variant), the bias
corrections folded into the step size ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``::

    m <- m + (1 - b1) (g - m)                  (= b1 m + (1 - b1) g)
    v <- v + (1 - b2) (g^2 - v)                (= b2 v + (1 - b2) g^2)
    param <- param - lr_t * m / (sqrt(v) + eps)

Adam in PyTorch's form (``torch.optim.Adam``, the paper's Algorithm 1), eps added to the
bias-corrected root::

    param <- param - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

Multiplying its numerator and denominator by sqrt(1 - b2^t) shows that the two agree exactly
when PyTorch's eps equals Keras' eps / sqrt(1 - b2^t): a factor that depends on the step
(about 32 at t = 1 with b2 = 0.999), so no single eps makes them equal except eps = 0. The
difference matters only where sqrt(v) is comparable to eps. ``adam_update`` is Keras' form,
``adam_torch_update`` PyTorch's.

SGD in Keras' form, a velocity that holds the step itself::

    param <- param - lr * g                                  (momentum = 0: no velocity)
    velocity <- momentum * velocity - lr * g
    param <- param + velocity                                (momentum)
    param <- param + momentum * velocity - lr * g            (Nesterov, the new velocity)

PyTorch's ``torch.optim.SGD`` keeps a buffer of gradients instead, buf <- momentum * buf + g,
and steps param <- param - lr * buf (Nesterov: param - lr * (g + momentum * buf)). With a
constant lr, velocity = -lr * buf and the two are one method; when lr changes between steps
they differ, since Keras' velocity keeps the old steps at their old rates.

The scalars are used as Python floats, so float32 parameters are updated in float32. Each
``*_many`` form updates lists of parameters in one call: a model's step updates many small
arrays, and on the ``numba`` backend Keras' Adam runs one fused kernel over all of them
(the ``adam_update_many`` kernel).
"""

from __future__ import annotations

import math

from ..backend import array_module, kernel
from ..windows import is_int
from ._checks import as_float_array, check_same_dtype, check_shape

_OP = "adam_update"
_TORCH_OP = "adam_torch_update"
_SGD_OP = "sgd_update"


def _check(op: str, **arrays) -> None:
    """Arrays of one floating dtype and of the first one's shape, each writable in place."""
    first = next(iter(arrays.values()))
    for name, a in arrays.items():
        if not hasattr(a, "shape"):
            raise TypeError(f"{op}: {name} must be an array (it is updated in place), "
                            f"got {type(a).__name__}")
        as_float_array(op, name, a)
        check_shape(op, name, a, first.shape)
    check_same_dtype(op, **arrays)


def _number(op: str, name: str, value, below_one: bool = False) -> float:
    """``value`` as a Python float, finite and >= 0 (and < 1 when ``below_one``)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (below_one and value >= 1):
        expected = "in [0, 1)" if below_one else ">= 0"
        raise ValueError(f"{op}: {name} must be a finite number {expected}, got {value!r}")
    return value


def _adam_constants(op: str, beta1, beta2, eps) -> tuple[float, float, float]:
    return (_number(op, "beta1", beta1, below_one=True), _number(op, "beta2", beta2, below_one=True),
            _number(op, "eps", eps))


def _step(op: str, step) -> int:
    if not is_int(step) or step < 1:
        raise ValueError(f"{op}: step must be an int >= 1 (the first step is 1), got {step!r}")
    return int(step)


def _lists(op: str, names: str, *lists) -> list[list]:
    lists = [list(a) for a in lists]
    if len({len(a) for a in lists}) > 1:
        raise ValueError(f"{op}: {names} must be equally long lists, got lengths "
                         f"{', '.join(str(len(a)) for a in lists[:-1])} and {len(lists[-1])}")
    return lists


def _in_place(*arrays) -> bool:
    """Whether the kernels may write these arrays through flat views (CuPy arrays have no
    "writeable" flag: they always are)."""
    return all(a.flags.c_contiguous and getattr(a.flags, "writeable", True) for a in arrays)


def _moments(grad, m, v, beta1: float, beta2: float) -> None:
    """Adam's moments in place, in Keras' form m + (1 - b1) (g - m)."""
    m += (grad - m) * (1 - beta1)
    v += (grad * grad - v) * (1 - beta2)


# --- Adam, Keras' epsilon -------------------------------------------------------------------

def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps) -> None:
    """One Adam step in Keras' form, writing param, m and v in place (all of one shape and dtype).

    lr_t is the step size with both bias corrections in it (see the module docstring);
    beta1, beta2 and eps are Adam's constants. Returns None.
    """
    _check(_OP, param=param, grad=grad, m=m, v=v)
    lr_t = _number(_OP, "lr_t", lr_t)
    beta1, beta2, eps = _adam_constants(_OP, beta1, beta2, eps)
    k = kernel("adam_update", param, grad, m, v)
    if k and _in_place(param, m, v):
        k(param, grad, m, v, lr_t, beta1, beta2, eps)
        return
    _moments(grad, m, v, beta1, beta2)
    param -= (m * lr_t) / (array_module(param).sqrt(v) + eps)


def adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps) -> None:
    """``adam_update`` for each (param, grad, m, v) of four equally long lists: the same
    values, in one kernel call on the ``numba`` backend when every array is of one dtype
    and params, ms and vs are C-contiguous (a model's step updates many small arrays, whose
    calls one by one cost more than their arithmetic)."""
    params, grads, ms, vs = _lists(_OP, "params, grads, ms and vs", params, grads, ms, vs)
    for p, g, m, v in zip(params, grads, ms, vs):
        _check(_OP, param=p, grad=g, m=m, v=v)
    lr_t = _number(_OP, "lr_t", lr_t)
    beta1, beta2, eps = _adam_constants(_OP, beta1, beta2, eps)
    k = kernel("adam_update_many", *params, *grads) if params else None
    if (k and len({p.dtype for p in params}) == 1
            and all(_in_place(p, m, v) for p, m, v in zip(params, ms, vs))):
        k(params, grads, ms, vs, lr_t, beta1, beta2, eps)
        return
    for arrays in zip(params, grads, ms, vs):
        adam_update(*arrays, lr_t, beta1, beta2, eps)


# --- Adam, PyTorch's epsilon ----------------------------------------------------------------

def adam_torch_update(param, grad, m, v, lr, beta1, beta2, eps, step) -> None:
    """One Adam step in PyTorch's form (eps added to the bias-corrected root), writing param,
    m and v in place. ``step`` is t, counted from 1: the bias corrections depend on it.
    Returns None."""
    _check(_TORCH_OP, param=param, grad=grad, m=m, v=v)
    _adam_torch_arrays(param, grad, m, v, _number(_TORCH_OP, "lr", lr),
                       *_adam_constants(_TORCH_OP, beta1, beta2, eps), _step(_TORCH_OP, step))


def adam_torch_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, step) -> None:
    """``adam_torch_update`` for each (param, grad, m, v) of four equally long lists."""
    lists = _lists(_TORCH_OP, "params, grads, ms and vs", params, grads, ms, vs)
    for p, g, m, v in zip(*lists):
        _check(_TORCH_OP, param=p, grad=g, m=m, v=v)
    lr = _number(_TORCH_OP, "lr", lr)
    beta1, beta2, eps = _adam_constants(_TORCH_OP, beta1, beta2, eps)
    step = _step(_TORCH_OP, step)
    for p, g, m, v in zip(*lists):
        _adam_torch_arrays(p, g, m, v, lr, beta1, beta2, eps, step)


def _adam_torch_arrays(param, grad, m, v, lr, beta1, beta2, eps, step) -> None:
    _moments(grad, m, v, beta1, beta2)
    step_size = lr / (1 - beta1 ** step)
    root_correction = math.sqrt(1 - beta2 ** step)
    param -= step_size * (m / (array_module(param).sqrt(v) / root_correction + eps))


# --- SGD ------------------------------------------------------------------------------------

def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False) -> None:
    """One SGD step in Keras' form, writing param (and velocity) in place.

    velocity: an array like param, or None for plain SGD (momentum 0, Keras keeps no velocity).
    nesterov: take the Nesterov step with the new velocity. Returns None.
    """
    lr, momentum = _sgd_constants(lr, momentum, nesterov)
    _check_sgd(param, grad, velocity, momentum)
    _sgd_arrays(param, grad, velocity, lr, momentum, nesterov)


def sgd_update_many(params, grads, velocities, lr, momentum=0.0, nesterov=False) -> None:
    """``sgd_update`` for each (param, grad, velocity) of equally long lists; ``velocities``
    is None for plain SGD."""
    lr, momentum = _sgd_constants(lr, momentum, nesterov)
    if velocities is None:
        params, grads = _lists(_SGD_OP, "params and grads", params, grads)
        velocities = [None] * len(params)
    else:
        params, grads, velocities = _lists(_SGD_OP, "params, grads and velocities",
                                           params, grads, velocities)
    for arrays in zip(params, grads, velocities):
        _check_sgd(*arrays, momentum)
    for arrays in zip(params, grads, velocities):
        _sgd_arrays(*arrays, lr, momentum, nesterov)


def _sgd_constants(lr, momentum, nesterov) -> tuple[float, float]:
    if not isinstance(nesterov, bool):
        raise TypeError(f"{_SGD_OP}: nesterov must be True or False, got {nesterov!r}")
    return _number(_SGD_OP, "lr", lr), _number(_SGD_OP, "momentum", momentum)


def _check_sgd(param, grad, velocity, momentum: float) -> None:
    if velocity is None:
        if momentum:
            raise ValueError(f"{_SGD_OP}: velocity must be an array like param when momentum > 0, "
                             f"got None")
        _check(_SGD_OP, param=param, grad=grad)
    else:
        _check(_SGD_OP, param=param, grad=grad, velocity=velocity)


def _sgd_arrays(param, grad, velocity, lr: float, momentum: float, nesterov: bool) -> None:
    if velocity is None:
        param -= grad * lr
        return
    velocity *= momentum
    velocity -= grad * lr
    if nesterov:
        param += velocity * momentum - grad * lr
    else:
        param += velocity
