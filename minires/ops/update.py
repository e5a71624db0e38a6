"""Parameter updates applied in place: the Adam step, for optimizers to call on any backend.

Adam in Keras' form (Kingma & Ba 2015, section 2's "epsilon hat" variant), one step with the
bias corrections folded into the step size ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``:

    m <- b1 * m + (1 - b1) * g
    v <- b2 * v + (1 - b2) * g * g
    param <- param - lr_t * m / (sqrt(v) + eps)

The array code makes a few temporaries per step; the ``numba`` backend runs one fused pass
over the four arrays instead (``minires.kernels.cpu_numba.adam_update``).
"""

from __future__ import annotations

from ..backend import array_module, kernels_for
from ._checks import as_float_array, check_same_dtype, check_shape

_OP = "adam_update"


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps) -> None:
    """One Adam step, writing param, m and v in place (all of one shape and dtype).

    lr_t is the step size with both bias corrections in it (see the module docstring);
    beta1, beta2 and eps are Adam's constants. Returns None.
    """
    arrays = {"param": param, "grad": grad, "m": m, "v": v}
    for name, a in arrays.items():
        if not hasattr(a, "shape"):
            raise TypeError(f"{_OP}: {name} must be an array (it is updated in place), "
                            f"got {type(a).__name__}")
        as_float_array(_OP, name, a)
    for name in ("grad", "m", "v"):
        check_shape(_OP, name, arrays[name], param.shape)
    check_same_dtype(_OP, **arrays)
    k = kernels_for(param, grad, m, v)
    # CuPy arrays have no "writeable" flag: they are always writeable.
    if k and all(a.flags.c_contiguous and getattr(a.flags, "writeable", True) for a in (param, m, v)):
        k.adam_update(param, grad, m, v, lr_t, beta1, beta2, eps)
        return
    xp = array_module(param)
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * (grad * grad)
    param -= t(lr_t) * m / (xp.sqrt(v) + t(eps))
