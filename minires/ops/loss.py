"""Losses over a batch, each a mean (Keras' default "sum_over_batch_size" reduction) with its
gradient: softmax cross-entropy of logits (fused), cross-entropy of probabilities, mean
squared error, and sigmoid binary cross-entropy of logits (fused). Each also has a plain
per-example form (N,), Keras' loss functions.

Shapes
    z  (N, C) logits;   p  (N, C) probability rows;   t  (N, C) target rows (one-hot or
    probabilities), or (N,) class ids (then t is their one-hot rows);   L a scalar (0-d array)

Softmax cross-entropy, computed through the log-sum-exp so that no exp overflows (logits of
1e4 are fine):

    log p[n, c] = z[n, c] - m[n] - log sum_k exp(z[n, k] - m[n]),   m[n] = max_k z[n, k]
    L = -(1/N) sum_n sum_c t[n, c] * log p[n, c]

Backward. With s[n] = sum_c t[n, c] (1 for one-hot or probability rows),

    dL/dz[n, c] = (1/N) * (p[n, c] * s[n] - t[n, c])

which is the familiar (p - t) / N for proper target rows. Fusing softmax into the loss is what
makes this gradient cheap and stable: the separate softmax Jacobian never appears.

Cross-entropy of probabilities, Keras' convention (``categorical_crossentropy`` with
``from_logits=False``): each row is divided by its sum, then clipped to [eps, 1 - eps] with
eps = 1e-7 (Keras' ``backend.epsilon()``) so that the log stays finite:

    s[n] = sum_c p[n, c];   q = p / s;   L = -(1/N) sum_n sum_c t[n, c] * log(clip(q[n, c]))

Backward. The clip passes no gradient where q is outside [eps, 1 - eps]; inside,
g = dL/dq = -t / (N q), and q = p / s gives dq[k]/dp[j] = (delta_kj - q[k]) / s, so

    dL/dp[n, j] = (g[n, j] - sum_k g[n, k] * q[n, k]) / s[n]

For rows that already sum to 1 the renormalisation changes no value, but it does change the
gradient: -t / (N p) of log(p) alone, minus (1/N) sum_k t[n, k] in every column.

Mean squared error over every element of y (N, ...) against t of the same shape, with M the
number of elements:

    L = (1/M) sum (y - t)^2;   dL/dy = 2 (y - t) / M

Sigmoid binary cross-entropy of logits z against targets t in [0, 1], both of any one shape
(M elements), with PyTorch's positive-class weight p (``pos_weight``; p = 1 is the plain
loss), through softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), which is finite
for any z (logits of 1e4 are fine):

    -log sigmoid(z) = softplus(-z);   -log(1 - sigmoid(z)) = softplus(z)
    l = p t softplus(-z) + (1 - t) softplus(z)    (= (1 + (p - 1) t) softplus(z) - p t z)
    L = (1/M) sum l

computed in the first form, whose terms are never negative (``_binary_terms`` says why).

Backward, with d softplus(z)/dz = sigmoid(z):

    dL/dz = ((1 + (p - 1) t) sigmoid(z) - p t) / M        = (sigmoid(z) - t) / M for p = 1
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module, kernel
from ._checks import as_float_array, check_same_dtype, check_shape

_OP = "softmax_cross_entropy"


def _log_softmax(z, axis: int):
    xp = array_module(z)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropyCache(NamedTuple):
    probs: object        # (N, C) softmax of the logits
    targets: object      # (N, C) target rows, or (N,) class ids
    sparse: bool         # True when targets are class ids


def _check_labels(labels, logits, op: str = _OP, check_ids: bool = True):
    """Class ids (N,) of an integer dtype in [0, C), or target rows (N, C) of a float dtype.

    ``check_ids=False`` leaves out the range check of class ids: reading their minimum and
    maximum back from a GPU makes the host wait for the device, and a caller that checked
    them where they were made (the model, on the host) need not pay that every batch.
    """
    xp = array_module(logits)
    labels = labels if hasattr(labels, "dtype") else xp.asarray(labels)
    n, c = logits.shape
    kind = labels.dtype.kind
    if kind in "iu":
        if tuple(labels.shape) != (n,):
            raise ValueError(
                f"{op}: integer labels must be class ids of shape ({n},), got shape {tuple(labels.shape)}"
            )
        if check_ids and n and (int(labels.min()) < 0 or int(labels.max()) >= c):
            raise ValueError(
                f"{op}: labels must be class ids in [0, {c}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return labels, True
    if kind == "f":
        if tuple(labels.shape) != (n, c):
            raise ValueError(
                f"{op}: float labels must be one-hot or probability rows of shape ({n}, {c}), "
                f"got shape {tuple(labels.shape)}"
            )
        return labels.astype(logits.dtype, copy=False), False
    raise TypeError(
        f"{op}: labels must be integer class ids (N,) or float target rows (N, C), got dtype {labels.dtype}"
    )


def _check_rows(op: str, name: str, scores, labels, check_ids: bool = True):
    """(scores as (N, C) with N, C >= 1, targets, sparse) for a cross-entropy."""
    scores = as_float_array(op, name, scores, ndim=2)
    if scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"{op}: {name} must have at least one row and one class, got shape {tuple(scores.shape)}")
    return (scores, *_check_labels(labels, scores, op, check_ids))


def _check_dloss(op: str, dloss, like):
    xp = array_module(like)
    dloss = xp.asarray(dloss)
    if dloss.shape != ():
        raise ValueError(f"{op}: dloss must be a scalar (0-d), got shape {tuple(dloss.shape)}")
    return dloss.astype(like.dtype)


def softmax_cross_entropy_forward(logits, labels, check_ids: bool = True):
    """Mean cross-entropy of softmax(logits) against labels. Returns (loss as a 0-d array, cache).

    check_ids: whether to check that class ids lie in [0, C); False only for ids already
    checked (on a GPU the check waits for the device).
    """
    logits, targets, sparse = _check_rows(_OP, "logits", logits, labels, check_ids)
    xp = array_module(logits)
    k = kernel("softmax_cross_entropy_forward", logits, targets)
    if k:
        loss, probs = k(logits, targets, sparse)
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
    dloss = _check_dloss(f"{_OP}_backward", dloss, probs)
    k = kernel("softmax_cross_entropy_backward", probs, targets)
    if k:
        return k(dloss, probs, targets, sparse)
    n = probs.shape[0]
    if sparse:
        dlogits = probs.copy()
        dlogits[xp.arange(n), targets] -= 1
    else:
        dlogits = probs * targets.sum(axis=1, keepdims=True) - targets
    dlogits *= dloss / n
    return dlogits


def softmax_cross_entropy(logits, labels):
    """Per-example cross-entropy (N,) of softmax(logits) against labels (Keras'
    ``categorical_crossentropy(..., from_logits=True)``)."""
    logits, targets, sparse = _check_rows(_OP, "logits", logits, labels)
    log_probs = _log_softmax(logits, axis=1)
    if sparse:
        xp = array_module(logits)
        return -xp.take_along_axis(log_probs, targets[:, None].astype(xp.intp), axis=1)[:, 0]
    return -(targets * log_probs).sum(axis=1)


# --- cross-entropy of probabilities ---------------------------------------------------------

_PROB_OP = "probability_cross_entropy"
EPSILON = 1e-7   # Keras' backend.epsilon(): the clip of probabilities before the log


class ProbabilityCrossEntropyCache(NamedTuple):
    q: object            # (N, C) the rows divided by their sums
    clipped: object      # (N, C) q clipped to [EPSILON, 1 - EPSILON]
    row_sums: object     # (N, 1)
    targets: object      # (N, C) target rows


def _renormalised(op: str, probs, labels, check_ids: bool = True):
    """(q, clip(q), row sums, target rows) of Keras' cross-entropy of probabilities."""
    probs, targets, sparse = _check_rows(op, "probs", probs, labels, check_ids)
    xp = array_module(probs)
    if sparse:
        n, c = probs.shape
        rows = xp.zeros((n, c), dtype=probs.dtype)
        rows[xp.arange(n), targets] = 1
        targets = rows
    row_sums = probs.sum(axis=-1, keepdims=True)
    q = probs / row_sums
    return q, xp.clip(q, EPSILON, 1.0 - EPSILON), row_sums, targets


