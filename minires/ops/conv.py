"""2-D convolution (cross-correlation, as in every deep-learning framework), NHWC x HWIO.

Shapes
    x  (N, H, W, C_in)            input
    w  (kh, kw, C_in, C_out)      kernel
    b  (C_out,) or None           bias
    y  (N, h_out, w_out, C_out)   output, h_out = (H + top + bottom - kh) // sh + 1

Forward, with xpad the padded input:

    y[n, oh, ow, o] = b[o] + sum_{i, j, c} xpad[n, oh*sh + i, ow*sw + j, c] * w[i, j, c, o]

As a matrix product: cols = im2col(xpad) has one row per output pixel (N*h_out*w_out rows of
kh*kw*C_in values) and ``y = cols @ W + b`` with W = w reshaped to (kh*kw*C_in, C_out).

Backward, from dy = dL/dy (same shape as y) and the matrix form above:

    db = sum over n, oh, ow of dy                        (C_out,)
    dW = cols^T @ dy                                     (kh*kw*C_in, C_out) -> HWIO
    dcols = dy @ W^T;  dx = crop(col2im(dcols))          (N, H, W, C_in)

col2im adds each window's gradient back onto every pixel it read; cropping drops the padding,
whose gradient belongs to no input.

Algorithms. ``algorithm="im2col"`` is the matrix form above, for every kernel, stride and
padding. ``algorithm="winograd"`` computes 3x3 stride-1 convolutions (any padding) by
Winograd's F(2x2, 3x3): 16 multiplications per 2x2 outputs and channel pair instead of 36,
forward and both gradients (``minires.ops.winograd``, docs/winograd.md); the ``numba``
backend runs its transforms as fused kernels. ``algorithm="winograd4x4"`` uses F(4x4, 3x3):
36 multiplications per 4x4 outputs instead of 144, about ten times the float32 rounding error
of F(2x2, 3x3) (still below 1e-5 relative at the seed's shapes), array code only.
``"auto"`` (the default) picks by a fixed rule (``choose_algorithm``) that depends only on the
shapes, the dtype and the backend, never on timings taken at run time, so a result is
reproducible.

Non-finite numbers (docs/ops.md has the table). A NaN or inf input pixel reaches exactly the
outputs whose receptive field holds it, whichever algorithm is asked for: Winograd would
spread it over whole output tiles, so a host input that is not all finite is computed by
im2col (cupy arrays are not checked: that would wait for the device). A non-finite weight
makes its whole output channel non-finite, in every algorithm. In the backward pass a
non-finite dy pixel reaches dw's whole output channel in every algorithm, and dx over its
receptive field with im2col but over whole input tiles with Winograd.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backend import array_module, get_backend, kernel
from ..windows import Window, argmax_dtype, plan_windows, positive_pair
from . import winograd
from .activation import BiasReluCache, bias_relu_backward, bias_relu_forward
from .bias import bias_gradient
from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape
from .im2col import col2im, im2col, im2col_by_pool_offset, pad_nhwc, unpad_nhwc
from .pool import MaxPool2dCache, first_maximum, maxpool2d_backward, maxpool2d_forward

_OP = "conv2d"
ALGORITHMS = ("auto", "im2col", "winograd", "winograd4x4")
_WINOGRAD = {"winograd": winograd.F2X2_3X3, "winograd4x4": winograd.F4X4_3X3}


class Conv2dCache(NamedTuple):
    algorithm: str               # "im2col", "winograd" or "winograd4x4"
    saved: object                # im2col: cols (N, h_out, w_out, kh, kw, C_in); winograd: winograd.Saved
    w: object                    # (kh, kw, C_in, C_out)
    has_bias: bool
    x_shape: tuple[int, ...]
    window: Window
    relu: object = None          # with activation="relu": bias_relu's cache (it holds the mask)


def choose_algorithm(window: Window, c_in: int, c_out: int, dtype, backend: str | None = None) -> str:
    """The algorithm ``"auto"`` picks, from the measurements in docs/winograd.md (Speed).

    - "winograd4x4" for float32 3x3 stride-1 convolutions with at least 16 input and output
      channels on the CPU backends (``numpy``, ``numba``): at every 64-channel layer of the
      seed, 4x4 outputs included, its forward + backward is the fastest of the three
      algorithms on both backends, and its float32 error (below 1e-5 relative there) is far
      inside float32 training noise;
    - "im2col" everywhere else: for float64, the dtype of checks, where the last digits
      matter more than speed; for other kernels and strides; with fewer than 16 channels (the
      seed's first layer, 3 -> 64, where the transforms cost more than the products they
      save); and on ``cupy``, cuBLAS' home ground, where Winograd is unmeasured.
    """
    backend = get_backend() if backend is None else backend
    if (winograd.applies(window) and min(c_in, c_out) >= 16 and dtype == np.float32
            and backend in ("numpy", "numba")):
        return "winograd4x4"
    return "im2col"


def conv2d_forward(x, w, b=None, stride=1, padding="same", algorithm="auto", activation=None,
                   keep_cache=True):
    """y = conv2d(x, w) + b, or max(that, 0) with ``activation="relu"``. See the module
    docstring for shapes and padding forms.

    stride: int or (sh, sw), each >= 1.
    padding: "same" (Keras: odd pixel bottom/right), "valid", an int, (ph, pw), or
        ((top, bottom), (left, right)).
    algorithm: "auto" (default), "im2col", "winograd" or "winograd4x4" (the last two for 3x3
        kernels at stride 1 only); see the module docstring.
    activation: None or "relu": the bias add and the ReLU fused into one pass over the
        output (``ops.bias_relu_forward``); ``conv2d_backward`` then takes dL/d(relu output).
    keep_cache: False when no backward pass follows (inference): the cache is None, and a
        path may skip what only the backward pass needs (Winograd's V on numba).
    Returns (y, cache).
    """
    x, w, b, window, algorithm = _prepare(x, w, b, stride, padding, algorithm, activation)
    kh, kw, c_in, c_out = w.shape

    relu = None
    blocked = kernel("im2col_conv_forward", x, w) if algorithm == "im2col" else None
    if blocked:
        # The whole convolution in one kernel (numba): cols built, multiplied and finished
        # block by block, bias and ReLU included.
        y, positive, saved = blocked(x, w.reshape(-1, c_out), b, window, activation == "relu", keep_cache)
        if activation == "relu":
            relu = BiasReluCache(positive, x.dtype, b is not None)
    else:
        # With the ReLU, the bias is added by bias_relu, in the same pass; or, where the
        # Winograd kernel applies both as it writes y (numba), by the kernel, and the mask,
        # which only the backward pass reads, is y > 0 (the same as z + b > 0, NaN included).
        # Winograd's array code adds it in the pass that assembles y from the output tiles,
        # which leaves bias_relu the ReLU alone.
        fused = activation == "relu" and algorithm in _WINOGRAD and winograd.fuses_relu(x)
        bias_now = b if activation is None or algorithm in _WINOGRAD else None
        if algorithm in _WINOGRAD:
            y, saved = winograd.forward(x, w, bias_now, window, _WINOGRAD[algorithm], keep_cache,
                                        relu=fused)
            if y is None:                 # the kernel found a NaN or inf in x (see _prepare)
                return conv2d_forward(x, w, b, stride, padding, "im2col", activation, keep_cache)
            if fused:
                relu = BiasReluCache(y > 0, x.dtype, b is not None) if keep_cache else None
        else:
            cols = _im2col(x, window)
            y = cols.reshape(-1, kh * kw * c_in) @ w.reshape(-1, c_out)
            if bias_now is not None:
                y += bias_now
            y = y.reshape(x.shape[0], *window.out_hw, c_out)
            saved = cols
        if activation == "relu" and not fused:
            y, relu = bias_relu_forward(y, None if bias_now is not None else b, overwrite_x=True)
            relu = relu._replace(has_bias=b is not None)           # db from the ReLU's gradient
    if not keep_cache:
        return y, None
    return y, Conv2dCache(algorithm, saved, w, b is not None, tuple(x.shape), window, relu)


def _prepare(x, w, b, stride, padding, algorithm, activation):
    """conv2d_forward's arguments checked: (x, w, b, window, algorithm resolved)."""
    x = as_float_array(_OP, "x", x, ndim=4)
    w = as_float_array(_OP, "w", w, ndim=4)
    if b is not None:
        b = as_float_array(_OP, "b", b, ndim=1)
    check_same_dtype(_OP, x=x, w=w, b=b)
    kh, kw, c_in, c_out = w.shape
    if x.shape[3] != c_in:
        raise ValueError(
            f"{_OP}: x has {x.shape[3]} channels but w expects C_in={c_in} "
            f"(x shape {tuple(x.shape)}, w shape {tuple(w.shape)}, w is HWIO)"
        )
    if b is not None:
        check_shape(_OP, "b", b, (c_out,))
    if activation not in (None, "relu"):
        raise ValueError(f"{_OP}: activation must be None or 'relu', got {activation!r}")
    strides = positive_pair(_OP, "stride", stride)
    if kh < 1 or kw < 1:
        raise ValueError(f"{_OP}: w must have a kernel of at least 1x1, got shape {tuple(w.shape)}")
    if c_in < 1 or c_out < 1:
        raise ValueError(f"{_OP}: w must have at least one input and one output channel (C_in >= 1, "
                         f"C_out >= 1 in HWIO), got shape {tuple(w.shape)}")
    window = plan_windows(_OP, x.shape[1:3], (kh, kw), strides, padding,
                          allowed=("same", "valid", "explicit"))
    algorithm = _resolve_algorithm(algorithm, window, c_in, c_out, x.dtype)
    if algorithm in _WINOGRAD and not winograd.finds_non_finite(x) and _non_finite_on_host(x):
        # Winograd's input transform mixes every pixel of an input tile into the whole
        # transformed tile, so one NaN or inf would reach whole output tiles (up to 64 outputs
        # per channel for F(4x4, 3x3)); im2col keeps it inside its receptive field. Where the
        # Winograd kernel looks for them itself as it reads x, it returns None instead, and
        # the convolution runs again with im2col.
        algorithm = "im2col"
    return x, w, b, window, algorithm


class ConvMaxPoolCache(NamedTuple):
    """What ``conv2d_maxpool_backward`` needs from a training ``conv2d_maxpool_forward``.

    ``pooled_first``: the pool ran on z = conv + b, and the gradient of the pooled z (after
    the pooled output's ReLU, ``relu``) gives db here; ``conv`` then holds neither bias nor
    ReLU, and its ``saved`` is what ``saved`` says: "conv" (the convolution's own),
    "x" (x itself, whose windows the backward kernel builds again: numba) or "pool groups"
    (``im2col_by_pool_offset``'s cols: the array code). Otherwise the two ops ran in turn
    and their caches are kept."""

    conv: Conv2dCache
    pool: MaxPool2dCache
    relu: object                 # pooled_first with a ReLU: the pooled output's BiasReluCache
    has_bias: bool
    pooled_first: bool
    saved: str = "conv"


def conv2d_maxpool_forward(x, w, b=None, stride=1, padding="same", algorithm="auto", activation=None,
                           keep_cache=False):
    """``maxpool2d_forward(conv2d_forward(x, w, b, ...))`` with a 2x2 pool at stride 2 and
    'valid' padding: the pooled output alone, (N, h_out // 2, w_out // 2, C_out).
    Returns (y, cache); the cache is None without keep_cache (inference).

    Inference: where the backend has a fused kernel (numba: the blocked im2col convolution,
    and Winograd when its output tiles are whole and m is even) and h_out and w_out are even,
    each block of the convolution is pooled while it is in the cache, and the full-size output
    is never written; the array code's im2col path groups the windows by their place in the
    pool windows (``im2col_by_pool_offset``), so that the product gives each pool window's
    four pixels as four arrays of rows and the maximum takes contiguous passes; elsewhere the
    two ops run in turn. The values are the two ops' to rounding (the pool selects; it
    computes nothing).

    Training (keep_cache=True; ``conv2d_maxpool_backward`` takes the cache): the pool runs
    first, on z = conv + b, and the ReLU after it on a quarter of the values, where that
    saves work: on the numba backend's stride-1 im2col path, whose kernel pools each block of
    the convolution while it is in the cache and keeps x instead of cols (the backward kernel
    builds each block's cols again), and on the array code, whose ReLU would otherwise be a
    pass of its own over the full-size output (its im2col path groups the windows as above,
    and its backward pass makes each group's gradient by a masked product instead of the
    pool's strided scatter). ReLU does not decrease, so
    max_i relu(z_i) = relu(max_i z_i); and where a window's maximum is positive, its first
    maximum is the same in z and in relu(z) (ReLU keeps positive numbers apart), while where
    it is not, both orders pass the window no gradient. So the values and the gradients are
    the two ops' (db summed in another order, a zero's sign aside). Elsewhere (numba's other
    convolutions, which apply the ReLU as they write their output) the two ops run in turn.
    """
    if keep_cache:
        return _conv2d_maxpool_training(x, w, b, stride, padding, algorithm, activation)
    x, w, b, window, algorithm = _prepare(x, w, b, stride, padding, algorithm, activation)
    c_out = w.shape[3]
    relu = activation == "relu"
    h_out, w_out = window.out_hw
    if h_out % 2 == 0 and w_out % 2 == 0:
        if algorithm == "im2col":
            k = kernel("im2col_conv_maxpool_forward", x, w)
            if k:
                return k(x, w.reshape(-1, c_out), b, window, relu), None
            if not kernel("im2col_conv_forward", x, w):
                # The array code: pooled from the windows grouped by their place in the pool
                # windows (contiguous passes), the ReLU after the pool on a quarter of the
                # numbers (it does not decrease).
                q, _, _ = _pooled_by_groups(x, w, b, window, keep_index=False)
                return (bias_relu_forward(q, None, overwrite_x=True)[0] if relu else q), None
        elif winograd.fuses_pool(x, window, _WINOGRAD[algorithm]):
            y, _ = winograd.forward(x, w, b, window, _WINOGRAD[algorithm], keep_cache=False,
                                    relu=relu, pool=True)
            if y is None:                 # the kernel found a NaN or inf in x (see _prepare)
                return conv2d_maxpool_forward(x, w, b, stride, padding, "im2col", activation)
            return y, None
    y, _ = conv2d_forward(x, w, b, stride, padding, algorithm, activation, keep_cache=False)
    return maxpool2d_forward(y, pool_size=2, strides=2, padding="valid", keep_cache=False)


def _pools_first(x, w, algorithm, activation) -> bool:
    """Whether a training conv + pool runs the pool before the ReLU on the array code: with a
    ReLU that would be a pass of array code over the full-size output (no bias + ReLU
    kernel, no convolution kernel that applies it as it writes the output)."""
    if activation != "relu" or kernel("bias_relu", x):
        return False
    if algorithm == "im2col":
        return not kernel("im2col_conv_forward", x, w)
    return not winograd.fuses_relu(x)


def _conv2d_maxpool_training(x, w, b, stride, padding, algorithm, activation):
    x, w, b, window, algorithm = _prepare(x, w, b, stride, padding, algorithm, activation)
    relu = activation == "relu"
    k = kernel("im2col_conv_maxpool_training_forward", x, w) if algorithm == "im2col" else None
    out = k(x, w.reshape(-1, w.shape[3]), b, window, relu) if k else None
    if out is not None:
        y, argmax, positive = out
        conv = Conv2dCache(algorithm, x, w, False, tuple(x.shape), window)
        pool = MaxPool2dCache(argmax, (x.shape[0], *window.out_hw, w.shape[3]), x.dtype, _pool_window(window))
        relu_cache = BiasReluCache(positive, x.dtype, b is not None) if relu else None
        return y, ConvMaxPoolCache(conv, pool, relu_cache, b is not None, True, saved="x")
    if not _pools_first(x, w, algorithm, activation):
        y, conv = conv2d_forward(x, w, b, stride, padding, algorithm, activation)
        q, pool = maxpool2d_forward(y, pool_size=2, strides=2, padding="valid")
        return q, ConvMaxPoolCache(conv, pool, None, b is not None, False)
    h_out, w_out = window.out_hw
    if algorithm == "im2col" and h_out % 2 == 0 and w_out % 2 == 0:
        # The windows grouped by their place in the pool windows: the product gives each
        # pool window's four pixels in four arrays of rows, whose maximum and first-maximum
        # index take contiguous passes, and whose gradient the backward pass makes by four
        # masked products instead of the pool's strided scatter.
        q, argmax, cols = _pooled_by_groups(x, w, b, window, keep_index=True)
        y, relu_cache = bias_relu_forward(q, None, overwrite_x=True)
        conv = Conv2dCache(algorithm, cols, w, False, tuple(x.shape), window)
        pool = MaxPool2dCache(argmax, (x.shape[0], h_out, w_out, w.shape[3]), x.dtype, _pool_window(window))
        return y, ConvMaxPoolCache(conv, pool, relu_cache._replace(has_bias=b is not None),
                                   b is not None, True, saved="pool groups")
    z, conv = conv2d_forward(x, w, b, stride, padding, algorithm)
    q, pool = maxpool2d_forward(z, pool_size=2, strides=2, padding="valid")
    # The pooled z is this op's own array: its ReLU is applied in place. Its cache says the
    # bias is there, so that its backward gives db from the pooled gradient (the same numbers
    # as the full-size one, whose other three quarters the pool's backward fills with
    # zeros), and the convolution's is not asked for.
    y, relu_cache = bias_relu_forward(q, None, overwrite_x=True)
    return y, ConvMaxPoolCache(conv._replace(has_bias=False), pool,
                               relu_cache._replace(has_bias=b is not None), b is not None, True)


def _pooled_by_groups(x, w, b, window: Window, keep_index: bool):
    """(q, index, cols): the 2x2 max-pool q of conv(x) + b from the windows grouped by their
    place in the pool windows (``im2col_by_pool_offset``, cols), the product giving each
    pool window's four pixels as four arrays of rows; index the first maximum's place
    (None without keep_index). h_out and w_out even."""
    kh, kw, c_in, c_out = w.shape
    h_out, w_out = window.out_hw
    cols = im2col_by_pool_offset(pad_nhwc(x, window.padding), window)
    z = cols.reshape(-1, kh * kw * c_in) @ w.reshape(-1, c_out)
    if b is not None:
        z += b
    z = z.reshape(4, x.shape[0], h_out // 2, w_out // 2, c_out)
    index_dtype = argmax_dtype(_pool_window(window)) if keep_index else None
    q, index = first_maximum([z[group] for group in range(4)], index_dtype)
    return q, index, cols


def _pool_window(window: Window) -> Window:
    """The 2x2, stride-2 'valid' max-pool over a convolution's output."""
    return plan_windows("maxpool2d", window.out_hw, (2, 2), (2, 2), "valid", allowed=("valid",))


def conv2d_maxpool_backward(dy, cache: ConvMaxPoolCache, input_grad: bool = True):
    """Gradients (dx, dw, db) of a training ``conv2d_maxpool_forward`` from dy = dL/d(pooled
    output); db is None when the forward had no bias, dx without ``input_grad``."""
    conv, pool, relu, has_bias, pooled_first, saved = cache
    if not pooled_first:
        return conv2d_backward(maxpool2d_backward(dy, pool), conv, input_grad)
    if relu is not None:
        dq, db = bias_relu_backward(dy, relu)
    else:
        dq, db = dy, (bias_gradient(dy) if has_bias else None)
    if saved == "pool groups":
        return (*_grouped_gradients(dq, conv, pool.argmax, input_grad), db)
    if saved == "x":
        k = kernel("im2col_conv_maxpool_training_backward", dq)
        c_out = conv.w.shape[3]
        if k:
            dx, dw = k(dq, pool.argmax, conv.saved, conv.w.reshape(-1, c_out), conv.window, input_grad)
            return dx, dw.reshape(conv.w.shape), db
        # The backend changed since the forward pass: the windows are built here.
        conv = conv._replace(saved=_im2col(conv.saved, conv.window))
    dx, dw, _ = conv2d_backward(maxpool2d_backward(dq, pool), conv, input_grad)
    return dx, dw, db


def _grouped_gradients(dq, conv: Conv2dCache, argmax, input_grad):
    """(dx, dw) from the pooled z's gradient dq, with the windows grouped by their place in
    the pool windows (``im2col_by_pool_offset``): group g's gradient is dq where the pool
    window's first maximum is its pixel g, else 0."""
    xp = array_module(dq)
    cols, w, window = conv.saved, conv.w, conv.window
    kh, kw, c_in, c_out = w.shape
    dz = xp.empty((4, *dq.shape), dtype=dq.dtype)
    for group in range(4):
        xp.multiply(dq, argmax == group, out=dz[group])
    dz2d, cols2d = dz.reshape(-1, c_out), cols.reshape(-1, kh * kw * c_in)
    dw = _weight_gradient(cols2d, dz2d).reshape(w.shape)
    if not input_grad:
        return None, dw
    n, h_half, w_half = dq.shape[:3]
    # Each group's window gradients back to their output pixels (2i + a, 2j + b), for col2im.
    dcols = (dz2d @ w.reshape(-1, c_out).T).reshape(2, 2, n, h_half, w_half, kh, kw, c_in)
    dcols = dcols.transpose(2, 3, 0, 4, 1, 5, 6, 7).reshape(n, 2 * h_half, 2 * w_half, kh, kw, c_in)
    return _col2im(dcols, conv.x_shape, window), dw


def _weight_gradient(cols2d, dy2d):
    """dW = cols^T dy, (K, C_out). BLAS splits a product's work over its rows, and a first
    layer's dW has few of them (27 for 3x3x3) against 64 columns: then the transposed
    product dy^T cols, which has 64 rows to split, transposed back."""
    if cols2d.shape[1] < dy2d.shape[1]:
        return (dy2d.T @ cols2d).T
    return cols2d.T @ dy2d


def _non_finite_on_host(x) -> bool:
    """Whether a host (NumPy) array holds a NaN or inf. One pass over x, far cheaper than the
    convolution that follows; a device array is not read back (that would wait for the GPU)."""
    return isinstance(x, np.ndarray) and not bool(np.isfinite(x).all())


def _im2col(x, window: Window):
    """im2col of x padded as ``window`` says: the backend's kernel where it has one (cupy: it
    reads the padding as zeros, never building the padded copy), else the array code."""
    k = kernel("im2col", x)
    return k(x, window) if k else im2col(pad_nhwc(x, window.padding), window)


def _col2im(dcols, x_shape, window: Window):
    """col2im cropped to the input, x_shape: the backend's kernel where it has one (a gather),
    else the array code's scatter onto the padded input, cropped."""
    k = kernel("col2im", dcols)
    if k:
        return k(dcols, x_shape, window)
    n, h, w, c = x_shape
    (top, bottom), (left, right) = window.padding
    padded_shape = (n, h + top + bottom, w + left + right, c)
    return unpad_nhwc(col2im(dcols, padded_shape, window), window.padding, (h, w))


def _resolve_algorithm(algorithm, window: Window, c_in: int, c_out: int, dtype) -> str:
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"{_OP}: algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, "
                         f"got {algorithm!r}")
    if algorithm == "auto":
        return choose_algorithm(window, c_in, c_out, dtype)
    if algorithm in _WINOGRAD and not winograd.applies(window):
        raise ValueError(f"{_OP}: algorithm {algorithm!r} needs a 3x3 kernel at stride 1, got kernel "
                         f"{window.kernel} and stride {window.strides}")
    return algorithm


def conv2d_backward(dy, cache: Conv2dCache, input_grad: bool = True):
    """Gradients (dx, dw, db) of conv2d_forward; db is None when the forward had no bias.

    With ``activation="relu"`` in the forward, dy is the gradient of the ReLU's output.
    input_grad=False skips dx (returned as None): a network's first layer, whose input is
    data, needs only dw and db.
    """
    algorithm, saved, w, has_bias, x_shape, window, relu = cache
    kh, kw, c_in, c_out = w.shape
    dy = as_float_array(f"{_OP}_backward", "dy", dy, ndim=4)
    check_shape(f"{_OP}_backward", "dy", dy, (x_shape[0], *window.out_hw, c_out))
    check_dtype(f"{_OP}_backward", "dy", dy, w.dtype)
    blocked = kernel("im2col_conv_backward", dy, w) if algorithm == "im2col" else None
    if blocked:
        # The whole backward pass in one kernel (numba): the mask, db and dW block by block,
        # then dx.
        dx, dw, db = blocked(dy, saved, None if relu is None else relu.positive, w.reshape(-1, c_out),
                             window, x_shape, input_grad)
        return dx, dw.reshape(w.shape), (db if has_bias else None)
    if relu is not None:
        dy, db = bias_relu_backward(dy, relu)
    else:
        db = bias_gradient(dy) if has_bias else None

    if algorithm in _WINOGRAD:
        dx, dw = winograd.backward(dy, saved, x_shape, window, _WINOGRAD[algorithm], input_grad)
        return dx, dw, db

    cols = saved
    dy2d = dy.reshape(-1, c_out)
    cols2d = cols.reshape(-1, kh * kw * c_in)
    dw = _weight_gradient(cols2d, dy2d).reshape(w.shape)
    if not input_grad:
        return None, dw, db
    dcols = (dy2d @ w.reshape(-1, c_out).T).reshape(cols.shape)
    return _col2im(dcols, x_shape, window), dw, db
