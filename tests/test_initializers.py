"""Initializers: Glorot's limit and fans, seeding, and the default float type."""

import math

import numpy as np
import pytest

from minires import initializers as init


@pytest.fixture(autouse=True)
def _restore_floatx():
    saved = init.floatx()
    yield
    init.set_floatx(saved)


def test_fans():
    assert init.compute_fans((5, 7)) == (5, 7)
    assert init.compute_fans((3, 2, 4, 6)) == (3 * 2 * 4, 3 * 2 * 6)


@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 64, 64), (1, 1, 64, 48)])
def test_glorot_uniform_limit_and_variance(shape):
    fan_in, fan_out = init.compute_fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    w = init.GlorotUniform(seed=0)(shape)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert w.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.1)


def test_seeds_and_the_global_generator():
    a = init.GlorotUniform(seed=3)((4, 4))
    b = init.GlorotUniform(seed=3)((4, 4))
    np.testing.assert_array_equal(a, b)
    init.set_random_seed(9)
    c = init.GlorotUniform()((4, 4))
    init.set_random_seed(9)
    np.testing.assert_array_equal(c, init.GlorotUniform()((4, 4)))
    with init.use_generator(np.random.default_rng(1)):
        inside = init.GlorotUniform()((2,))
    limit = math.sqrt(6 / 4)
    np.testing.assert_array_equal(inside, np.random.default_rng(1).uniform(-limit, limit, 2).astype(np.float32))
    init.set_random_seed(9)
    init.GlorotUniform()((4, 4))
    with init.use_generator(np.random.default_rng(1)):
        init.GlorotUniform()((100,))
    d = init.GlorotUniform()((4, 4))
    init.set_random_seed(9)
    init.GlorotUniform()((4, 4))
    np.testing.assert_array_equal(d, init.GlorotUniform()((4, 4)))   # untouched by the block
    with pytest.raises(ValueError, match="seed"):
        init.set_random_seed(-1)


def test_floatx():
    assert init.floatx() == "float32"
    init.set_floatx("float64")
    assert init.Zeros()((2,)).dtype == np.float64
    assert init.GlorotUniform(seed=0)((2, 2)).dtype == np.float64
    with pytest.raises(ValueError, match="set_floatx: value must be 'float32' or 'float64'"):
        init.set_floatx("float16")


def test_get_and_serialize():
    assert isinstance(init.get("glorot_uniform"), init.GlorotUniform)
    assert isinstance(init.get("Zeros"), init.Zeros)
    again = init.get(init.serialize(init.RandomNormal(0.5, 2.0, seed=4)))
    assert again.get_config() == {"mean": 0.5, "stddev": 2.0, "seed": 4}
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get("orthogonal")
    g = init.GlorotNormal(seed=0)((200, 300))
    assert np.abs(g).max() <= 2 * math.sqrt(2 / 500) / 0.87962566103423978 + 1e-6
    assert np.all(init.HeUniform(seed=0)((10, 3)) ** 2 <= 6 / 10)
