"""Losses, each a forward/backward pair over a batch, averaged over the batch (Keras' default
"sum_over_batch_size" reduction). The math is the ops' (``minires.ops.loss``, which writes it
out); a loss here checks the targets against the model's output and picks the op.

Shapes: predictions ``p`` and target rows ``t`` are (N, C); sparse targets are class ids of
shape (N,) or (N, 1). Each loss is a 0-d array; ``backward`` returns dL/dp.

Cross-entropy on probabilities (``from_logits=False``) is Keras' clipped form,
``ops.probability_cross_entropy_*``: each row renormalised to sum 1, clipped to
[1e-7, 1 - 1e-7] before the log. A model whose output layer ends in softmax never uses that
form for training: it runs the output layer up to its logits z and applies ``fused_forward``,
the mean softmax cross-entropy of ``ops.softmax_cross_entropy_*``, whose gradient is the
stable (p - t) / N. The clipped form is there for the rare output that is a probability but
not a softmax.

With ``from_logits=True`` the model's output is taken to be logits, and the same fused op
is applied to it directly.

Mean squared error (``ops.mean_squared_error_*``): L = (1/(N*C)) sum (p - t)^2,
dL/dp = 2 (p - t) / (N*C).

Binary cross-entropy (``ops.sigmoid_binary_cross_entropy_*``): the mean over every element
of targets in [0, 1] of any shape (a per-pixel change mask), with an optional weight of the
positive class (PyTorch's ``pos_weight``, for rare changed pixels). It is computed from
logits only: with ``from_logits=True`` the output is the logits; with ``from_logits=False``
the output layer must end in sigmoid, which is then fused as softmax is above.
"""

from __future__ import annotations

import numpy

from . import ops
from .backend import array_module
from .ops.loss import EPSILON as _EPSILON


class Loss:
    """A loss: ``forward(y_pred, targets) -> (loss, cache)``, ``backward(cache) -> dy_pred``."""

    name = "loss"
    #: True when the loss is a cross-entropy on probabilities that a softmax output may fuse.
    fusable = False
    #: The output activation the fused form replaces.
    fused_activation = "softmax"
    #: True when the loss has no unfused form on probabilities (it must be fused or on logits).
    needs_fusion = False

    def prepare_targets(self, y, output_shape, dtype, who: str = "loss"):
        """Check y against the model's output shape (None batch) and give it its dtype.

        Works on either array module; the returned array lives where ``y`` does.
        """
        raise NotImplementedError

    def forward(self, y_pred, targets):
        raise NotImplementedError

    def backward(self, cache):
        raise NotImplementedError

    def fused_forward(self, logits, targets):
        """Mean softmax cross-entropy of ``logits``: (loss, cache) of ops.softmax_cross_entropy."""
        raise NotImplementedError(f"{type(self).__name__} has no fused softmax form")

    def fused_backward(self, cache):
        return ops.softmax_cross_entropy_backward(1.0, cache)

    def __call__(self, y_true, y_pred):
        """The loss value as a float, Keras' ``loss(y_true, y_pred)``."""
        y_pred, xp = _predictions(y_pred)
        targets = self.prepare_targets(xp.asarray(y_true), (None, *y_pred.shape[1:]),
                                       y_pred.dtype.name, type(self).__name__)
        loss, _ = self.forward(y_pred, targets)
        return float(loss)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        return cls(**config)


