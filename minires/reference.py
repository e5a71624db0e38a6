"""Reference ops: naive loops, forward and backward, written to be read and trusted.

One plain NumPy function per op, same names and arguments as ``minires.ops``, looping over
exactly the indices that the op's equation sums over. Nothing here is clever and nothing is
fast: these functions exist so that every vectorized path and every kernel has an
independent oracle for its output *and* its gradients, and so that a learner can read the
math in its most literal form. Never train with them.

Each function keeps the dtype of its inputs. Backward functions take the forward's inputs
explicitly instead of a cache, and parameter updates return new arrays instead of writing in
place, so each can be read on its own. The module imports NumPy and the standard library
only: its padding rule and window arithmetic are written out here, not shared with the ops.
"""

from __future__ import annotations

import math

import numpy as np

# --- window geometry ----------------------------------------------------------------------
#
# Written out here rather than imported from the ops: an oracle that shared the ops' padding
# code would agree with any mistake in it.


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(op, name, value):
    """An int or a pair of ints, each >= 1, as (rows, cols)."""
    if _is_int(value):
        value = (value, value)
    if len(value) != 2 or not all(_is_int(v) and v >= 1 for v in value):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= 1, got {value!r}")
    return int(value[0]), int(value[1])


def same_padding(n, k, s):
    """Keras' 'same' padding of one axis of n pixels, window k, stride s: (before, after).

    The output keeps ceil(n / s) positions; the last window starts at (ceil(n / s) - 1) * s and
    ends k - 1 pixels later, so the axis needs total = max((ceil(n / s) - 1) * s + k - n, 0)
    extra pixels. Half go before; when total is odd the extra pixel goes after (bottom/right).
    """
    n_out = math.ceil(n / s)
    total = max((n_out - 1) * s + k - n, 0)
    before = total // 2
    after = total - before
    return before, after


def resolve_padding(op, padding, in_hw, kernel, strides, explicit=True):
    """((top, bottom), (left, right)) for the padding forms the ops accept:
    'valid' (none), 'same' (Keras), and when ``explicit``: an int p (p on every side),
    (ph, pw) (ph on top and bottom, pw on left and right), ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0), (0, 0)
        if padding.lower() == "same":
            return (same_padding(in_hw[0], kernel[0], strides[0]),
                    same_padding(in_hw[1], kernel[1], strides[1]))
        raise ValueError(f"{op}: padding must be 'same' or 'valid', got {padding!r}")
    if not explicit:
        raise ValueError(f"{op}: padding must be 'same' or 'valid', got {padding!r}")
    if _is_int(padding):
        pads = ((padding, padding), (padding, padding))
    elif _is_int(padding[0]) and _is_int(padding[1]):
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    else:
        pads = (tuple(padding[0]), tuple(padding[1]))
    if not all(_is_int(p) and p >= 0 for side in pads for p in side):
        raise ValueError(f"{op}: padding must be ints >= 0, got {padding!r}")
    return (int(pads[0][0]), int(pads[0][1])), (int(pads[1][0]), int(pads[1][1]))


def output_size(op, n, k, s, before, after):
    """Positions of a window k at stride s on n pixels padded by before + after:
    window o covers padded pixels o*s .. o*s + k - 1, so n_out = (n + before + after - k) // s + 1."""
    padded = n + before + after
    if k > padded:
        raise ValueError(f"{op}: a window of {k} does not fit in {n} pixels padded to {padded}")
    return (padded - k) // s + 1


def _windows(op, x, kernel, strides, padding, explicit):
    """(padding, (h_out, w_out)) of windows ``kernel`` at ``strides`` over NHWC ``x``."""
    in_hw = x.shape[1:3]
    (top, bottom), (left, right) = resolve_padding(op, padding, in_hw, kernel, strides, explicit)
    h_out = output_size(op, in_hw[0], kernel[0], strides[0], top, bottom)
    w_out = output_size(op, in_hw[1], kernel[1], strides[1], left, right)
    return ((top, bottom), (left, right)), (h_out, w_out)


def _pad(x, padding, value=0.0):
    (top, bottom), (left, right) = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


# --- conv2d -------------------------------------------------------------------------------

