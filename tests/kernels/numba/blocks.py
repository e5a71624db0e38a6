"""What the Numba kernel tests share: the window of a drawn convolution case, and block sizes
made small enough for small test shapes to take every path of a blocked kernel."""

import contextlib

from minires.kernels import cpu_threads
from minires.windows import plan_windows


@contextlib.contextmanager
def small_blocks(module, **sizes):
    """Set a blocked kernel module's block sizes (``module._BLOCK_*``) and split even the
    smallest job over threads, so that small test shapes take every path: many blocks, a
    last one cut short, ranges on different threads."""
    previous = {name: getattr(module, name) for name in sizes}
    split = cpu_threads._SPLIT_MACS
    try:
        for name, value in sizes.items():
            setattr(module, name, value)
        cpu_threads._SPLIT_MACS = 0
        yield
    finally:
        for name, value in previous.items():
            setattr(module, name, value)
        cpu_threads._SPLIT_MACS = split


def conv_window(case):
    """The Window of a ``tests.strategies.conv_cases`` (or ``winograd_cases``) case."""
    return plan_windows("conv2d", case["x_shape"][1:3], case["w_shape"][:2],
                        (case["stride"],) * 2 if isinstance(case["stride"], int) else case["stride"],
                        case["padding"], ("same", "valid", "explicit"))
