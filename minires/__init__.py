"""minires: a small ResNet and every operation under it, written by hand.

    import minires
    from minires import ops

    y, cache = ops.conv2d_forward(x, w, b, stride=1, padding="same")
    dx, dw, db = ops.conv2d_backward(dy, cache)

``minires.ops`` holds the vectorized ops, ``minires.reference`` their naive loop references,
and ``minires.backend`` the choice of backend: ``numpy``, ``numba`` (NumPy arrays with Numba
JIT kernels where they are faster) or ``cupy``; ``set_num_threads`` sizes the CPU thread pools.
"""

import os as _os

# MINIRES_NUM_THREADS sizes the BLAS pool too. BLAS reads its own variables once, when NumPy
# loads it, so they are set here, before minires imports NumPy (set_num_threads can change
# the pool later only through the optional package threadpoolctl).
if _os.environ.get("MINIRES_NUM_THREADS", "").strip():
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        _os.environ.setdefault(_var, _os.environ["MINIRES_NUM_THREADS"].strip())

from . import keras, ops, reference  # noqa: E402
from .backend import (array_module, get_backend, get_num_threads, set_backend, set_num_threads,
                      to_numpy, use_backend, xp)
from .model import Input, Model
from .models import build_resnet
from .serialization import load_model

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "array_module", "build_resnet", "get_backend", "get_num_threads", "keras",
    "load_model", "ops", "reference", "set_backend", "set_num_threads", "to_numpy", "use_backend", "xp",
]
