"""Gradient checks by central differences, in float64.

For an op y = f(x1, x2, ...) and a random upstream gradient dy, the scalar

    L(x1, x2, ...) = sum(f(x1, x2, ...) * dy)

has dL/dxk = the op's backward pass applied to dy. Central differences approximate it:

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        (error O(eps^2))

element by element for small inputs, and along a few random unit directions v for larger ones
(Chainer's check_backward):

    <dL/dx, v> ~ (L(x + eps v) - L(x - eps v)) / (2 eps)
"""

from __future__ import annotations

import numpy as np

from minires import to_numpy

ELEMENTWISE_LIMIT = 150   # inputs up to this many elements are checked element by element
DIRECTIONS = 3


def relative_error(actual, expected, floor: float = 0.0) -> float:
    """max |actual - expected| / max(|actual|, |expected|, floor); 0 when all are zero.

    ``floor`` is for quantities that cancel: a cross-entropy near 0 is computed from logits
    of order 1 or more, and its rounding error is relative to those, not to the loss.
    """
    actual = np.asarray(to_numpy(actual), dtype=np.float64)
    expected = np.asarray(to_numpy(expected), dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected), initial=0.0), np.max(np.abs(actual), initial=0.0), floor)
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(actual - expected), initial=0.0) / scale)


def assert_close(actual, expected, tol: float, what: str = "", floor: float = 0.0) -> None:
    err = relative_error(actual, expected, floor)
    assert err <= tol, (
        f"{what}: relative error {err:.3e} > {tol:.0e}\nactual:\n{to_numpy(actual)}\n"
        f"expected:\n{to_numpy(expected)}"
    )


def check_gradients(forward, inputs, grads, dy, rng, eps: float = 1e-5, tol: float = 1e-6) -> None:
    """Compare analytic ``grads`` of sum(forward(*inputs) * dy) with central differences.

    Besides the relative tolerance, a difference may be as large as the rounding noise of the
    difference quotient itself, about machine-epsilon * sum|forward * dy| / eps: a gradient
    that is a sum of cancelling terms can be far smaller than the loss it is taken of.
    """
    inputs = [np.array(to_numpy(x), dtype=np.float64) for x in inputs]
    grads = [None if g is None else to_numpy(g) for g in grads]
    dy = to_numpy(dy)

    def loss(values):
        return float(np.sum(np.asarray(to_numpy(forward(*values)), dtype=np.float64) * dy))

    magnitude = float(np.sum(np.abs(np.asarray(to_numpy(forward(*inputs)), dtype=np.float64) * dy)))
    noise = 8 * np.finfo(np.float64).eps * magnitude / eps

    for k, (x, g) in enumerate(zip(inputs, grads)):
        if g is None:
            continue
        assert g.shape == x.shape, f"input {k}: gradient shape {g.shape} != input shape {x.shape}"

        def shifted(delta):
            values = list(inputs)
            values[k] = x + delta
            return loss(values)

        if x.size <= ELEMENTWISE_LIMIT:
            numeric = np.zeros_like(x)
            for idx in np.ndindex(x.shape):
                e = np.zeros_like(x)
                e[idx] = eps
                numeric[idx] = (shifted(e) - shifted(-e)) / (2 * eps)
            scale = max(np.max(np.abs(numeric)), np.max(np.abs(g)))
            worst = float(np.max(np.abs(g - numeric)))
            assert worst <= tol * scale + noise, (
                f"input {k}, element-wise central differences: max error {worst:.3e} "
                f"(scale {scale:.3e}, noise {noise:.1e})\nanalytic:\n{g}\nnumeric:\n{numeric}"
            )
        else:
            for _ in range(DIRECTIONS):
                v = rng.standard_normal(x.shape)
                v /= np.linalg.norm(v)
                numeric = (shifted(eps * v) - shifted(-eps * v)) / (2 * eps)
                analytic = float(np.sum(g * v))
                scale = max(abs(numeric), abs(analytic), np.linalg.norm(g))
                assert abs(numeric - analytic) <= tol * scale + noise, (
                    f"input {k}, directional derivative: analytic {analytic!r} vs numeric {numeric!r}"
                )
