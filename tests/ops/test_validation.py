"""Bad input fails at the op's door with a message naming the op, the argument and what was due."""

import numpy as np
import pytest

from minires import ops

X = np.zeros((2, 6, 5, 3))
W = np.zeros((3, 3, 3, 4))


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: ops.conv2d_forward(np.zeros((6, 5, 3)), W), ValueError, ["conv2d", "x", "4 dims", "(6, 5, 3)"]),
        (lambda: ops.conv2d_forward(X, np.zeros((3, 3, 3))), ValueError, ["conv2d", "w", "4 dims"]),
        (lambda: ops.conv2d_forward(X, np.zeros((3, 3, 2, 4))), ValueError, ["conv2d", "channels", "C_in=2"]),
        (lambda: ops.conv2d_forward(X, W, np.zeros(3)), ValueError, ["conv2d", "b", "(4,)"]),
        (lambda: ops.conv2d_forward(np.zeros((2, 6, 5, 0)), np.zeros((3, 3, 0, 4))), ValueError,
         ["conv2d", "w", "C_in", "(3, 3, 0, 4)"]),
        (lambda: ops.conv2d_forward(X, np.zeros((3, 3, 3, 0))), ValueError, ["conv2d", "w", "C_out", "(3, 3, 3, 0)"]),
        (lambda: ops.conv2d_forward(X, np.zeros((3, 3, 3, 0)), algorithm="winograd"), ValueError,
         ["conv2d", "w", "C_out"]),
        (lambda: ops.conv2d_forward(np.zeros((2, 6, 5, 0), np.float32), np.zeros((3, 3, 0, 64), np.float32),
                                    algorithm="winograd4x4"), ValueError, ["conv2d", "w", "C_in"]),
        (lambda: ops.conv2d_forward(X, W, stride=0), ValueError, ["conv2d", "stride", ">= 1"]),
        (lambda: ops.conv2d_forward(X, W, stride=(1, -2)), ValueError, ["conv2d", "stride"]),
        (lambda: ops.conv2d_forward(X, W, stride=1.5), TypeError, ["conv2d", "stride", "int"]),
        (lambda: ops.conv2d_forward(X, W, stride=True), TypeError, ["conv2d", "stride"]),
        (lambda: ops.conv2d_forward(X, W, padding="full"), ValueError, ["conv2d", "padding", "'same'"]),
        (lambda: ops.conv2d_forward(X, W, padding=-1), ValueError, ["conv2d", "padding", ">= 0"]),
        (lambda: ops.conv2d_forward(X, W, padding=(1, 2, 3)), TypeError, ["conv2d", "padding"]),
        (lambda: ops.conv2d_forward(X, np.zeros((7, 1, 3, 4)), padding="valid"), ValueError,
         ["conv2d", "window", "larger than the padded input"]),
        (lambda: ops.conv2d_forward(X.astype(np.int64), W), TypeError, ["conv2d", "x", "floating", "int64"]),
        (lambda: ops.conv2d_forward(X, W.astype(np.int32)), TypeError, ["conv2d", "w", "floating"]),
        (lambda: ops.conv2d_forward(X.astype(np.float32), W), TypeError, ["conv2d", "dtype", "float32", "float64"]),
        (lambda: ops.maxpool2d_forward(np.zeros((2, 3, 3))), ValueError, ["maxpool2d", "x", "4 dims"]),
        (lambda: ops.maxpool2d_forward(X, pool_size=7), ValueError, ["maxpool2d", "window", "larger"]),
        (lambda: ops.maxpool2d_forward(X, pool_size=0), ValueError, ["maxpool2d", "pool_size", ">= 1"]),
        (lambda: ops.maxpool2d_forward(X, strides=(0, 1)), ValueError, ["maxpool2d", "strides", ">= 1"]),
        (lambda: ops.maxpool2d_forward(X, padding=1), ValueError, ["maxpool2d", "padding"]),
        (lambda: ops.maxpool2d_forward(X.astype(np.uint8)), TypeError, ["maxpool2d", "x", "floating"]),
        (lambda: ops.relu_forward(np.arange(3)), TypeError, ["relu", "x", "floating"]),
        (lambda: ops.add_forward(np.zeros((2, 3)), np.zeros((3, 2))), ValueError, ["add", "same shape", "(2, 3)", "(3, 2)"]),
        (lambda: ops.add_forward(np.zeros((2, 3)), np.zeros((1, 3))), ValueError, ["add", "same shape"]),
        (lambda: ops.add_forward(np.zeros(3), np.zeros(3, dtype=np.float32)), TypeError, ["add", "dtype"]),
        (lambda: ops.add_forward(np.zeros(3), np.zeros(3, dtype=int)), TypeError, ["add", "b", "floating"]),
        (lambda: ops.flatten_forward(np.zeros(3)), ValueError, ["flatten", "x", "at least 2 dims"]),
        (lambda: ops.dense_forward(np.zeros((2, 3)), np.zeros((4, 5))), ValueError, ["dense", "features", "D_in=4"]),
        (lambda: ops.dense_forward(np.zeros((2, 3, 1)), np.zeros((3, 5))), ValueError, ["dense", "x", "2 dims"]),
        (lambda: ops.dense_forward(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(4)), ValueError, ["dense", "b", "(5,)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.array([0, 4, 1])), ValueError,
         ["softmax_cross_entropy", "labels", "[0, 4)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.array([0, -1, 1])), ValueError,
         ["softmax_cross_entropy", "labels", "[0, 4)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.array([0, 1])), ValueError,
         ["softmax_cross_entropy", "labels", "(3,)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.zeros((3, 5))), ValueError,
         ["softmax_cross_entropy", "labels", "(3, 4)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.zeros(3)), ValueError,
         ["softmax_cross_entropy", "labels", "(3, 4)"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4)), np.zeros(3, dtype=bool)), TypeError,
         ["softmax_cross_entropy", "labels", "bool"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros((3, 4), dtype=int), np.array([0, 1, 2])), TypeError,
         ["softmax_cross_entropy", "logits", "floating"]),
        (lambda: ops.softmax_cross_entropy_forward(np.zeros(4), np.array([0])), ValueError,
         ["softmax_cross_entropy", "logits", "2 dims"]),
        (lambda: ops.softmax(np.zeros((2, 3)), axis=2), ValueError, ["softmax", "axis"]),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, error, words):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_backward_refuses_a_gradient_of_the_wrong_shape_or_dtype():
    y, cache = ops.conv2d_forward(X, W, stride=2)
    with pytest.raises(ValueError, match=r"conv2d_backward: dy must have shape \(2, 3, 3, 4\)"):
        ops.conv2d_backward(np.zeros((2, 6, 5, 4)), cache)
    with pytest.raises(TypeError, match="conv2d_backward: dy must have dtype float64"):
        ops.conv2d_backward(np.zeros(y.shape, dtype=np.float32), cache)
    _, cache = ops.maxpool2d_forward(X)
    with pytest.raises(ValueError, match="maxpool2d_backward: dy"):
        ops.maxpool2d_backward(np.zeros((2, 3, 3, 3)), cache)
    _, cache = ops.dense_forward(np.zeros((2, 3)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="dense_backward: dy"):
        ops.dense_backward(np.zeros((2, 4)), cache)
    _, cache = ops.softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match="softmax_cross_entropy_backward: dloss must be a scalar"):
        ops.softmax_cross_entropy_backward(np.ones(2), cache)
