"""A framework's adapter with faults put in on purpose, so that the tests can check that
``minires verify`` finds exactly those faults. ``VERIFY_BASE`` names the adapter module to
wrap (default: PyTorch's); the registry entry's environment chooses the faults,
comma-separated:

    VERIFY_FAULT=gradient:dense:dw    dense's dw off by a factor 1 + 1e-6
    VERIFY_FAULT=ties:last            max-pool's gradient to the last maximum of a tied window
    VERIFY_FAULT=downcast:conv2d      conv2d computed in float32 whatever the dtype asked
    VERIFY_FAULT=raise:relu           relu raises; VERIFY_FAULT=unsupported:add: add is refused
    VERIFY_FAULT=                     no fault: PyTorch as it is

The worker loads this file by its path (tests register it in minires.frameworks.FRAMEWORKS).
"""

import importlib
import os

import numpy as np

from minires.frameworks import torch_adapter

NAME = "faulty"
BASE = importlib.import_module(os.environ.get("VERIFY_BASE", "minires.frameworks.torch_adapter"))


def versions():
    return {**BASE.versions(), "fault": os.environ.get("VERIFY_FAULT", "")}


def _last_max_dx(x, dy, options):
    """Max-pool's dx with each window's gradient on its last maximum (row-major)."""
    kernel = torch_adapter._pair(options["pool_size"])
    strides = kernel if options.get("strides") is None else torch_adapter._pair(options["strides"])
    (top, bottom), (left, right) = torch_adapter.keras_pads(options["padding"], x.shape[1:3], kernel, strides)
    xpad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    dxpad = np.zeros_like(xpad)
    for n, oh, ow, c in np.ndindex(dy.shape):
        r, s = oh * strides[0], ow * strides[1]
        window = xpad[n, r:r + kernel[0], s:s + kernel[1], c]
        i, j = np.argwhere(window == window.max())[-1]
        dxpad[n, r + i, s + j, c] += dy[n, oh, ow, c]
    return dxpad[:, top:top + x.shape[1], left:left + x.shape[2], :]


def run_op(op, inputs, options, dy, dtype):
    faults = [f.split(":", 1) for f in os.environ.get("VERIFY_FAULT", "").split(",") if f]
    faults = {kind: where for kind, where in faults}
    if faults.get("raise") == op:
        raise RuntimeError(f"{op} failed on purpose")
    if faults.get("unsupported") == op:
        raise NotImplementedError(f"{op} is not offered")
    if faults.get("downcast") == op:
        dtype = "float32"
    out = BASE.run_op(op, inputs, options, dy, dtype)
    if "gradient" in faults:
        faulty_op, output = faults["gradient"].split(":")
        if op == faulty_op:
            out[output] = out[output] * (1 + 1e-6)
    if "ties" in faults and op == "maxpool2d":
        out["dx"] = _last_max_dx(inputs["x"], np.asarray(dy), options).astype(out["dx"].dtype)
    return out