def conv2d_forward(x, w, b=None, stride=1, padding="same"):
    """y[n, oh, ow, o] = b[o] + sum_{i, j, c} xpad[n, oh*sh + i, ow*sw + j, c] * w[i, j, c, o]."""
    kh, kw, c_in, c_out = w.shape
    sh, sw = _pair("conv2d", "stride", stride)
    pads, (h_out, w_out) = _windows("conv2d", x, (kh, kw), (sh, sw), padding, explicit=True)
    xpad = _pad(x, pads)
    n = x.shape[0]
    y = np.zeros((n, h_out, w_out, c_out), dtype=x.dtype)
    for b_ in range(n):
        for oh in range(h_out):
            for ow in range(w_out):
                for o in range(c_out):
                    total = 0.0 if b is None else b[o]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(c_in):
                                total += xpad[b_, oh * sh + i, ow * sw + j, c] * w[i, j, c, o]
                    y[b_, oh, ow, o] = total
    return y


def conv2d_backward(dy, x, w, b=None, stride=1, padding="same"):
    """(dx, dw, db): each product x*w in the forward sum sends dy to both of its factors."""
    kh, kw, c_in, c_out = w.shape
    sh, sw = _pair("conv2d", "stride", stride)
    pads, (h_out, w_out) = _windows("conv2d", x, (kh, kw), (sh, sw), padding, explicit=True)
    xpad = _pad(x, pads)
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    n = x.shape[0]
    for b_ in range(n):
        for oh in range(h_out):
            for ow in range(w_out):
                for o in range(c_out):
                    g = dy[b_, oh, ow, o]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(c_in):
                                r, s = oh * sh + i, ow * sw + j
                                dxpad[b_, r, s, c] += g * w[i, j, c, o]
                                dw[i, j, c, o] += g * xpad[b_, r, s, c]
    (top, _), (left, _) = pads
    dx = dxpad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    db = None if b is None else dy.sum(axis=(0, 1, 2))
    return dx, dw, db


# --- maxpool2d ----------------------------------------------------------------------------

def _first_max(window):
    """(i, j) of the first maximum of a 2-D window in row-major order."""
    best = (0, 0)
    for i in range(window.shape[0]):
        for j in range(window.shape[1]):
            if window[i, j] > window[best]:
                best = (i, j)
    return best


def _pool_windows(x, pool_size, strides, padding):
    """(window, strides, padding, (h_out, w_out), x padded with -inf); strides default to the window."""
    kernel = _pair("maxpool2d", "pool_size", pool_size)
    step = kernel if strides is None else _pair("maxpool2d", "strides", strides)
    pads, out_hw = _windows("maxpool2d", x, kernel, step, padding, explicit=False)
    return kernel, step, pads, out_hw, _pad(x, pads, value=-np.inf)


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """y[n, oh, ow, c] = max over the window of xpad (padded with -inf)."""
    (ph, pw), (sh, sw), pads, (h_out, w_out), xpad = _pool_windows(x, pool_size, strides, padding)
    n, c_count = x.shape[0], x.shape[3]
    y = np.zeros((n, h_out, w_out, c_count), dtype=x.dtype)
    for b_ in range(n):
        for oh in range(h_out):
            for ow in range(w_out):
                for c in range(c_count):
                    window = xpad[b_, oh * sh:oh * sh + ph, ow * sw:ow * sw + pw, c]
                    y[b_, oh, ow, c] = window[_first_max(window)]
    return y


def maxpool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    """dx: each dy goes to its window's first maximum (row-major), summed over windows."""
    (ph, pw), (sh, sw), pads, (h_out, w_out), xpad = _pool_windows(x, pool_size, strides, padding)
    dxpad = np.zeros_like(xpad)
    n, c_count = x.shape[0], x.shape[3]
    for b_ in range(n):
        for oh in range(h_out):
            for ow in range(w_out):
                for c in range(c_count):
                    window = xpad[b_, oh * sh:oh * sh + ph, ow * sw:ow * sw + pw, c]
                    i, j = _first_max(window)
                    dxpad[b_, oh * sh + i, ow * sw + j, c] += dy[b_, oh, ow, c]
    (top, _), (left, _) = pads
    return dxpad[:, top:top + x.shape[1], left:left + x.shape[2], :]


# --- element-wise and shape ops -----------------------------------------------------------

def relu_forward(x):
    """y = max(x, 0): x where x > 0, 0 where x <= 0, NaN where x is NaN."""
    y = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        if not x[idx] <= 0:
            y[idx] = x[idx]
    return y


def relu_backward(dy, x):
    """dx = dy where x > 0, else 0 (the gradient at exactly 0 is taken to be 0)."""
    dx = np.zeros_like(dy)
    for idx in np.ndindex(x.shape):
        if x[idx] > 0:
            dx[idx] = dy[idx]
    return dx


