"""minires: a small ResNet and every operation under it, written by hand.

    import minires
    from minires import ops

    y, cache = ops.conv2d_forward(x, w, b, stride=1, padding="same")
    dx, dw, db = ops.conv2d_backward(dy, cache)

``minires.ops`` holds the vectorized ops, ``minires.reference`` their naive loop references,
and ``minires.backend`` the choice of backend: ``numpy``, ``numba`` (NumPy arrays with Numba
JIT kernels where they are faster) or ``cupy``; ``set_num_threads`` sizes the CPU thread pools.

Importing minires changes nothing in the process (environment, allocator, thread pools).
``tune_process()`` makes the process-wide settings that speed up the CPU backends, when asked
(``minires.process``); the command line asks.
"""

from . import keras, ops, reference
from .backend import (array_module, get_backend, get_num_threads, set_backend, set_num_threads,
                      to_numpy, use_backend, xp)
from .model import Input, Model
from .models import build_resnet
from .process import tune_process
from .serialization import load_model

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "array_module", "build_resnet", "get_backend", "get_num_threads", "keras",
    "load_model", "ops", "reference", "set_backend", "set_num_threads", "to_numpy", "tune_process",
    "use_backend", "xp",
]
