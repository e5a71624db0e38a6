"""Winograd convolution F(m x m, 3 x 3): 3x3 stride-1 convolutions with fewer multiplications.

The output is cut into m x m tiles. Each needs an alpha x alpha tile d of the padded input
(alpha = m + 2; neighbouring tiles overlap by 2), and with g one 3x3 kernel slice (one input
channel, one output channel),

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) = element-wise product

gives its m x m outputs with alpha^2 multiplications instead of 9 m^2 (16 vs 36 for
F(2x2, 3x3)). Summed over input channels, the element-wise products become alpha^2
independent matrix products, one per tile position (a, b):

    U = G w G^T      (alpha^2, C_in, C_out)    the kernel, transformed once per call
    V = B^T d B      (alpha^2, T, C_in)        every tile of the input, T tiles in all
    M = V @ U        (alpha^2, T, C_out)       alpha^2 matrix products: the only multiplications
    y = A^T M A      assembled from (T, m, m, C_out), cropped to (N, h_out, w_out, C_out)

Backward, stage by stage in reverse: every stage is linear, so its gradient is its transpose
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):

    dM = A dY A^T                               (dy tiles padded with zeros past the edge)
    dU = V^T @ dM   ->  dw = G^T dU G           which is the F(3x3, 2x2) algorithm for dw
    dV = dM @ U^T   ->  dx = overlap-add of B dV B^T over the tiles, cropped to x

so both gradients cost alpha^2 multiplications per tile and channel pair too, and reuse V and
U from the forward pass (``Saved``; the numba backend recomputes V from x instead).
``docs/winograd.md`` derives all of this.

Every transform is "a matrix on both sides" of the first two axes (``both_axes``), written
with the array module ``xp``, so this file runs on NumPy and CuPy alike; the ``numba``
backend swaps in fused kernels that run every stage of both passes one cache-sized block of
tiles at a time (``minires.kernels.numba.winograd``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backend import array_module, kernel
from .im2col import offset_slice, pad_nhwc
from ..windows import Window


class WinogradTransform(NamedTuple):
    """The matrices of F(m x m, 3 x 3): alpha x alpha input tiles, alpha = m + 2."""

    m: int
    BT: np.ndarray               # (alpha, alpha) input transform B^T
    G: np.ndarray                # (alpha, 3)     kernel transform
    AT: np.ndarray               # (m, alpha)     output transform A^T

    @property
    def alpha(self) -> int:
        return self.m + 2


# Lavin & Gray (2016), interpolation points 0, 1, -1 and infinity.
F2X2_3X3 = WinogradTransform(
    m=2,
    BT=np.array([[1, 0, -1, 0],
                 [0, 1, 1, 0],
                 [0, -1, 1, 0],
                 [0, 1, 0, -1]], dtype=np.float64),
    G=np.array([[1, 0, 0],
                [1 / 2, 1 / 2, 1 / 2],
                [1 / 2, -1 / 2, 1 / 2],
                [0, 0, 1]], dtype=np.float64),
    AT=np.array([[1, 1, 1, 0],
                 [0, 1, -1, -1]], dtype=np.float64),
)

# Points 0, 1, -1, 2, -2 and infinity: 36 multiplications per 4x4 outputs instead of 144, but
# the larger coefficients cost accuracy (docs/winograd.md measures how much).
F4X4_3X3 = WinogradTransform(
    m=4,
    BT=np.array([[4, 0, -5, 0, 1, 0],
                 [0, -4, -4, 1, 1, 0],
                 [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0],
                 [0, 4, 0, -5, 0, 1]], dtype=np.float64),
    G=np.array([[1 / 4, 0, 0],
                [-1 / 6, -1 / 6, -1 / 6],
                [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6],
                [0, 0, 1]], dtype=np.float64),
    AT=np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 2, -2, 0],
                 [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=np.float64),
)


def applies(window: Window) -> bool:
    """Winograd F(m x m, 3 x 3) computes exactly the 3x3 convolutions at stride 1, any padding."""
    return window.kernel == (3, 3) and window.strides == (1, 1)


def tile_counts(out_hw: tuple[int, int], m: int) -> tuple[int, int]:
    """(th, tw): m x m output tiles covering the output, the last ones cut by the crop."""
    return -(-out_hw[0] // m), -(-out_hw[1] // m)


def both_axes(mat, a):
    """mat @ a @ mat^T over the first two axes of a: (p, p, ...) -> (q, q, ...) for mat (q, p)."""
    xp = array_module(a)
    q, p = mat.shape
    rest = a.shape[2:]
    mat = xp.asarray(mat, dtype=a.dtype)
    a = mat @ a.reshape(p, p, -1)                          # second axis: (p, q, R)
    return (mat @ a.reshape(p, -1)).reshape(q, q, *rest)   # first axis:  (q, q, R)


def _tile_window(padding, tiles, f: WinogradTransform) -> Window:
    """The input tiles as windows: alpha x alpha at stride m, the padding grown past the
    bottom/right edge so that the last tile is whole."""
    return Window((f.alpha, f.alpha), (f.m, f.m), padding, tiles)


def _extended_padding(x_hw, padding, tiles, f: WinogradTransform):
    (top, _), (left, _) = padding
    return ((top, f.m * tiles[0] + 2 - x_hw[0] - top), (left, f.m * tiles[1] + 2 - x_hw[1] - left))


# --- the transforms and their transposes ------------------------------------------------------

def _kernel_both_axes(mat, a):
    """``both_axes`` for a kernel or its gradient (p, p, C_in, C_out): the backend's kernel
    where it has one (numba: one pass per coefficient over rows of C_in * C_out numbers,
    where NumPy makes two matrix products of inner dimension 3 or 6 on tiny arrays)."""
    k = kernel("winograd_kernel_transform", a)
    return k(mat, a) if k else both_axes(mat, a)


def transform_kernel(w, f: WinogradTransform = F2X2_3X3):
    """U = G w G^T: (3, 3, C_in, C_out) -> (alpha^2, C_in, C_out)."""
    return _kernel_both_axes(f.G, w).reshape(f.alpha ** 2, *w.shape[2:])


def transform_kernel_grad(du, f: WinogradTransform = F2X2_3X3):
    """dw = G^T dU G: (alpha^2, C_in, C_out) -> (3, 3, C_in, C_out)."""
    return _kernel_both_axes(f.G.T, du.reshape(f.alpha, f.alpha, *du.shape[1:]))


def transform_input(x, padding, tiles, f: WinogradTransform = F2X2_3X3):
    """V = B^T d B for every alpha x alpha tile d of x padded by ``padding``: (alpha^2, T, C)."""
    xp = array_module(x)
    n, h, w, c = x.shape
    pads = _extended_padding((h, w), padding, tiles, f)
    xpad = pad_nhwc(x, pads)
    window = _tile_window(pads, tiles, f)
    d = xp.empty((f.alpha, f.alpha, n, *tiles, c), dtype=x.dtype)
    for i in range(f.alpha):
        for j in range(f.alpha):
            d[i, j] = xpad[offset_slice(i, j, window)]
    return both_axes(f.BT, d).reshape(f.alpha ** 2, -1, c)


def transform_input_grad(dv, x_shape, padding, tiles, f: WinogradTransform = F2X2_3X3):
    """Transpose of ``transform_input``: dd = B dV B^T, added back over the overlapping tiles
    (col2im with alpha x alpha windows at stride m), cropped to x: (N, H, W, C)."""
    xp = array_module(dv)
    n, h, w, c = x_shape
    pads = _extended_padding((h, w), padding, tiles, f)
    window = _tile_window(pads, tiles, f)
    dd = both_axes(f.BT.T, dv.reshape(f.alpha, f.alpha, -1)).reshape(f.alpha, f.alpha, n, *tiles, c)
    dxpad = xp.zeros((n, f.m * tiles[0] + 2, f.m * tiles[1] + 2, c), dtype=dv.dtype)
    for i in range(f.alpha):
        for j in range(f.alpha):
            dxpad[offset_slice(i, j, window)] += dd[i, j]
    (top, _), (left, _) = padding
    return dxpad[:, top:top + h, left:left + w, :]


def transform_output(mt, bias, n, tiles, out_hw, f: WinogradTransform = F2X2_3X3):
    """y = A^T M A (+ bias) for every tile, assembled and cropped: (N, h_out, w_out, C_out)."""
    xp = array_module(mt)
    (th, tw), c, m = tiles, mt.shape[-1], f.m
    y = both_axes(f.AT, mt.reshape(f.alpha, f.alpha, -1)).reshape(m, m, n, th, tw, c)
    # One pass from tile order to NHWC, the bias added on the way (a copy, then a sum, would
    # be two passes over the output).
    tiled = xp.empty((n, th, m, tw, m, c), dtype=mt.dtype)
    y = y.transpose(2, 3, 0, 4, 1, 5)
    if bias is None:
        tiled[...] = y
    else:
        xp.add(y, bias, out=tiled)
    y = tiled.reshape(n, th * m, tw * m, c)
    if (th * m, tw * m) == tuple(out_hw):
        return y
    return xp.ascontiguousarray(y[:, :out_hw[0], :out_hw[1], :])


def transform_output_grad(dy, tiles, f: WinogradTransform = F2X2_3X3):
    """Transpose of ``transform_output``: dM = A dY A^T for every m x m tile of dy (zero past
    its edge): (alpha^2, T, C_out)."""
    xp = array_module(dy)
    n, h_out, w_out, c = dy.shape
    (th, tw), m = tiles, f.m
    if (h_out, w_out) == (th * m, tw * m):
        dyp = dy                                        # the tiles cover dy exactly: no padding
    else:
        dyp = xp.zeros((n, th * m, tw * m, c), dtype=dy.dtype)
        dyp[:, :h_out, :w_out, :] = dy
    tiles_first = dyp.reshape(n, th, m, tw, m, c).transpose(2, 4, 0, 1, 3, 5)
    return both_axes(f.AT.T, xp.ascontiguousarray(tiles_first)).reshape(f.alpha ** 2, -1, c)


# --- forward and backward -------------------------------------------------------------------

class Saved(NamedTuple):
    """What the backward pass needs from the forward: U, and V or the input it came from.

    The array code keeps V. The ``numba`` backend keeps x instead and recomputes V one block
    of tiles at a time in the backward pass, where it is used at once from the cache: writing
    all of V (9 MB at the seed's 16x16 layers) and reading it back cost more than
    transforming the input twice.
    """

    u: object                    # (alpha^2, C_in, C_out)  U = G w G^T
    v: object                    # (alpha^2, T, C_in)      V = B^T d B, or None
    x: object                    # (N, H, W, C_in)         the input, when v is None


def finds_non_finite(x) -> bool:
    """Whether ``forward`` looks for a NaN or inf in x itself, as its kernel reads x, and
    returns (None, None) when it finds one (numba); elsewhere the caller looks first."""
    return bool(kernel("winograd_forward_blocked", x))


def fuses_relu(x) -> bool:
    """Whether ``forward(..., relu=True)`` applies the ReLU itself for x's backend (the numba
    kernel does, as it writes each output pixel); where not, the caller applies it."""
    return bool(kernel("winograd_forward_blocked", x))


def fuses_pool(x, window: Window, f: WinogradTransform) -> bool:
    """Whether ``forward(..., pool=True)`` can pool each output tile as it is made: a kernel
    that does (numba), tiles of an even size m that cover the output exactly, so that every
    2x2 pool window lies in one tile."""
    return (fuses_relu(x) and f.m % 2 == 0
            and tuple(window.out_hw) == tuple(t * f.m for t in tile_counts(window.out_hw, f.m)))


def forward(x, w, b, window: Window, f: WinogradTransform = F2X2_3X3, keep_cache: bool = True,
            relu: bool = False, pool: bool = False):
    """(y, saved) of a 3x3 stride-1 convolution; ``saved`` (a ``Saved``) is what the backward
    pass needs, None with keep_cache=False (inference); (None, None) where ``finds_non_finite``
    and x holds a NaN or inf. ``relu`` (only where ``fuses_relu``):
    y = max(conv + b, 0) with NaN kept, applied by the kernel as it writes y. ``pool`` (only
    where ``fuses_pool``, without keep_cache): y is the 2x2, stride-2 max-pool of that."""
    k = kernel("winograd_forward_blocked", x)
    tiles = tile_counts(window.out_hw, f.m)
    if pool and (keep_cache or not fuses_pool(x, window, f)):
        raise ValueError("winograd.forward: pool=True needs keep_cache=False and a kernel that "
                         "pools whole tiles (winograd.fuses_pool)")
    u = transform_kernel(w, f)
    if k:
        y = k(x, u, b, window.padding, tiles, window.out_hw, f, relu, pool)
        if y is None:                                   # a NaN or inf in x (finds_non_finite)
            return None, None
        return y, (Saved(u, None, x) if keep_cache else None)
    if relu:
        raise ValueError("winograd.forward: relu=True needs a backend whose kernel applies it "
                         "(winograd.fuses_relu)")
    v = transform_input(x, window.padding, tiles, f)
    y = transform_output(v @ u, b, x.shape[0], tiles, window.out_hw, f)   # alpha^2 products V @ U
    return y, (Saved(u, v, None) if keep_cache else None)


def backward(dy, saved: Saved, x_shape, window: Window, f: WinogradTransform = F2X2_3X3, input_grad=True):
    """(dx, dw) from dy and the forward's ``saved``; dx is None without ``input_grad``."""
    k = kernel("winograd_backward_blocked", dy)
    tiles = tile_counts(window.out_hw, f.m)
    if k and saved.x is not None:
        dx, du = k(dy, saved.x, saved.u, window.padding, tiles, f, input_grad)
        return dx, transform_kernel_grad(du, f)
    # The backend may have changed since the forward pass: V is made here if it was not kept.
    v = saved.v if saved.v is not None else transform_input(saved.x, window.padding, tiles, f)
    # On the host, a part of the batch at a time (``_images_per_part``): each part's dM and
    # dV are read back while they are still in the cache; dU sums the parts' products.
    xp = array_module(dy)
    n, per_image = x_shape[0], tiles[0] * tiles[1]
    step = _images_per_part(dy, per_image, f.alpha ** 2 * max(x_shape[3], dy.shape[3]))
    du, dx_parts = None, []
    for first in range(0, max(n, 1), step):
        last = min(first + step, n)
        dmt = transform_output_grad(dy[first:last], tiles, f)
        part = v[:, first * per_image:last * per_image].transpose(0, 2, 1) @ dmt    # dU = V^T dM
        du = part if du is None else xp.add(du, part, out=du)
        if input_grad:
            dv = dmt @ saved.u.transpose(0, 2, 1)                                  # dV = dM U^T
            dx_parts.append(transform_input_grad(dv, (last - first, *x_shape[1:]), window.padding, tiles, f))
    dw = transform_kernel_grad(du, f)
    if not input_grad:
        return None, dw
    return (dx_parts[0] if len(dx_parts) == 1 else xp.concatenate(dx_parts)), dw


#: What the backward pass' array code keeps per part of the batch on the host: dM, dV and V's
#: part of (alpha^2, tiles, channels) numbers each. Sized to stay in a core's share of the
#: last-level cache; below it the parts' extra calls cost more than the cache saves.
_HOST_PART_BYTES = 3 << 20


def _images_per_part(dy, per_image: int, numbers_per_tile: int) -> int:
    """How many images the array code's backward pass takes at a time: all of them on a
    device (no gain there from smaller parts); on the host at most as many as
    ``_HOST_PART_BYTES`` holds (at least one), in parts of nearly one size."""
    n = dy.shape[0]
    if not isinstance(dy, np.ndarray) or n == 0:
        return max(n, 1)
    most = max(1, _HOST_PART_BYTES // (per_image * numbers_per_tile * dy.itemsize))
    parts = -(-n // most)
    return -(-n // parts)                             # parts of nearly one size
