"""Softmax, and the mean softmax cross-entropy of logits against labels, fused.

Shapes
    z  (N, C) logits;   t  (N, C) target rows (one-hot or probabilities), or (N,) class ids
    p = softmax(z) (N, C);   L a scalar (0-d array)

Forward, computed through the log-sum-exp so that no exp overflows (logits of 1e4 are fine):

    log p[n, c] = z[n, c] - m[n] - log sum_k exp(z[n, k] - m[n]),   m[n] = max_k z[n, k]
    L = -(1/N) sum_n sum_c t[n, c] * log p[n, c]

Backward. With s[n] = sum_c t[n, c] (1 for one-hot or probability rows),

    dL/dz[n, c] = (1/N) * (p[n, c] * s[n] - t[n, c])

which is the familiar (p - t) / N for proper target rows. Fusing softmax into the loss is what
makes this gradient cheap and stable: the separate softmax Jacobian never appears.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module, kernels_for
from ._checks import as_float_array

_OP = "softmax_cross_entropy"


def _log_softmax(z, axis: int):
    xp = array_module(z)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropyCache(NamedTuple):
    probs: object        # (N, C) softmax of the logits
    targets: object      # (N, C) target rows, or (N,) class ids
    sparse: bool         # True when targets are class ids


def _check_labels(labels, logits):
    """Class ids (N,) of an integer dtype in [0, C), or target rows (N, C) of a float dtype."""
    xp = array_module(logits)
    labels = labels if hasattr(labels, "dtype") else xp.asarray(labels)
    n, c = logits.shape
    kind = labels.dtype.kind
    if kind in "iu":
        if tuple(labels.shape) != (n,):
            raise ValueError(
                f"{_OP}: integer labels must be class ids of shape ({n},), got shape {tuple(labels.shape)}"
            )
        if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
            raise ValueError(
                f"{_OP}: labels must be class ids in [0, {c}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return labels, True
    if kind == "f":
        if tuple(labels.shape) != (n, c):
            raise ValueError(
                f"{_OP}: float labels must be one-hot or probability rows of shape ({n}, {c}), "
                f"got shape {tuple(labels.shape)}"
            )
        return labels.astype(logits.dtype, copy=False), False
    raise TypeError(
        f"{_OP}: labels must be integer class ids (N,) or float target rows (N, C), got dtype {labels.dtype}"
    )


def softmax_cross_entropy_forward(logits, labels):
    """Mean cross-entropy of softmax(logits) against labels. Returns (loss as a 0-d array, cache)."""
    logits = as_float_array(_OP, "logits", logits, ndim=2)
    if logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"{_OP}: logits must have at least one row and one class, got shape {tuple(logits.shape)}")
    targets, sparse = _check_labels(labels, logits)
    xp = array_module(logits)
    k = kernels_for(logits, targets)
    if k:
        loss, probs = k.softmax_cross_entropy_forward(logits, targets, sparse)
        return xp.asarray(loss, dtype=logits.dtype), SoftmaxCrossEntropyCache(probs, targets, sparse)
    n = logits.shape[0]
    log_probs = _log_softmax(logits, axis=1)
    if sparse:
        picked = xp.take_along_axis(log_probs, targets[:, None].astype(xp.intp), axis=1)
        loss = -picked.sum() / n
    else:
        loss = -(targets * log_probs).sum() / n
    loss = xp.asarray(loss, dtype=logits.dtype)
    return loss, SoftmaxCrossEntropyCache(xp.exp(log_probs), targets, sparse)


def softmax_cross_entropy_backward(dloss, cache: SoftmaxCrossEntropyCache):
    """dlogits = dloss * (p * sum(t) - t) / N, shape (N, C)."""
    probs, targets, sparse = cache
    xp = array_module(probs)
    dloss = xp.asarray(dloss)
    if dloss.shape != ():
        raise ValueError(f"{_OP}_backward: dloss must be a scalar (0-d), got shape {tuple(dloss.shape)}")
    k = kernels_for(probs, targets)
    if k:
        return k.softmax_cross_entropy_backward(dloss, probs, targets, sparse)
    n = probs.shape[0]
    if sparse:
        dlogits = probs.copy()
        dlogits[xp.arange(n), targets] -= 1
    else:
        dlogits = probs * targets.sum(axis=1, keepdims=True) - targets
    dlogits *= dloss.astype(probs.dtype) / n
    return dlogits