def _check_output_2d(who, output_shape, loss_name):
    if len(output_shape) != 2:
        raise ValueError(f"{who}: {loss_name} needs model outputs of shape (N, classes), "
                         f"got {output_shape}")


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or probability) rows of shape (N, C)."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        if not isinstance(from_logits, bool):
            raise ValueError(f"CategoricalCrossentropy: from_logits must be True or False, got {from_logits!r}")
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"CategoricalCrossentropy: label_smoothing must be in [0, 1], "
                             f"got {label_smoothing!r}")
        self.from_logits = from_logits
        self.label_smoothing = float(label_smoothing)

    @property
    def fusable(self):
        return not self.from_logits

    def prepare_targets(self, y, output_shape, dtype, who="loss"):
        _check_output_2d(who, output_shape, type(self).__name__)
        classes = output_shape[1]
        if y.ndim != 2 or (classes is not None and y.shape[1] != classes):
            hint = (" (class ids: use to_categorical(y, num_classes) or SparseCategoricalCrossentropy)"
                    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1) else "")
            raise ValueError(f"{who}: CategoricalCrossentropy needs one-hot targets of shape "
                             f"(N, {classes}), got {tuple(y.shape)}{hint}")
        t = y.astype(dtype, copy=False)
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / t.shape[1]
        return t

    def fused_forward(self, logits, targets):
        return ops.softmax_cross_entropy_forward(logits, targets)

    def forward(self, y_pred, targets):
        if self.from_logits:
            return self.fused_forward(y_pred, targets)
        return ops.probability_cross_entropy_forward(y_pred, targets)

    def backward(self, cache):
        if self.from_logits:
            return self.fused_backward(cache)
        return ops.probability_cross_entropy_backward(1.0, cache)

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class ids of shape (N,) or (N, 1)."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        if not isinstance(from_logits, bool):
            raise ValueError(f"SparseCategoricalCrossentropy: from_logits must be True or False, "
                             f"got {from_logits!r}")
        self.from_logits = from_logits

    @property
    def fusable(self):
        return not self.from_logits

    def prepare_targets(self, y, output_shape, dtype, who="loss"):
        _check_output_2d(who, output_shape, type(self).__name__)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if y.ndim != 1:
            raise ValueError(f"{who}: SparseCategoricalCrossentropy needs class ids of shape (N,) "
                             f"or (N, 1), got {tuple(y.shape)} (one-hot rows: use "
                             f"CategoricalCrossentropy)")
        if y.dtype.kind == "f":
            if y.size and bool((y != y.round()).any()):
                raise ValueError(f"{who}: SparseCategoricalCrossentropy needs integer class ids, "
                                 f"got non-integer values")
        elif y.dtype.kind not in "iu":
            raise ValueError(f"{who}: class ids must be integers, got dtype {y.dtype}")
        # The range is checked here, where y lives (on the host, in training), so that the
        # ops need not read the ids back from a GPU every batch (check_ids=False below).
        classes = output_shape[1]
        if classes is not None and y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"{who}: class ids must be in [0, {classes}), got values in "
                             f"[{int(y.min())}, {int(y.max())}]")
        return y.astype(numpy.int64, copy=False)

    def fused_forward(self, logits, targets):
        return ops.softmax_cross_entropy_forward(logits, targets, check_ids=False)

    def forward(self, y_pred, targets):
        if self.from_logits:
            return self.fused_forward(y_pred, targets)
        return ops.probability_cross_entropy_forward(y_pred, targets, check_ids=False)

    def backward(self, cache):
        if self.from_logits:
            return self.fused_backward(cache)
        return ops.probability_cross_entropy_backward(1.0, cache)

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """Mean of (p - t)^2 over every element."""

    name = "mean_squared_error"

    def prepare_targets(self, y, output_shape, dtype, who="loss"):
        expected, got = tuple(output_shape[1:]), tuple(y.shape[1:])
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise ValueError(f"{who}: MeanSquaredError needs targets of shape (N, "
                             f"{', '.join(map(str, expected))}), got {tuple(y.shape)}")
        return y.astype(dtype, copy=False)

    def forward(self, y_pred, targets):
        return ops.mean_squared_error_forward(y_pred, targets)

    def backward(self, cache):
        return ops.mean_squared_error_backward(1.0, cache)