def bias_relu_forward(x, b=None):
    """y = max(x + b, 0), b[c] added to every x[..., c]; NaN stays NaN."""
    y = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        v = x[idx] if b is None else x[idx] + b[idx[-1]]
        if not v <= 0:
            y[idx] = v
    return y


def bias_relu_backward(dy, x, b=None):
    """(dx, db): dx = dy where x + b > 0, else 0; db[c] sums dx[..., c] (None without b)."""
    dx = np.zeros_like(dy)
    db = None if b is None else np.zeros_like(b)
    for idx in np.ndindex(x.shape):
        v = x[idx] if b is None else x[idx] + b[idx[-1]]
        if v > 0:
            dx[idx] = dy[idx]
            if db is not None:
                db[idx[-1]] += dy[idx]
    return dx, db


def add_forward(a, b):
    """y = a + b, element by element."""
    y = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        y[idx] = a[idx] + b[idx]
    return y


def add_backward(dy, a, b):
    """(da, db) = (dy, dy): d(a + b)/da = d(a + b)/db = 1."""
    return dy.copy(), dy.copy()


def subtract_forward(a, b):
    """y = a - b, element by element."""
    y = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        y[idx] = a[idx] - b[idx]
    return y


def subtract_backward(dy, a, b):
    """(da, db) = (dy, -dy): d(a - b)/da = 1, d(a - b)/db = -1."""
    db = np.empty_like(dy)
    for idx in np.ndindex(dy.shape):
        db[idx] = -dy[idx]
    return dy.copy(), db


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), with exp of a non-positive number only."""
    y = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        v = float(x[idx])
        y[idx] = 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
    return y


def sigmoid_backward(dy, x):
    """dx = dy * s * (1 - s), s = sigmoid(x)."""
    s = sigmoid_forward(x)
    dx = np.empty_like(dy)
    for idx in np.ndindex(x.shape):
        dx[idx] = dy[idx] * s[idx] * (1 - s[idx])
    return dx


def flatten_forward(x):
    """y[n, k] = x[n, ...] with k the row-major position of the trailing index."""
    n = x.shape[0]
    rest = x.shape[1:]
    size = int(np.prod(rest))
    y = np.empty((n, size), dtype=x.dtype)
    for b_ in range(n):
        for k, idx in enumerate(np.ndindex(rest)):
            y[b_, k] = x[(b_, *idx)]
    return y


def flatten_backward(dy, x):
    """dx[n, ...] = dy[n, k]: the same bijection, read the other way."""
    dx = np.empty_like(x)
    for b_ in range(x.shape[0]):
        for k, idx in enumerate(np.ndindex(x.shape[1:])):
            dx[(b_, *idx)] = dy[b_, k]
    return dx


def upsample2d_forward(x, size=2):
    """y[n, i, j, c] = x[n, i // fh, j // fw, c], y of shape (N, H*fh, W*fw, C)."""
    fh, fw = _pair("upsample2d", "size", size)
    n, h, w, c = x.shape
    y = np.empty((n, h * fh, w * fw, c), dtype=x.dtype)
    for b_, i, j, k in np.ndindex(y.shape):
        y[b_, i, j, k] = x[b_, i // fh, j // fw, k]
    return y


def upsample2d_backward(dy, x, size=2):
    """dx[n, h, w, c] = sum of dy over the fh x fw block that x[n, h, w, c] was copied into."""
    fh, fw = _pair("upsample2d", "size", size)
    dx = np.zeros_like(x)
    for b_, i, j, k in np.ndindex(dy.shape):
        dx[b_, i // fh, j // fw, k] += dy[b_, i, j, k]
    return dx


def concat_forward(arrays, axis=-1):
    """y = the arrays one after another along ``axis``: y[..., offset_k + i, ...] = x_k[..., i, ...]."""
    axis %= arrays[0].ndim
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    y = np.empty(shape, dtype=arrays[0].dtype)
    offset = 0
    for a in arrays:
        for idx in np.ndindex(a.shape):
            out = list(idx)
            out[axis] += offset
            y[tuple(out)] = a[idx]
        offset += a.shape[axis]
    return y


def concat_backward(dy, arrays, axis=-1):
    """dx_k[..., i, ...] = dy[..., offset_k + i, ...]: each input reads back its own slice."""
    axis %= dy.ndim
    grads, offset = [], 0
    for a in arrays:
        g = np.empty_like(a)
        for idx in np.ndindex(a.shape):
            out = list(idx)
            out[axis] += offset
            g[idx] = dy[tuple(out)]
        grads.append(g)
        offset += a.shape[axis]
    return tuple(grads)


def abs_diff_forward(a, b):
    """y = |a - b|, element by element."""
    y = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        d = a[idx] - b[idx]
        y[idx] = d if d >= 0 else -d
    return y


def abs_diff_backward(dy, a, b):
    """(da, db): da = dy * sign(a - b), db = -da, with sign(0) = 0 (the subgradient chosen at a == b)."""
    da = np.zeros_like(dy)
    db = np.zeros_like(dy)
    for idx in np.ndindex(a.shape):
        if a[idx] > b[idx]:
            da[idx], db[idx] = dy[idx], -dy[idx]
        elif a[idx] < b[idx]:
            da[idx], db[idx] = -dy[idx], dy[idx]
    return da, db


# --- instance_norm -------------------------------------------------------------------------

def instance_norm_forward(x, epsilon=1e-3):
    """y[n, h, w, c] = (x[n, h, w, c] - mu[n, c]) / sqrt(var[n, c] + epsilon), mu and the
    biased variance var taken over the H*W pixels of image n, channel c."""
    n, h, w, c = x.shape
    y = np.empty_like(x)
    for b in range(n):
        for ch in range(c):
            total = 0.0
            for i in range(h):
                for j in range(w):
                    total += x[b, i, j, ch]
            mu = total / (h * w)
            squares = 0.0
            for i in range(h):
                for j in range(w):
                    squares += (x[b, i, j, ch] - mu) ** 2
            s = 1.0 / math.sqrt(squares / (h * w) + epsilon)
            for i in range(h):
                for j in range(w):
                    y[b, i, j, ch] = (x[b, i, j, ch] - mu) * s
    return y


def instance_norm_backward(dy, x, epsilon=1e-3):
    """dx by the chain rule through y's three paths to x[n, p, c] (P = H*W pixels):

        dy/dx directly:  s
        through mu:      d mu / dx[p] = 1/P
        through var:     d var / dx[p] = 2 (x[p] - mu) / P
        dx[p] = s * dy[p] - (s / P) * sum_q dy[q] - (s^3 / P) * (x[p] - mu) * sum_q dy[q] (x[q] - mu)
    """
    n, h, w, c = x.shape
    p = h * w
    dx = np.empty_like(x)
    for b in range(n):
        for ch in range(c):
            pixels = [(i, j) for i in range(h) for j in range(w)]
            mu = sum(x[b, i, j, ch] for i, j in pixels) / p
            var = sum((x[b, i, j, ch] - mu) ** 2 for i, j in pixels) / p
            s = 1.0 / math.sqrt(var + epsilon)
            sum_dy = sum(dy[b, i, j, ch] for i, j in pixels)
            sum_dy_xc = sum(dy[b, i, j, ch] * (x[b, i, j, ch] - mu) for i, j in pixels)
            for i, j in pixels:
                dx[b, i, j, ch] = (s * dy[b, i, j, ch] - s / p * sum_dy
                                   - s ** 3 / p * (x[b, i, j, ch] - mu) * sum_dy_xc)
    return dx


# --- dense --------------------------------------------------------------------------------

def dense_forward(x, w, b=None):
    """y[n, o] = b[o] + sum_i x[n, i] * w[i, o]."""
    n, d_in = x.shape
    d_out = w.shape[1]
    y = np.zeros((n, d_out), dtype=x.dtype)
    for b_ in range(n):
        for o in range(d_out):
            total = 0.0 if b is None else b[o]
            for i in range(d_in):
                total += x[b_, i] * w[i, o]
            y[b_, o] = total
    return y


def dense_backward(dy, x, w, b=None):
    """dx[n, i] = sum_o dy[n, o] w[i, o];  dw[i, o] = sum_n x[n, i] dy[n, o];  db[o] = sum_n dy[n, o]."""
    n, d_in = x.shape
    d_out = w.shape[1]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for b_ in range(n):
        for o in range(d_out):
            for i in range(d_in):
                dx[b_, i] += dy[b_, o] * w[i, o]
                dw[i, o] += x[b_, i] * dy[b_, o]
    db = None if b is None else dy.sum(axis=0)
    return dx, dw, db


# --- softmax --------------------------------------------------------------------------------

def softmax_forward(x, axis=-1):
    """exp(x - max) / sum exp(x - max), one slice along ``axis`` at a time."""
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        e = np.exp(row - row.max())
        out[idx] = e / e.sum()
    return np.moveaxis(out, -1, axis)


def softmax_backward(dy, x, axis=-1):
    """dx[j] = sum_i dy[i] * dy_i/dx_j, with the Jacobian dy_i/dx_j = y_i (delta_ij - y_j),
    one slice along ``axis`` at a time."""
    y = np.moveaxis(softmax_forward(x, axis), axis, -1)
    g = np.moveaxis(dy, axis, -1)
    dx = np.zeros_like(g)
    c = y.shape[-1]
    for idx in np.ndindex(y.shape[:-1]):
        for j in range(c):
            for i in range(c):
                delta = 1.0 if i == j else 0.0
                dx[idx + (j,)] += g[idx + (i,)] * y[idx + (i,)] * (delta - y[idx + (j,)])
    return np.moveaxis(dx, -1, axis)


# --- losses ---------------------------------------------------------------------------------


def _target_rows(labels, n, c, dtype):
    if labels.dtype.kind in "iu":
        t = np.zeros((n, c), dtype=dtype)
        for b_ in range(n):
            t[b_, labels[b_]] = 1
        return t
    return labels.astype(dtype)


def softmax_cross_entropy_forward(logits, labels):
    """L = -(1/N) sum_n sum_c t[n, c] log p[n, c], with log p from the log-sum-exp."""
    n, c = logits.shape
    t = _target_rows(labels, n, c, logits.dtype)
    total = 0.0
    for b_ in range(n):
        row = logits[b_]
        m = row.max()
        log_sum = m + np.log(np.sum(np.exp(row - m)))
        for k in range(c):
            total -= t[b_, k] * (row[k] - log_sum)
    return np.asarray(total / n, dtype=logits.dtype)


def softmax_cross_entropy_backward(dloss, logits, labels):
    """dL/dz[n, c] = dloss * (p[n, c] * sum_k t[n, k] - t[n, c]) / N."""
    n, c = logits.shape
    t = _target_rows(labels, n, c, logits.dtype)
    p = softmax_forward(logits, axis=1)
    dz = np.empty_like(logits)
    for b_ in range(n):
        s = t[b_].sum()
        for k in range(c):
            dz[b_, k] = dloss * (p[b_, k] * s - t[b_, k]) / n
    return dz


# --- parameter updates --------------------------------------------------------------------
#
# Each returns new arrays instead of writing in place (the ops write in place), and loops over
# the flattened parameter one element at a time.

def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    """One Adam step in Keras' form; returns the new (param, m, v).

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  param = param - lr_t m / (sqrt(v) + eps),
    where lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) already holds both bias corrections.
    """
    p, g, m, v = param.flatten(), grad.flatten(), m.flatten(), v.flatten()
    for k in range(p.size):
        m[k] = beta1 * m[k] + (1 - beta1) * g[k]
        v[k] = beta2 * v[k] + (1 - beta2) * g[k] * g[k]
        p[k] = p[k] - lr_t * m[k] / (np.sqrt(v[k]) + eps)
    return p.reshape(param.shape), m.reshape(param.shape), v.reshape(param.shape)


def adam_torch_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step as the paper's Algorithm 1 (PyTorch's form); returns the new (param, m, v).

    The moments as in Keras; then the bias-corrected m_hat = m / (1 - b1^t) and
    v_hat = v / (1 - b2^t), and param = param - lr m_hat / (sqrt(v_hat) + eps).
    """
    p, g, m, v = param.flatten(), grad.flatten(), m.flatten(), v.flatten()
    for k in range(p.size):
        m[k] = beta1 * m[k] + (1 - beta1) * g[k]
        v[k] = beta2 * v[k] + (1 - beta2) * g[k] * g[k]
        m_hat = m[k] / (1 - beta1 ** step)
        v_hat = v[k] / (1 - beta2 ** step)
        p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p.reshape(param.shape), m.reshape(param.shape), v.reshape(param.shape)


def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False):
    """One SGD step in Keras' form; returns the new (param, velocity), velocity None without one.

    Without a velocity: param = param - lr g. With one: velocity = momentum velocity - lr g,
    then param = param + velocity, or with Nesterov param = param + momentum velocity - lr g.
    """
    p, g = param.flatten(), grad.flatten()
    vel = None if velocity is None else velocity.flatten()
    for k in range(p.size):
        if vel is None:
            p[k] = p[k] - lr * g[k]
            continue
        vel[k] = momentum * vel[k] - lr * g[k]
        if nesterov:
            p[k] = p[k] + momentum * vel[k] - lr * g[k]
        else:
            p[k] = p[k] + vel[k]
    return p.reshape(param.shape), None if vel is None else vel.reshape(param.shape)


def probability_cross_entropy_forward(probs, labels, eps=1e-7):
    """Keras' cross-entropy of probability rows: each row divided by its sum, clipped to
    [eps, 1 - eps], then L = -(1/N) sum_n sum_c t[n, c] log q[n, c]."""
    n, c = probs.shape
    t = _target_rows(labels, n, c, probs.dtype)
    total = 0.0
    for b_ in range(n):
        row_sum = 0.0
        for k in range(c):
            row_sum += probs[b_, k]
        for k in range(c):
            q = min(max(probs[b_, k] / row_sum, eps), 1 - eps)
            total -= t[b_, k] * np.log(q)
    return np.asarray(total / n, dtype=probs.dtype)


def probability_cross_entropy_backward(dloss, probs, labels, eps=1e-7):
    """dL/dp[n, j] = sum_k dL/dq[n, k] * dq[n, k]/dp[n, j], by the chain rule through q = p / s:

    dL/dq[n, k] = -dloss * t[n, k] / (N q[n, k]) where eps <= q[n, k] <= 1 - eps, else 0 (the clip);
    dq[n, k]/dp[n, j] = (delta_kj - q[n, k]) / s[n],  s[n] = sum_c p[n, c].
    """
    n, c = probs.shape
    t = _target_rows(labels, n, c, probs.dtype)
    dp = np.zeros_like(probs)
    for b_ in range(n):
        s = 0.0
        for k in range(c):
            s += probs[b_, k]
        for k in range(c):
            q = probs[b_, k] / s
            if not eps <= q <= 1 - eps:
                continue
            dq = -dloss * t[b_, k] / (n * q)
            for j in range(c):
                delta = 1.0 if j == k else 0.0
                dp[b_, j] += dq * (delta - q) / s
    return dp


def mean_squared_error_forward(y, targets):
    """L = (1/M) sum (y - t)^2 over all M elements."""
    total = 0.0
    for idx in np.ndindex(y.shape):
        total += (y[idx] - targets[idx]) ** 2
    return np.asarray(total / y.size, dtype=y.dtype)


def mean_squared_error_backward(dloss, y, targets):
    """dL/dy = dloss * 2 (y - t) / M."""
    dy = np.empty_like(y)
    for idx in np.ndindex(y.shape):
        dy[idx] = dloss * 2 * (y[idx] - targets[idx]) / y.size
    return dy


def _log1p_exp(z):
    """log(1 + exp(z)) without overflow: max(z, 0) + log(1 + exp(-|z|))."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _pos_weight_at(pos_weight, idx):
    if pos_weight is None:
        return 1.0
    p = np.asarray(pos_weight, dtype=np.float64)
    return float(p) if p.ndim == 0 else float(p[idx[-1] if p.shape[0] > 1 else 0])


def sigmoid_binary_cross_entropy_forward(logits, targets, pos_weight=None):
    """L = (1/M) sum -[p t log s(z) + (1 - t) log(1 - s(z))], s the sigmoid, p the positive
    weight (1 without one), each log through log(1 + exp(.)) so that no exp overflows."""
    total = 0.0
    for idx in np.ndindex(logits.shape):
        z, t = float(logits[idx]), float(targets[idx])
        p = _pos_weight_at(pos_weight, idx)
        minus_log_sigma = _log1p_exp(-z)             # -log s(z)
        minus_log_one_minus = _log1p_exp(z)          # -log(1 - s(z))
        total += p * t * minus_log_sigma + (1 - t) * minus_log_one_minus
    return np.asarray(total / logits.size, dtype=logits.dtype)


def sigmoid_binary_cross_entropy_backward(dloss, logits, targets, pos_weight=None):
    """dL/dz = dloss * (-p t (1 - s(z)) + (1 - t) s(z)) / M, term by term from the forward."""
    dz = np.empty_like(logits)
    for idx in np.ndindex(logits.shape):
        z, t = float(logits[idx]), float(targets[idx])
        p = _pos_weight_at(pos_weight, idx)
        s = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        dz[idx] = dloss * (-p * t * (1.0 - s) + (1.0 - t) * s) / logits.size
    return dz