def probability_cross_entropy_forward(probs, labels, check_ids: bool = True):
    """Mean cross-entropy of probability rows against labels, Keras' way (rows renormalised,
    then clipped to [1e-7, 1 - 1e-7]). Returns (loss as a 0-d array, cache).
    check_ids: as for ``softmax_cross_entropy_forward``."""
    q, clipped, row_sums, targets = _renormalised(_PROB_OP, probs, labels, check_ids)
    xp = array_module(q)
    loss = xp.asarray(-(targets * xp.log(clipped)).sum() / q.shape[0], dtype=q.dtype)
    return loss, ProbabilityCrossEntropyCache(q, clipped, row_sums, targets)


def probability_cross_entropy_backward(dloss, cache: ProbabilityCrossEntropyCache):
    """dprobs = dloss * (g - sum(g * q)) / s with g = -t / (N q) inside the clip, 0 outside;
    shape (N, C)."""
    q, clipped, row_sums, targets = cache
    dloss = _check_dloss(f"{_PROB_OP}_backward", dloss, q)
    inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)
    g = -(targets / clipped) * inside / q.shape[0]
    dprobs = ((g - (g * q).sum(axis=-1, keepdims=True)) / row_sums).astype(q.dtype, copy=False)
    dprobs *= dloss
    return dprobs