class BinaryCrossentropy(Loss):
    """Mean binary cross-entropy over every element, from logits (fused with a sigmoid output
    when ``from_logits=False``); ``pos_weight`` weighs the positive term (PyTorch's)."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, pos_weight=None):
        if not isinstance(from_logits, bool):
            raise ValueError(f"BinaryCrossentropy: from_logits must be True or False, got {from_logits!r}")
        if pos_weight is not None:
            weights = numpy.asarray(pos_weight, dtype=numpy.float64)
            if weights.ndim > 1 or not numpy.all(weights > 0) or not numpy.all(numpy.isfinite(weights)):
                raise ValueError(f"BinaryCrossentropy: pos_weight must be a positive number or a list of "
                                 f"them (one per channel), got {pos_weight!r}")
            pos_weight = float(weights) if weights.ndim == 0 else [float(w) for w in weights]
        self.from_logits = from_logits
        self.pos_weight = pos_weight

    @property
    def fusable(self):
        return not self.from_logits

    @property
    def needs_fusion(self):
        return not self.from_logits

    def prepare_targets(self, y, output_shape, dtype, who="loss"):
        expected, got = tuple(output_shape[1:]), tuple(y.shape[1:])
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise ValueError(f"{who}: BinaryCrossentropy needs targets of shape (N, "
                             f"{', '.join(map(str, expected))}), got {tuple(y.shape)}")
        if y.dtype.kind not in "fiub":
            raise ValueError(f"{who}: BinaryCrossentropy needs numeric targets in [0, 1], got dtype {y.dtype}")
        if y.size and (bool((y < 0).any()) or bool((y > 1).any())):
            raise ValueError(f"{who}: BinaryCrossentropy needs targets in [0, 1], got values in "
                             f"[{float(y.min())}, {float(y.max())}]")
        return y.astype(dtype, copy=False)

    def fused_forward(self, logits, targets):
        return ops.sigmoid_binary_cross_entropy_forward(logits, targets, self.pos_weight)

    def fused_backward(self, cache):
        return ops.sigmoid_binary_cross_entropy_backward(1.0, cache)

    def forward(self, y_pred, targets):
        if not self.from_logits:
            raise ValueError("BinaryCrossentropy: from_logits=False is computed from the logits of a "
                             "sigmoid output layer (fused); on other outputs use from_logits=True")
        return self.fused_forward(y_pred, targets)

    def backward(self, cache):
        return self.fused_backward(cache)

    def get_config(self):
        return {"from_logits": self.from_logits, "pos_weight": self.pos_weight}


# --- Keras' functional forms: per-example losses --------------------------------------------

def _predictions(y_pred):
    """y_pred as an array of a floating dtype (float64 when it came as integers), and its module."""
    xp = array_module(y_pred)
    y_pred = xp.asarray(y_pred)
    return (y_pred if y_pred.dtype.kind == "f" else y_pred.astype(numpy.float64)), xp


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-example cross-entropy (N,) of rows y_pred against rows y_true."""
    y_pred, xp = _predictions(y_pred)
    y_true = xp.asarray(y_true).astype(y_pred.dtype, copy=False)
    if from_logits:
        return ops.softmax_cross_entropy(y_pred, y_true)
    return ops.probability_cross_entropy(y_pred, y_true)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-example cross-entropy (N,) of rows y_pred against class ids y_true."""
    y_pred, xp = _predictions(y_pred)
    ids = xp.asarray(y_true).reshape(-1).astype(numpy.int64)
    if from_logits:
        return ops.softmax_cross_entropy(y_pred, ids)
    return ops.probability_cross_entropy(y_pred, ids)


def mean_squared_error(y_true, y_pred):
    """Per-example mean squared error (N,)."""
    y_pred, xp = _predictions(y_pred)
    return ops.mean_squared_error(y_pred, xp.asarray(y_true).astype(y_pred.dtype, copy=False))


def binary_crossentropy(y_true, y_pred, from_logits=False, pos_weight=None):
    """Per-example binary cross-entropy (N,), the mean over every axis but the first; from
    probabilities (``from_logits=False``) through their logits log(p) - log(1 - p), with p
    clipped to [1e-7, 1 - 1e-7] as Keras clips."""
    y_pred, xp = _predictions(y_pred)
    if not from_logits:
        p = xp.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
        y_pred = xp.log(p) - xp.log1p(-p)
    return ops.sigmoid_binary_cross_entropy(y_pred, xp.asarray(y_true).astype(y_pred.dtype, copy=False),
                                            pos_weight)


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
}
_BY_CLASS = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                           MeanSquaredError, BinaryCrossentropy)}


def get(identifier) -> Loss:
    """A loss from a name ("categorical_crossentropy"), a config dict, or a Loss itself."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_CLASS.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"loss must be a name, a config dict or a Loss, got {identifier!r}")


def serialize(loss: Loss) -> dict:
    if type(loss).__name__ not in _BY_CLASS:
        raise ValueError(f"cannot save the loss {loss!r}: only minires' own losses are saved")
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
