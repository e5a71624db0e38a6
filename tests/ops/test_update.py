"""Parameter updates (Adam in Keras' and PyTorch's forms, SGD with momentum and Nesterov):
the loop reference over several steps, the many-array forms, PyTorch's optimizers, and
argument errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes

STEPS = 4
B1, B2 = 0.9, 0.999
# float64 follows the reference to rounding. float32 is further off than its precision: the
# numba kernel forms 1 - b2 in float32, 1.3e-5 away from 0.001, and v carries that factor.
TOL = {np.float64: 1e-12, np.float32: 5e-5}

betas = st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
epsilons = st.sampled_from([1e-7, 1e-3, 0.0])


def _gradients(rng, shape, dtype, steps=STEPS):
    """One gradient per step, of scales from 1e-4 to 10, so that eps matters in some steps."""
    return [(normal(rng, shape) * 10.0 ** rng.integers(-4, 2)).astype(dtype) for _ in range(steps)]


def _keras_lr_t(lr, b1, b2, t):
    return lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)


def _largest(arrays):
    return max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)


def _assert_adam_close(got, want, start, grads, dtype):
    """param, m and v against the reference, each measured against the scale its rounding error
    follows: a parameter that steps to near 0 keeps the error of its starting value, and
    Keras' m + (1 - b1) (g - m) rounds relative to the largest gradient seen, not to the newest
    m (with b1 = 0 it is m + (g - m)); v likewise with the squares."""
    g_max = _largest(grads)
    for name, a, b, floor in zip(("param", "m", "v"), got, want, (_largest([start]), g_max, g_max ** 2)):
        assert a.dtype == b.dtype == dtype, (name, a.dtype, b.dtype)
        assert_close(a, b, TOL[dtype], name, floor=floor)


def _assert_sgd_close(got, want, start, grads, lr, dtype):
    """param and velocity (or None) against the reference, on the scales of the start and of
    the steps lr * g."""
    assert_close(got[0], want[0], TOL[dtype], "param", floor=_largest([start]))
    if want[1] is not None:
        assert_close(got[1], want[1], TOL[dtype], "velocity", floor=lr * _largest(grads))


# --- against the reference ------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts, betas=betas, eps=epsilons,
       lr=st.sampled_from([1e-3, 0.1]), placement=st.sampled_from(["keras", "torch"]))
def test_adam_updates_match_reference(on_backend, shape, seed, dtype, layout, betas, eps, lr, placement):
    rng = np.random.default_rng(seed)
    b1, b2 = betas
    p0 = normal(rng, shape, dtype)
    put, get = on_backend.put, on_backend.get
    p, m, v = (put(as_layout(a.copy(), layout)) for a in (p0, np.zeros_like(p0), np.zeros_like(p0)))
    rp, rm, rv = p0, np.zeros_like(p0), np.zeros_like(p0)
    grads = _gradients(rng, shape, dtype)
    for t, g in enumerate(grads, start=1):
        if placement == "keras":
            lr_t = _keras_lr_t(lr, b1, b2, t)
            ops.adam_update(p, put(as_layout(g, layout)), m, v, lr_t, b1, b2, eps)
            rp, rm, rv = reference.adam_update(rp, g, rm, rv, lr_t, b1, b2, eps)
        else:
            ops.adam_torch_update(p, put(as_layout(g, layout)), m, v, lr, b1, b2, eps, t)
            rp, rm, rv = reference.adam_torch_update(rp, g, rm, rv, lr, b1, b2, eps, t)
    _assert_adam_close([get(p), get(m), get(v)], [rp, rm, rv], p0, grads, dtype)


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts,
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(), plain=st.booleans())
def test_sgd_update_matches_reference(on_backend, shape, seed, dtype, layout, momentum, nesterov, plain):
    """With and without a velocity (plain SGD keeps none, as Keras' does)."""
    rng = np.random.default_rng(seed)
    if plain:
        momentum = 0.0
    p0 = normal(rng, shape, dtype)
    put, get = on_backend.put, on_backend.get
    p = put(as_layout(p0.copy(), layout))
    velocity = None if plain else put(as_layout(np.zeros_like(p0), layout))
    rp, rvel = p0, None if plain else np.zeros_like(p0)
    grads = _gradients(rng, shape, dtype)
    for g in grads:
        ops.sgd_update(p, put(g), velocity, 0.05, momentum, nesterov)
        rp, rvel = reference.sgd_update(rp, g, rvel, 0.05, momentum, nesterov)
    _assert_sgd_close([get(p), None if plain else get(velocity)], [rp, rvel], p0, grads, 0.05, dtype)


@given(seed=seeds, dtype=float_dtypes, kind=st.sampled_from(["adam", "adam_torch", "sgd"]),
       fortran=st.booleans())
def test_many_forms_match_the_reference_array_by_array(on_backend, seed, dtype, kind, fortran):
    """One call for several parameters of different shapes (on numba, Keras' Adam runs one
    kernel for all of them; a Fortran-ordered parameter takes the per-array path)."""
    rng = np.random.default_rng(seed)
    shapes_ = [(3, 3, 2, 4), (4,), (6, 5), (1,)]
    start = [normal(rng, s, dtype) for s in shapes_]
    if fortran:
        start[2] = np.asfortranarray(start[2])
    put, get = on_backend.put, on_backend.get
    params = [put(p.copy(order="K")) for p in start]
    slots = [[put(np.zeros_like(p)) for p in start] for _ in range(2)]
    expected = [[p.copy() for p in start], [np.zeros_like(p) for p in start],
                [np.zeros_like(p) for p in start]]
    seen = [[] for _ in start]
    for t in range(1, STEPS + 1):
        grads = [normal(rng, s, dtype) for s in shapes_]
        for history, g in zip(seen, grads):
            history.append(g)
        if kind == "adam":
            lr_t = _keras_lr_t(0.01, B1, B2, t)
            ops.adam_update_many(params, [put(g) for g in grads], *slots, lr_t, B1, B2, 1e-7)
            step = [reference.adam_update(*a, lr_t, B1, B2, 1e-7) for a in zip(expected[0], grads, *expected[1:])]
        elif kind == "adam_torch":
            ops.adam_torch_update_many(params, [put(g) for g in grads], *slots, 0.01, B1, B2, 1e-7, t)
            step = [reference.adam_torch_update(*a, 0.01, B1, B2, 1e-7, t)
                    for a in zip(expected[0], grads, *expected[1:])]
        else:
            ops.sgd_update_many(params, [put(g) for g in grads], slots[0], 0.05, 0.9, True)
            step = [(*reference.sgd_update(p, g, vel, 0.05, 0.9, True), m)
                    for p, g, vel, m in zip(expected[0], grads, *expected[1:])]
        expected = [list(column) for column in zip(*step)]
    for i, history in enumerate(seen):
        if kind == "sgd":
            _assert_sgd_close([get(params[i]), get(slots[0][i])], [expected[0][i], expected[1][i]],
                              start[i], history, 0.05, dtype)
        else:
            _assert_adam_close([get(params[i]), get(slots[0][i]), get(slots[1][i])],
                               [column[i] for column in expected], start[i], history, dtype)


def test_adam_update_many_equals_one_update_per_array():
    """The many-array op (and its numba kernel) against adam_update array by array, with a
    non-contiguous parameter that must take the per-array path, and its argument checks."""
    pytest.importorskip("numba")
    import minires

    rng = np.random.default_rng(8)
    shapes = [(3, 3, 2, 4), (4,), (6, 5), (1,)]
    for backend in ("numpy", "numba"):
        for strided in (False, True):
            params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
            if strided:
                params[2] = np.asfortranarray(params[2])
            grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
            ms = [np.abs(rng.standard_normal(s)).astype(np.float32) for s in shapes]
            vs = [np.abs(rng.standard_normal(s)).astype(np.float32) for s in shapes]
            expected = [[a.copy() for a in arrays] for arrays in (params, ms, vs)]
            with minires.use_backend("numpy"):
                for p, g, m, v in zip(*expected[:1], grads, *expected[1:]):
                    ops.adam_update(p, g, m, v, 1e-2, 0.9, 0.999, 1e-7)
            with minires.use_backend(backend):
                ops.adam_update_many(params, grads, ms, vs, 1e-2, 0.9, 0.999, 1e-7)
            for got, want in zip(params + ms + vs, sum(expected, [])):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="adam_update: params, grads, ms and vs must be equally long"):
        ops.adam_update_many([np.zeros(2)], [], [np.zeros(2)], [np.zeros(2)], 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(ValueError, match="adam_update: m must have shape"):
        ops.adam_update_many([np.zeros(2)], [np.zeros(2)], [np.zeros(3)], [np.zeros(2)], 1e-3, 0.9, 0.999, 1e-7)


# --- against PyTorch ------------------------------------------------------------------------

def _problem(rng, dtype):
    shapes_ = [(3, 4), (5,), (2, 1, 3)]
    return [normal(rng, s, dtype) for s in shapes_], [_gradients(rng, s, dtype) for s in shapes_]


def _run(update, params, grads_per_param):
    """Apply ``update(params, grads, t)`` for t = 1..STEPS to copies of ``params``."""
    params = [p.copy() for p in params]
    for t in range(1, STEPS + 1):
        update(params, [g[t - 1] for g in grads_per_param], t)
    return params


@pytest.mark.torch
@given(seed=seeds, dtype=float_dtypes, betas=betas, eps=st.sampled_from([1e-8, 1e-3, 0.1]))
def test_adam_torch_update_is_torch_optim_adam(seed, dtype, betas, eps):
    """PyTorch's placement of eps is torch.optim.Adam, eps included (tiny gradients make it
    matter)."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    start, grads = _problem(rng, dtype)
    ms, vs = [np.zeros_like(p) for p in start], [np.zeros_like(p) for p in start]
    ours = _run(lambda ps, gs, t: ops.adam_torch_update_many(ps, gs, ms, vs, 0.01, *betas, eps, t),
                start, grads)
    theirs = torch_adapter.adam(start, list(zip(*grads)), 0.01, betas, eps)
    for a, b, p in zip(ours, theirs, start):
        assert_close(a, b, 1e-12 if dtype == np.float64 else 1e-5, "param", floor=_largest([p]))


@pytest.mark.torch
@given(seed=seeds, betas=betas, eps=st.sampled_from([1e-7, 1e-3, 0.1]))
def test_adam_keras_placement_is_torch_with_a_step_dependent_eps(seed, betas, eps):
    """The convention, measured: Keras' Adam with eps equals torch.optim.Adam given
    eps / sqrt(1 - b2^t) at step t, over several steps."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    b1, b2 = betas
    start, grads = _problem(rng, np.float64)
    ms, vs = [np.zeros_like(p) for p in start], [np.zeros_like(p) for p in start]
    ours = _run(lambda ps, gs, t: ops.adam_update_many(ps, gs, ms, vs, _keras_lr_t(0.01, b1, b2, t),
                                                       b1, b2, eps), start, grads)
    theirs = torch_adapter.adam(start, list(zip(*grads)), 0.01, betas,
                            lambda t: eps / math.sqrt(1 - b2 ** t))
    for a, b, p in zip(ours, theirs, start):
        assert_close(a, b, 1e-12, "param", floor=_largest([p]))


@pytest.mark.torch
@given(seed=seeds, dtype=float_dtypes, lr=st.sampled_from([0.01, 0.5]),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans())
def test_sgd_update_is_torch_optim_sgd_at_a_constant_lr(seed, dtype, lr, momentum, nesterov):
    """Keras' velocity form and PyTorch's buffer form, with velocity = -lr * buf, are one method
    while lr stays constant."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    if nesterov and momentum == 0.0:
        momentum = 0.9      # PyTorch refuses Nesterov without momentum
    rng = np.random.default_rng(seed)
    start, grads = _problem(rng, dtype)
    velocities = [np.zeros_like(p) for p in start] if momentum else None
    ours = _run(lambda ps, gs, t: ops.sgd_update_many(ps, gs, velocities, lr, momentum, nesterov),
                start, grads)
    theirs = torch_adapter.sgd(start, list(zip(*grads)), lr, momentum, nesterov)
    for a, b, p in zip(ours, theirs, start):
        assert_close(a, b, 1e-12 if dtype == np.float64 else 1e-5, "param", floor=_largest([p]))


@pytest.mark.torch
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_velocity_and_torch_buffer_differ_when_lr_changes(nesterov):
    """Two momentum steps at rates lr1, lr2: Keras' velocity keeps the first step at lr1, while
    PyTorch's buffer rescales it by lr2; the parameters differ by mu * g1 * (lr2 - lr1)."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    mu, lr1, lr2 = 0.9, 0.1, 0.02
    p0, g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -1.0]), np.array([-0.2, 0.4, 0.6])
    p, velocity = p0.copy(), np.zeros(3)
    ops.sgd_update(p, g1, velocity, lr1, mu, nesterov)
    ops.sgd_update(p, g2, velocity, lr2, mu, nesterov)
    (theirs,) = torch_adapter.sgd([p0], [[g1], [g2]], [lr1, lr2], mu, nesterov)
    extra = mu * g1 * (lr2 - lr1) * (mu if nesterov else 1.0)
    np.testing.assert_allclose(p - theirs, extra, rtol=1e-12, atol=1e-15)


