"""Optimizers: Keras' update rules, checked against torch.optim on identical gradients, and
state export/import for bit-exact resume."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import optim

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _problem(seed, steps=6):
    """Parameters and a fixed sequence of gradients (float64), of mixed scales."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * 10.0 ** rng.integers(-4, 2) for s in SHAPES] for _ in range(steps)]
    return params, grads


def _run_minires(opt, params, grads):
    params = [p.copy() for p in params]
    for step in grads:
        opt.apply(params, [g.copy() for g in step])
    return params


def _run_torch(torch_opt_factory, params, grads):
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch_opt_factory(tensors)
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g.copy())
        opt.step()
    return [t.detach().numpy() for t in tensors]


def _assert_close(actual, expected, tol=1e-12):
    for a, e in zip(actual, expected):
        err = np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-300)
        assert err <= tol, f"relative error {err:.2e}"


def _keras_adam_reference(params, grads, lr, b1, b2, eps):
    """Keras 3's Adam written out line by line, for comparison with the in-place version."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, step in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for i, g in enumerate(step):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            params[i] = params[i] - alpha * m[i] / (np.sqrt(v[i]) + eps)
    return params


@pytest.mark.torch
@given(seed=st.integers(0, 2**32 - 1), lr=st.sampled_from([1e-3, 0.01, 0.3]),
       betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]))
def test_adam_keras_form_matches_torch_with_zero_epsilon(seed, lr, betas):
    """With eps = 0 the two placements of epsilon coincide, so Keras' Adam and torch's must
    agree exactly: this checks moments, bias corrections and the step itself."""
    torch = pytest.importorskip("torch")
    params, grads = _problem(seed)
    ours = _run_minires(optim.Adam(lr, betas[0], betas[1], epsilon=0.0), params, grads)
    theirs = _run_torch(lambda ps: torch.optim.Adam(ps, lr=lr, betas=betas, eps=0.0), params, grads)
    _assert_close(ours, theirs)


@pytest.mark.torch
@given(seed=st.integers(0, 2**32 - 1), eps=st.sampled_from([1e-8, 1e-7, 1e-3, 0.1]))
def test_adam_torch_placement_matches_torch(seed, eps):
    """epsilon_placement="torch" is torch.optim.Adam, epsilon included (tiny gradients make
    eps matter)."""
    torch = pytest.importorskip("torch")
    params, grads = _problem(seed)
    opt = optim.Adam(0.01, epsilon=eps, epsilon_placement="torch")
    ours = _run_minires(opt, params, grads)
    theirs = _run_torch(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=eps),
                        params, grads)
    _assert_close(ours, theirs)


@given(seed=st.integers(0, 2**32 - 1), eps=st.sampled_from([1e-7, 1e-3]))
def test_adam_keras_placement_matches_the_written_out_rule(seed, eps):
    params, grads = _problem(seed)
    ours = _run_minires(optim.Adam(0.01, epsilon=eps), params, grads)
    _assert_close(ours, _keras_adam_reference(params, grads, 0.01, 0.9, 0.999, eps))


@pytest.mark.torch
def test_adam_placements_differ_where_epsilon_matters():
    """Keras' eps equals torch's eps * sqrt(1 - b2^t): at step 1 with tiny gradients the two
    steps differ, and they agree once torch is given that rescaled eps."""
    torch = pytest.importorskip("torch")
    params = [np.ones(4)]
    grads = [[np.full(4, 1e-7)]]
    keras = _run_minires(optim.Adam(0.1, epsilon=1e-7), params, grads)
    torch_default = _run_torch(lambda ps: torch.optim.Adam(ps, lr=0.1, eps=1e-7), params, grads)
    assert np.max(np.abs(keras[0] - torch_default[0])) > 1e-3
    rescaled = 1e-7 / math.sqrt(1 - 0.999)
    torch_rescaled = _run_torch(lambda ps: torch.optim.Adam(ps, lr=0.1, eps=rescaled), params, grads)
    _assert_close(keras, torch_rescaled)


@pytest.mark.torch
@given(seed=st.integers(0, 2**32 - 1), lr=st.sampled_from([0.01, 0.5]),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans())
def test_sgd_matches_torch(seed, lr, momentum, nesterov):
    """Keras' velocity form and torch's buffer form are one method (velocity = -lr * buf)."""
    torch = pytest.importorskip("torch")
    if nesterov and momentum == 0.0:
        momentum = 0.9
    params, grads = _problem(seed)
    ours = _run_minires(optim.SGD(lr, momentum=momentum, nesterov=nesterov), params, grads)
    theirs = _run_torch(lambda ps: torch.optim.SGD(ps, lr=lr, momentum=momentum, nesterov=nesterov),
                        params, grads)
    _assert_close(ours, theirs)


def test_sgd_keras_rule_written_out():
    params, grads = _problem(0, steps=3)
    p, v = params[0].copy(), np.zeros_like(params[0])
    for step in grads:
        g = step[0]
        v = 0.8 * v - 0.1 * g
        p = p + 0.8 * v - 0.1 * g
    ours = _run_minires(optim.SGD(0.1, momentum=0.8, nesterov=True), params, grads)
    np.testing.assert_allclose(ours[0], p, rtol=1e-14)


@pytest.mark.parametrize("make", [lambda: optim.Adam(0.01), lambda: optim.SGD(0.1, momentum=0.9),
                                  lambda: optim.SGD(0.1)])
def test_state_round_trip_resumes_bit_exactly(make):
    params, grads = _problem(3, steps=6)
    straight = _run_minires(make(), params, grads)

    first = make()
    halfway = _run_minires(first, params, grads[:3])
    state = first.get_state()
    assert state["iterations"] == 3
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if k != "iterations")
    second = make()
    second.set_state(state)          # before the first step: kept until build
    resumed = _run_minires(second, halfway, grads[3:])
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a, b)


def test_state_shapes_are_checked():
    opt = optim.Adam()
    opt.apply([np.zeros(3)], [np.ones(3)])
    state = opt.get_state()
    state["m/0"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"slot m/0 must have shape \(3,\), got \(4,\)"):
        opt.set_state(state)
    with pytest.raises(ValueError, match="expected slots"):
        opt.set_state({"iterations": 1, "m/0": np.zeros(3)})
    with pytest.raises(ValueError, match="iterations"):
        opt.set_state({"iterations": -1})


def test_float32_parameters_stay_float32_and_are_updated_in_place():
    p = np.ones((2, 2), np.float32)
    ref = p
    for opt in (optim.Adam(), optim.SGD(momentum=0.9, nesterov=True)):
        opt.apply([p], [np.full((2, 2), 0.5, np.float64)])
        assert p.dtype == np.float32 and p is ref
    assert np.all(p < 1)


@pytest.mark.parametrize("factory, message", [
    (lambda: optim.Adam(learning_rate=-1), "learning_rate must be a finite number >= 0"),
    (lambda: optim.Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
    (lambda: optim.Adam(epsilon_placement="paper"), "epsilon_placement"),
    (lambda: optim.SGD(momentum=1.5), r"momentum must be in \[0, 1\]"),
    (lambda: optim.SGD(nesterov="yes"), "nesterov"),
    (lambda: optim.get("rmsprop"), "unknown optimizer"),
])
def test_argument_errors(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_mismatched_gradients_are_refused():
    opt = optim.SGD()
    with pytest.raises(ValueError, match="2 parameters but 1 gradients"):
        opt.apply([np.zeros(2), np.zeros(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match="gradient"):
        opt.apply([np.zeros(2)], [np.zeros(3)])


def test_config_round_trip():
    opt = optim.Adam(0.005, beta_1=0.8, epsilon=1e-6, epsilon_placement="torch")
    again = optim.get(optim.serialize(opt))
    assert again.get_config() == opt.get_config()
    assert isinstance(optim.get("sgd"), optim.SGD)


def test_adam_on_the_numba_backend_uses_the_fused_kernel_and_agrees(monkeypatch):
    """The numba backend's fused Adam pass, one call for all the parameters, computes the same
    step as the array code."""
    pytest.importorskip("numba")
    import minires
    from minires.kernels import numba as numba_kernels
    from minires.optim import Adam as MiniresAdam

    calls = []
    fused = numba_kernels.adam_update_many
    monkeypatch.setattr(numba_kernels, "adam_update_many", lambda *a: calls.append(1) or fused(*a))

    rng = np.random.default_rng(5)
    start = [rng.standard_normal((7, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in start] for _ in range(4)]
    results = {}
    for name in ("numpy", "numba"):
        with minires.use_backend(name):
            params = [p.copy() for p in start]
            opt = MiniresAdam(learning_rate=0.01)
            for step_grads in grads:
                opt.apply(params, step_grads)
            results[name] = params
    assert len(calls) == len(grads)
    for a, b in zip(results["numpy"], results["numba"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

