"""Hypothesis strategies shared by every test: shapes, windows, paddings and arrays.

Shapes, strides and paddings are drawn together so that impossible combinations (a window
larger than the padded input) are rare and discarded with ``assume``. Values come from a
NumPy generator seeded by Hypothesis: fast to draw, reproducible, and shrinkable by seed.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from minires.reference import resolve_padding

float_dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(min_value=0, max_value=2**32 - 1)

LAYOUTS = ("contiguous", "fortran", "strided", "reversed")


def as_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in a different memory layout (a non-contiguous view)."""
    if layout == "contiguous":
        return np.ascontiguousarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        # Every other element of a buffer twice as wide along the last axis.
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    raise ValueError(layout)


layouts = st.sampled_from(LAYOUTS)


def normal(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def distinct(rng: np.random.Generator, shape, dtype=np.float64, gap: float = 0.05) -> np.ndarray:
    """Values at least ``gap`` apart: no ties, and no max-pool window changes its winner
    under a finite-difference step."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * gap).reshape(shape).astype(dtype)


def away_from_zero(rng: np.random.Generator, shape, dtype=np.float64, margin: float = 0.1) -> np.ndarray:
    """Values with |v| >= margin, so ReLU's kink is never within a finite-difference step."""
    magnitude = margin + np.abs(rng.standard_normal(shape))
    return (np.where(rng.random(shape) < 0.5, -1.0, 1.0) * magnitude).astype(dtype)


paddings = st.one_of(
    st.sampled_from(["same", "valid", "SAME"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
              st.tuples(st.integers(0, 2), st.integers(0, 2))),
)
strides = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _fits(in_hw, kernel, step, padding) -> bool:
    """Whether the window fits in the padded input; the padding comes from the reference, not
    from the ops' window planning that these cases test."""
    pads = resolve_padding("test", padding, in_hw, kernel, step)
    return all(in_hw[a] + sum(pads[a]) >= kernel[a] for a in range(2))


@st.composite
def conv_cases(draw, max_hw: int = 7, max_channels: int = 4, max_batch: int = 3, max_kernel: int = 4):
    """A conv2d configuration: x shape, w shape, stride, padding, bias or not."""
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    c_in, c_out = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    stride = draw(strides)
    padding = draw(paddings)
    assume(_fits((h, w), (kh, kw), _pair(stride), padding))
    return dict(x_shape=(n, h, w, c_in), w_shape=(kh, kw, c_in, c_out), stride=stride,
                padding=padding, bias=draw(st.booleans()))


@st.composite
def pool_cases(draw, max_hw: int = 8, max_channels: int = 3, max_batch: int = 3):
    """A maxpool2d configuration, overlapping windows (stride < pool) included."""
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    c = draw(st.integers(1, max_channels))
    pool = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    stride = draw(st.one_of(st.none(), strides))
    padding = draw(st.sampled_from(["valid", "same"]))
    step = _pair(pool) if stride is None else _pair(stride)
    assume(_fits((h, w), _pair(pool), step, padding))
    return dict(x_shape=(n, h, w, c), pool_size=pool, strides=stride, padding=padding)


@st.composite
def shapes(draw, min_dims: int = 1, max_dims: int = 4, max_side: int = 5):
    return tuple(draw(st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims)))


@st.composite
def winograd_cases(draw, max_hw: int = 9, max_channels: int = 4, max_batch: int = 2):
    """A 3x3 stride-1 conv2d configuration, the shapes Winograd F(m x m, 3 x 3) computes:
    odd and even output sizes (the last tile cut by the crop), every padding form."""
    n = draw(st.integers(1, max_batch))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    c_in, c_out = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    padding = draw(paddings)
    assume(_fits((h, w), (3, 3), (1, 1), padding))
    return dict(x_shape=(n, h, w, c_in), w_shape=(3, 3, c_in, c_out), stride=1,
                padding=padding, bias=draw(st.booleans()))