def probability_cross_entropy(probs, labels):
    """Per-example cross-entropy (N,) of probability rows against labels (Keras'
    ``categorical_crossentropy(..., from_logits=False)``)."""
    _, clipped, _, targets = _renormalised(_PROB_OP, probs, labels)
    return -(targets * array_module(clipped).log(clipped)).sum(axis=-1)


# --- mean squared error ---------------------------------------------------------------------

_MSE_OP = "mean_squared_error"


def _difference(y, targets):
    y = as_float_array(_MSE_OP, "y", y, min_ndim=1)
    targets = as_float_array(_MSE_OP, "targets", targets)
    check_shape(_MSE_OP, "targets", targets, y.shape)
    check_same_dtype(_MSE_OP, y=y, targets=targets)
    if y.size == 0:
        raise ValueError(f"{_MSE_OP}: y must have at least one element, got shape {tuple(y.shape)}")
    return y - targets


def mean_squared_error_forward(y, targets):
    """Mean of (y - targets)^2 over every element. Returns (loss as a 0-d array, cache)."""
    diff = _difference(y, targets)
    return array_module(diff).asarray((diff * diff).mean(), dtype=diff.dtype), diff


def mean_squared_error_backward(dloss, cache):
    """dy = dloss * 2 (y - targets) / M, M the number of elements; shape of y."""
    diff = cache
    return diff * (_check_dloss(f"{_MSE_OP}_backward", dloss, diff) * (2.0 / diff.size))


def mean_squared_error(y, targets):
    """Per-example mean squared error (N,): the mean over every axis but the first."""
    diff = _difference(y, targets)
    return (diff * diff).reshape(diff.shape[0], -1).mean(axis=-1)


# --- sigmoid binary cross-entropy -----------------------------------------------------------

_BCE_OP = "sigmoid_binary_cross_entropy"


