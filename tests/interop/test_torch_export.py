"""The seed's ResNet as SeedResNet's state dict in safetensors: PyTorch loads it with
``safetensors.torch.load_file`` + ``load_state_dict`` and predicts what minires does; the
file reads back into the same minires model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minires
from tests.interop.toys import odd_model, tiny_resnet

pytest.importorskip("safetensors", reason="the torch export writes safetensors")
from minires.interop.torch_export import (RESNET_KEY, export_safetensors, load_safetensors,  # noqa: E402
                                          state_dict_keys)


@pytest.mark.torch
@pytest.mark.parametrize("build", [lambda: minires.build_resnet(seed=0), lambda: tiny_resnet("float32")],
                         ids=["seed", "tiny_resnet"])
def test_pytorch_loads_the_state_dict_and_predicts_the_same(tmp_path, build):
    torch = pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file

    from minires.frameworks.torch_resnet import SeedResNet, to_tensor

    model = build()
    path = tmp_path / "model.safetensors"
    export_safetensors(model, path)
    with safe_open(str(path), framework="numpy") as f:
        arguments = json.loads(f.metadata()[RESNET_KEY])
    net = SeedResNet(**{**arguments, "input_shape": tuple(arguments["input_shape"])})
    net.load_state_dict(load_file(str(path)))            # strict: every key, every shape
    assert net.keras_order() == state_dict_keys(arguments["blocks"])
    x = np.random.default_rng(0).random((4, *model.input.shape[1:]), dtype=np.float32)
    with torch.no_grad():
        theirs = torch.softmax(net(to_tensor(x, channels_last=False)), dim=1).numpy()
    np.testing.assert_allclose(theirs, model.predict(x), rtol=0, atol=1e-5)


def test_export_and_reimport_round_trip(tmp_path):
    model = tiny_resnet("float64")
    path = tmp_path / "model.safetensors"
    export_safetensors(model, path)
    back = minires.load_model(path)             # dispatched by the suffix
    assert back.get_config() == model.get_config()
    for ours, theirs in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(theirs, ours)


def test_only_the_seed_architecture_has_a_state_dict(tmp_path):
    with pytest.raises(ValueError, match="not the seed's ResNet architecture"):
        export_safetensors(odd_model(), tmp_path / "odd.safetensors")
    assert not (tmp_path / "odd.safetensors").exists()


def test_foreign_damaged_or_reshaped_files_are_refused(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(ValueError, match="without a minires config"):
        load_safetensors(foreign)
    path = tmp_path / "model.safetensors"
    export_safetensors(tiny_resnet("float32"), path)
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="damaged.safetensors") as info:
        load_safetensors(damaged)
    assert "\n" not in str(info.value)
