"""Parameter updates applied in place: the Adam step, for optimizers to call on any backend.

Adam in Keras' form (Kingma & Ba 2015, section 2's "epsilon hat" variant), one step with the
bias corrections folded into the step size ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``:

    m <- b1 * m + (1 - b1) * g
    v <- b2 * v + (1 - b2) * g * g
    param <- param - lr_t * m / (sqrt(v) + eps)

The array code makes a few temporaries per step; the ``numba`` backend runs one fused pass
over the four arrays instead (the ``adam_update`` kernel).
"""

from __future__ import annotations

from ..backend import array_module, kernel
from ._checks import as_float_array, check_same_dtype, check_shape

_OP = "adam_update"


def _check(param, grad, m, v) -> None:
    arrays = {"param": param, "grad": grad, "m": m, "v": v}
    for name, a in arrays.items():
        if not hasattr(a, "shape"):
            raise TypeError(f"{_OP}: {name} must be an array (it is updated in place), "
                            f"got {type(a).__name__}")
        as_float_array(_OP, name, a)
    for name in ("grad", "m", "v"):
        check_shape(_OP, name, arrays[name], param.shape)
    check_same_dtype(_OP, **arrays)


def _in_place(*arrays) -> bool:
    """Whether the kernels may write these arrays through flat views (CuPy arrays have no
    "writeable" flag: they always are)."""
    return all(a.flags.c_contiguous and getattr(a.flags, "writeable", True) for a in arrays)


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps) -> None:
    """One Adam step, writing param, m and v in place (all of one shape and dtype).

    lr_t is the step size with both bias corrections in it (see the module docstring);
    beta1, beta2 and eps are Adam's constants. Returns None.
    """
    _check(param, grad, m, v)
    k = kernel("adam_update", param, grad, m, v)
    if k and _in_place(param, m, v):
        k(param, grad, m, v, lr_t, beta1, beta2, eps)
        return
    xp = array_module(param)
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * (grad * grad)
    param -= t(lr_t) * m / (xp.sqrt(v) + t(eps))


def adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps) -> None:
    """``adam_update`` for each (param, grad, m, v) of four equally long lists: the same
    values, in one kernel call on the ``numba`` backend when every array is of one dtype
    and params, ms and vs are C-contiguous (a model's step updates many small arrays, whose
    calls one by one cost more than their arithmetic)."""
    params, grads, ms, vs = list(params), list(grads), list(ms), list(vs)
    if not len(params) == len(grads) == len(ms) == len(vs):
        raise ValueError(f"{_OP}: params, grads, ms and vs must be equally long lists, got lengths "
                         f"{len(params)}, {len(grads)}, {len(ms)} and {len(vs)}")
    for arrays in zip(params, grads, ms, vs):
        _check(*arrays)
    k = kernel("adam_update_many", *params, *grads) if params else None
    if (k and len({p.dtype for p in params}) == 1
            and all(_in_place(p, m, v) for p, m, v in zip(params, ms, vs))):
        k(params, grads, ms, vs, lr_t, beta1, beta2, eps)
        return
    for arrays in zip(params, grads, ms, vs):
        adam_update(*arrays, lr_t, beta1, beta2, eps)
