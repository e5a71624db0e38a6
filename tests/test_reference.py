"""The references themselves, checked against central differences: an oracle must be checked too.

The vectorized ops are compared with these functions; if a reference were wrong in the same
way as an op, only an independent check like this one would notice.
"""

import ast
from pathlib import Path

import numpy as np
import pytest
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
    for axis in (0, -1):
        check_gradients(lambda v: reference.softmax_forward(v, axis), [a],
                        [reference.softmax_backward(dy, a, axis)], dy, rng)


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
    probs = rng.random((n, d_out)) + 0.05          # unnormalised rows, inside the clip
    check_gradients(lambda p: reference.probability_cross_entropy_forward(p, labels), [probs],
                    [reference.probability_cross_entropy_backward(dloss, probs, labels)], dloss, rng)
    y, t = normal(rng, (n, d_out)), normal(rng, (n, d_out))
    check_gradients(lambda v: reference.mean_squared_error_forward(v, t), [y],
                    [reference.mean_squared_error_backward(dloss, y, t)], dloss, rng)


def _imports(path):
    """Every module a Python file imports, relative ones with their leading dots."""
    imported = []
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert imported, f"no imports found in {path}: the check is reading the wrong file"
    return imported


def test_reference_imports_nothing_from_minires():
    """An oracle that imports what it judges shares its mistakes: the reference's padding and
    window arithmetic are its own, and it imports NumPy and the standard library only."""
    imported = _imports(reference.__file__)
    assert not [name for name in imported if name.startswith(".") or name.split(".")[0] == "minires"], imported


def test_strategies_do_not_plan_windows_with_the_ops():
    """The drawn cases must not depend on the window planning they test."""
    imported = _imports(Path(__file__).parent / "strategies.py")
    assert not [name for name in imported if name.startswith("minires.ops")], imported


def test_reference_same_padding_is_the_least_that_keeps_ceil_n_over_s_outputs():
    """TensorFlow's rule by its properties: ceil(n / s) outputs, the least total padding that
    lets the last window fit, and the odd pixel after (bottom/right)."""
    for n in range(1, 10):
        for k in range(1, 6):
            for s in range(1, 4):
                before, after = reference.same_padding(n, k, s)
                n_out = -(-n // s)
                assert after - before in (0, 1), (n, k, s)
                assert reference.output_size("op", n, k, s, before, after) == n_out, (n, k, s)
                last_window_end = (n_out - 1) * s + k
                assert last_window_end <= n + before + after, (n, k, s)
                assert before + after == 0 or last_window_end == n + before + after, (n, k, s)


def test_reference_padding_forms_and_output_sizes():
    rp = reference.resolve_padding
    assert rp("op", "valid", (5, 6), (3, 3), (1, 1)) == ((0, 0), (0, 0))
    assert rp("op", "SAME", (6, 5), (3, 2), (2, 1)) == ((0, 1), (0, 1))
    assert rp("op", 2, (5, 5), (3, 3), (1, 1)) == ((2, 2), (2, 2))
    assert rp("op", (1, 0), (5, 5), (3, 3), (1, 1)) == ((1, 1), (0, 0))
    assert rp("op", ((0, 2), (1, 0)), (5, 5), (3, 3), (1, 1)) == ((0, 2), (1, 0))
    with pytest.raises(ValueError, match="maxpool2d: padding must be 'same' or 'valid'"):
        rp("maxpool2d", 1, (5, 5), (2, 2), (2, 2), explicit=False)
    with pytest.raises(ValueError, match="conv2d: padding must be ints >= 0"):
        rp("conv2d", (-1, 0), (5, 5), (3, 3), (1, 1))
    # 'same' keeps ceil(n / s) positions; 'valid' floor((n - k) / s) + 1.
    for n in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                assert reference.output_size("op", n, k, s, *reference.same_padding(n, k, s)) == -(-n // s)
                if k <= n:
                    assert reference.output_size("op", n, k, s, 0, 0) == (n - k) // s + 1
    with pytest.raises(ValueError, match="conv2d: a window of 4 does not fit in 2 pixels padded to 3"):
        reference.output_size("conv2d", 2, 4, 1, 0, 1)
