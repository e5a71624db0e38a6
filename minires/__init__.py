"""minires: a small ResNet and every operation under it, written by hand.

    import minires
    from minires import ops

    y, cache = ops.conv2d_forward(x, w, b, stride=1, padding="same")
    dx, dw, db = ops.conv2d_backward(dy, cache)

``minires.ops`` holds the vectorized ops, ``minires.reference`` their naive loop references,
and ``minires.backend`` the choice of array module (NumPy or CuPy).
"""

from . import ops, reference
from .backend import array_module, get_backend, set_backend, to_numpy, use_backend, xp

__version__ = "0.1.0"

__all__ = [
    "array_module", "get_backend", "ops", "reference", "set_backend", "to_numpy", "use_backend", "xp",
]