# --- argument errors ------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.adam_update(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3), 1e-3, 0.9, 0.999, 1e-7),
     ValueError, "adam_update: m must have shape (3,), got (2,)"),
    (lambda: ops.adam_update([0.0], np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 0.9, 0.999, 1e-7),
     TypeError, "adam_update: param must be an array"),
    (lambda: ops.adam_update(np.zeros(1), np.zeros(1, np.float32), np.zeros(1), np.zeros(1), 1e-3, 0.9,
                             0.999, 1e-7), TypeError, "adam_update: arrays must share one dtype"),
    (lambda: ops.adam_update(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 1.0, 0.999, 1e-7),
     ValueError, "adam_update: beta1 must be a finite number in [0, 1), got 1.0"),
    (lambda: ops.adam_update(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 0.9, 0.999, -1),
     ValueError, "adam_update: eps must be a finite number >= 0, got -1.0"),
    (lambda: ops.adam_torch_update(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 0.9, 0.999,
                                   1e-7, 0), ValueError, "adam_torch_update: step must be an int >= 1"),
    (lambda: ops.adam_torch_update_many([np.zeros(1)], [np.zeros(1)], [np.zeros(1)], [], 1e-3, 0.9, 0.999,
                                        1e-7, 1), ValueError,
     "adam_torch_update: params, grads, ms and vs must be equally long lists, got lengths 1, 1, 1 and 0"),
    (lambda: ops.adam_torch_update(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), "fast", 0.9,
                                   0.999, 1e-7, 1), TypeError, "adam_torch_update: lr must be a number"),
    (lambda: ops.sgd_update(np.zeros(2), np.zeros(2), None, 0.1, 0.9), ValueError,
     "sgd_update: velocity must be an array like param when momentum > 0, got None"),
    (lambda: ops.sgd_update(np.zeros(2), np.zeros(2), np.zeros(3), 0.1, 0.9), ValueError,
     "sgd_update: velocity must have shape (2,), got (3,)"),
    (lambda: ops.sgd_update(np.zeros(2), np.zeros(2), None, float("nan")), ValueError,
     "sgd_update: lr must be a finite number >= 0, got nan"),
    (lambda: ops.sgd_update(np.zeros(2), np.zeros(2), np.zeros(2), 0.1, 0.9, nesterov=1), TypeError,
     "sgd_update: nesterov must be True or False"),
    (lambda: ops.sgd_update_many([np.zeros(2)], [np.zeros(2), np.zeros(2)], None, 0.1), ValueError,
     "sgd_update: params and grads must be equally long lists, got lengths 1 and 2"),
    (lambda: ops.sgd_update(np.zeros(2, int), np.zeros(2, int), None, 0.1), TypeError,
     "sgd_update: param must be a floating-point array"),
])
def test_update_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
