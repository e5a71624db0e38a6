"""build_change_net: FC-Siam-diff from the seed's residual blocks: shapes, shared encoder,
gradients by central differences in float64, errors, and a save/load round trip."""

import numpy as np
import pytest

import minires.serialization as ser
from minires.models import build_change_net, change_net_pooling
from tests.model.gradients import check_model_gradients


def _pair(shape, n=2, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    before = rng.random((n, *shape)).astype(dtype)
    after = before.copy()
    after[:, 1:3, 1:3] = rng.random((n, 2, 2, shape[2]))
    mask = np.zeros((n, *shape[:2], 1), dtype=dtype)
    mask[:, 1:3, 1:3] = 1
    return [before, after], mask


@pytest.mark.parametrize("shape, blocks", [((12, 20, 3), 2), ((6, 10, 1), 1), ((8, 24, 3), 3)])
def test_output_is_a_change_map_of_the_input_size(shape, blocks):
    model = build_change_net(shape, filters=3, blocks=blocks)
    assert change_net_pooling(model) == 2 ** blocks
    x, _ = _pair(shape)
    probs = model.predict(x)
    assert probs.shape == (2, *shape[:2], 1) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))


def test_a_model_with_free_sizes_takes_any_multiple_of_the_pooling():
    model = build_change_net((None, None, 3), filters=3, blocks=2)
    for shape in ((4, 4, 3), (12, 28, 3)):
        x, _ = _pair(shape)
        assert model.predict(x).shape == (2, *shape[:2], 1)


def test_the_encoder_is_shared_and_the_map_symmetric_in_its_inputs():
    model = build_change_net((8, 8, 3), filters=[2, 3, 4], blocks=2)
    names = model.weight_names()
    assert len(names) == len(set(names))               # one set of encoder weights, not two
    assert sum(name.startswith("block1_conv1/") for name in names) == 2   # kernel and bias
    x, _ = _pair((8, 8, 3))
    np.testing.assert_allclose(model.predict(x), model.predict(x[::-1]), rtol=1e-6)
    # Identical images: every difference is zero, so the map is the same at every pixel.
    same = model.predict([x[0], x[0]])
    np.testing.assert_allclose(same, np.full_like(same, same.flat[0]), rtol=1e-6)


def test_gradients_match_central_differences_in_float64():
    model = build_change_net((4, 6, 2), filters=2, blocks=1, dtype="float64", seed=3)
    x, y = _pair((4, 6, 2), dtype=np.float64, seed=1)
    check_model_gradients(model, x, y)


def test_training_lowers_the_loss():
    model = build_change_net((8, 8, 3), filters=4, blocks=2, seed=1)
    x, y = _pair((8, 8, 3), n=8, seed=2)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=4, epochs=5, verbose=0, seed=0)
    assert model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (10, 8, 3), "blocks": 2}, r"input_shape H=10 must be divisible by 2\*\*blocks = 4"),
    ({"blocks": 0}, "blocks must be an int >= 1"),
    ({"filters": [4, 4], "blocks": 2}, r"filters must be a positive int or 3 of them"),
    ({"input_shape": (8, 8)}, r"input_shape must be \(H, W, C\)"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match="build_change_net: " + message):
        build_change_net(**kwargs)


def test_save_and_load_round_trip(tmp_path):
    model = build_change_net((8, 12, 3), filters=3, blocks=2, pos_weight=4.0)
    x, y = _pair((8, 12, 3), n=4)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "net.npz")
    loaded = ser.load_model(tmp_path / "net.npz")
    assert [t.name for t in loaded.inputs] == ["before", "after"]
    assert loaded.loss.get_config()["pos_weight"] == model.loss.get_config()["pos_weight"]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert change_net_pooling(loaded) == 4
