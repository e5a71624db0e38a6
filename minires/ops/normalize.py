"""Instance normalisation: each image's channels brought to mean 0 and variance 1 over their
pixels, with no learned scale or shift. A change detector normalises both of its inputs this
way, so that a global change of brightness, contrast or colour balance between "before" and
"after" (a gain and an offset per channel) is taken out before the images are compared.

    x  (N, H, W, C)      for each image n and channel c, over its H*W pixels (P of them):
    mu  = sum_hw x / P                    var = sum_hw (x - mu)^2 / P     (biased, as PyTorch's)
    s   = 1 / sqrt(var + eps)
    y   = (x - mu) * s                                                    forward
    dx  = s * (dy - mean_hw(dy) - y * mean_hw(dy * y))                    backward

The backward pass follows from y depending on x directly and through mu and var: d mu / dx = 1/P
and d var / dx = 2 (x - mu) / P, which gives the two means subtracted above (docs/ops.md).
``eps`` > 0 keeps a constant channel finite: there y = 0 and dx = s * (dy - mean_hw(dy)).
y(a x + b) = y(x) for any a > 0 up to the eps term: a per-channel gain and offset cancel.
"""

from __future__ import annotations

import math

from ..backend import array_module
from ._checks import as_float_array, check_dtype, check_shape

_OP = "instance_norm"


def check_epsilon(who: str, epsilon) -> float:
    """``epsilon`` as a float, or a ValueError naming ``who`` unless it is finite and > 0."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not \
            (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"{who}: epsilon must be a finite number > 0, got {epsilon!r}")
    return float(epsilon)


def instance_norm_forward(x, epsilon: float = 1e-3):
    """y = (x - mean) / sqrt(var + epsilon), the mean and (biased) variance of each image's
    channel over its pixels, x NHWC. Returns (y, cache); the cache is (y, 1 / sqrt(var + eps))."""
    x = as_float_array(_OP, "x", x, ndim=4)
    epsilon = check_epsilon(_OP, epsilon)
    xp = array_module(x)
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    # Two passes (mean, then the mean of squared deviations): no cancellation when the
    # channel's mean is large against its spread, as for image intensities.
    scale = 1 / xp.sqrt((centred * centred).mean(axis=(1, 2), keepdims=True) + x.dtype.type(epsilon))
    y = centred * scale
    return y, (y, scale)


def instance_norm_backward(dy, cache):
    """dx = s * (dy - mean_hw(dy) - y * mean_hw(dy * y)), per image and channel."""
    y, scale = cache
    op = f"{_OP}_backward"
    dy = as_float_array(op, "dy", dy, ndim=4)
    check_shape(op, "dy", dy, y.shape)
    check_dtype(op, "dy", dy, y.dtype)
    return scale * (dy - dy.mean(axis=(1, 2), keepdims=True)
                    - y * (dy * y).mean(axis=(1, 2), keepdims=True))