class SigmoidBinaryCrossEntropyCache(NamedTuple):
    sigma: object        # sigmoid(z), the logits' shape
    targets: object      # t, the logits' shape
    pos_weight: object   # p: None, or broadcast along the last axis


def _check_binary(logits, targets, pos_weight):
    op = _BCE_OP
    logits = as_float_array(op, "logits", logits)
    if logits.size == 0:
        raise ValueError(f"{op}: logits must have at least one element, got shape {tuple(logits.shape)}")
    targets = as_float_array(op, "targets", targets)
    check_shape(op, "targets", targets, logits.shape)
    check_same_dtype(op, logits=logits, targets=targets)
    if pos_weight is not None:
        xp = array_module(logits)
        pos_weight = xp.asarray(pos_weight, dtype=logits.dtype)
        if pos_weight.ndim > 1 or (pos_weight.ndim == 1 and (logits.ndim == 0 or pos_weight.shape[0]
                                                                 not in (1, logits.shape[-1]))):
            last = logits.shape[-1] if logits.ndim else 1
            raise ValueError(
                f"{op}: pos_weight must be a number or of shape ({last},) (one per class, along the "
                f"last axis), got shape {tuple(pos_weight.shape)}"
            )
    return logits, targets, pos_weight


def _sigmoid(z):
    """1 / (1 + exp(-z)), written with exp(-|z|) <= 1 so that neither branch overflows."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _binary_terms(logits, targets, pos_weight):
    """The per-element loss l = p t softplus(-z) + (1 - t) softplus(z), as two terms that are
    never negative, so that no large numbers cancel: the equal form (1 + (p - 1) t)
    softplus(z) - p t z gave a logit of 1e4 with target 1 a float32 loss of 1e4 - 1e4 with
    the two rounded apart (parts in ten thousand of a batch's mean), where this gives 0.
    Both softpluses share log1p(exp(-|z|))."""
    xp = array_module(logits)
    shared = xp.log1p(xp.exp(-xp.abs(logits)))
    positive = targets if pos_weight is None else pos_weight * targets
    return positive * (xp.maximum(-logits, 0) + shared) + (1 - targets) * (xp.maximum(logits, 0) + shared)


def sigmoid_binary_cross_entropy_forward(logits, targets, pos_weight=None):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], over every
    element; ``pos_weight`` (a number, or one per class along the last axis) weighs the
    positive term, as PyTorch's BCEWithLogitsLoss. Returns (loss as a 0-d array, cache)."""
    logits, targets, pos_weight = _check_binary(logits, targets, pos_weight)
    xp = array_module(logits)
    loss = xp.asarray(_binary_terms(logits, targets, pos_weight).mean(), dtype=logits.dtype)
    return loss, SigmoidBinaryCrossEntropyCache(_sigmoid(logits), targets, pos_weight)


def sigmoid_binary_cross_entropy_backward(dloss, cache: SigmoidBinaryCrossEntropyCache):
    """dlogits = dloss * ((1 + (p - 1) t) sigmoid(z) - p t) / M, M the number of elements;
    with no pos_weight (p = 1), dloss * (sigmoid(z) - t) / M. Shape of the logits."""
    sigma, targets, pos_weight = cache
    dloss = _check_dloss(f"{_BCE_OP}_backward", dloss, sigma)
    if pos_weight is None:
        dlogits = sigma - targets
    else:
        dlogits = (1 + (pos_weight - 1) * targets) * sigma - pos_weight * targets
    dlogits *= dloss / sigma.size
    return dlogits


def sigmoid_binary_cross_entropy(logits, targets, pos_weight=None):
    """Per-example binary cross-entropy (N,): the mean over every axis but the first (Keras'
    ``binary_crossentropy(..., from_logits=True)``)."""
    logits, targets, pos_weight = _check_binary(logits, targets, pos_weight)
    terms = _binary_terms(logits, targets, pos_weight)
    return terms.reshape(terms.shape[0], -1).mean(axis=-1) if terms.ndim else terms
