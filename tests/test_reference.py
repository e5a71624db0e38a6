"""The references themselves, checked against central differences: an oracle must be checked too.

The vectorized ops are compared with these functions; if a reference were wrong in the same
way as an op, only an independent check like this one would notice.
"""

import numpy as np
from hypothesis import given

from minires import reference
from tests.gradcheck import check_gradients
from tests.strategies import away_from_zero, conv_cases, distinct, normal, pool_cases, seeds, shapes


@given(case=conv_cases(max_hw=4, max_channels=2, max_batch=2, max_kernel=3), seed=seeds)
def test_reference_conv2d_gradients(case, seed):
    rng = np.random.default_rng(seed)
    x, w = normal(rng, case["x_shape"]), normal(rng, case["w_shape"])
    b = normal(rng, case["w_shape"][3:]) if case["bias"] else None
    opts = dict(stride=case["stride"], padding=case["padding"])
    y = reference.conv2d_forward(x, w, b, **opts)
    dy = normal(rng, y.shape)
    inputs = [x, w] if b is None else [x, w, b]
    grads = reference.conv2d_backward(dy, x, w, b, **opts)[: len(inputs)]
    check_gradients(lambda *v: reference.conv2d_forward(*v, **opts), inputs, grads, dy, rng)


@given(case=pool_cases(max_hw=5), seed=seeds)
def test_reference_maxpool2d_gradient(case, seed):
    rng = np.random.default_rng(seed)
    opts = dict(pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"])
    x = distinct(rng, case["x_shape"])
    y = reference.maxpool2d_forward(x, **opts)
    dy = normal(rng, y.shape)
    check_gradients(lambda v: reference.maxpool2d_forward(v, **opts), [x],
                    [reference.maxpool2d_backward(dy, x, **opts)], dy, rng)


@given(shape=shapes(min_dims=2, max_side=4), seed=seeds)
def test_reference_elementwise_and_shape_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    x, a, b = away_from_zero(rng, shape), normal(rng, shape), normal(rng, shape)
    dy = normal(rng, shape)
    check_gradients(reference.relu_forward, [x], [reference.relu_backward(dy, x)], dy, rng)
    check_gradients(reference.add_forward, [a, b], reference.add_backward(dy, a, b), dy, rng)
    dflat = normal(rng, reference.flatten_forward(a).shape)
    check_gradients(reference.flatten_forward, [a], [reference.flatten_backward(dflat, a)], dflat, rng)


@given(seed=seeds)
def test_reference_dense_and_loss_gradients(seed):
    rng = np.random.default_rng(seed)
    n, d_in, d_out = rng.integers(1, 5, size=3)
    x, w, b = normal(rng, (n, d_in)), normal(rng, (d_in, d_out)), normal(rng, (d_out,))
    dy = normal(rng, (n, d_out))
    check_gradients(reference.dense_forward, [x, w, b], reference.dense_backward(dy, x, w, b), dy, rng)
    labels = rng.integers(0, d_out, size=n)
    dloss = rng.standard_normal()
    check_gradients(lambda z: reference.softmax_cross_entropy_forward(z, labels), [dy],
                    [reference.softmax_cross_entropy_backward(dloss, dy, labels)], dloss, rng)
