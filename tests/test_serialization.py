"""Saving and loading: round trips, resumed training, and files that are damaged or foreign."""

import json
import zipfile

import numpy as np
import pytest

import minires.serialization as ser
from minires.models import build_resnet
from minires.optim import Adam


def _model(seed=0):
    model = build_resnet((8, 8, 3), num_classes=3, filters=4, blocks=2, dense_units=6, seed=seed)
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, n)


def test_round_trip_gives_identical_predictions_and_training_state(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, seed=1)
    path = tmp_path / "model.npz"
    model.save(path, metadata={"epoch": 1, "note": "first"})

    loaded, metadata = ser.load_model_with_metadata(path)
    assert metadata == {"epoch": 1, "note": "first"}
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.metrics_names == ["loss", "accuracy"]

    # Resume: optimizer moments and the shuffling generator continue where they stopped.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_loading_does_not_touch_the_global_generator(tmp_path):
    from minires import initializers

    path = tmp_path / "m.npz"
    _model().save(path)
    initializers.set_random_seed(5)
    expected = np.random.default_rng(5).random()
    ser.load_model(path)
    assert initializers.global_generator().random() == expected


def test_weights_only_round_trip(tmp_path):
    source, target = _model(seed=0), _model(seed=1)
    path = tmp_path / "w.npz"
    source.save_weights(path)
    target.load_weights(path)
    x, _ = _data(4)
    np.testing.assert_array_equal(source.predict(x), target.predict(x))
    other = build_resnet((8, 8, 3), num_classes=3, filters=5, blocks=2, dense_units=6)
    with pytest.raises(ValueError, match=r"w\.npz: weight 0 \(stem_conv/kernel\) has shape \(3, 3, 3, 4\)"):
        other.load_weights(path)


def test_archive_functions_for_checkpoints(tmp_path):
    path = tmp_path / "ckpt.npz"
    rng = np.random.default_rng(3)
    rng.random(5)
    model = _model()
    arrays, meta = ser.model_to_archive(model)
    meta["epoch"] = 4
    meta["trainer_rng"] = ser.generator_state(rng)
    arrays["extra/mask"] = np.arange(6, dtype=np.int32)
    ser.write_archive(path, arrays, meta)
    arrays2, meta2 = ser.read_archive(path)
    assert meta2["epoch"] == 4 and meta2["format"] == "minires" and meta2["version"] == 1
    np.testing.assert_array_equal(arrays2["extra/mask"], arrays["extra/mask"])
    assert ser.generator_from_state(meta2["trainer_rng"]).random() == rng.random()
    rebuilt = ser.model_from_archive(arrays2, meta2, source=str(path))
    np.testing.assert_array_equal(rebuilt.get_weights()[0], model.get_weights()[0])


def test_write_archive_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="numeric"):
        ser.write_archive(tmp_path / "a.npz", {"x": np.array(["a"])}, {})
    with pytest.raises(ValueError, match="JSON"):
        ser.write_archive(tmp_path / "a.npz", {}, {"bad": object()})
    with pytest.raises(ValueError, match="without the keys"):
        ser.write_archive(tmp_path / "a.npz", {}, {"format": "other"})
    assert not list(tmp_path.iterdir())


def test_corrupt_truncated_and_foreign_files_raise_value_error(tmp_path):
    good = tmp_path / "good.npz"
    _model().save(good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        ser.load_model(truncated)

    corrupt = tmp_path / "corrupt.npz"
    flipped = bytearray(data)
    # Damage bytes in the middle of the last weight array's data (the CRC catches it).
    with zipfile.ZipFile(good) as z:
        info = z.getinfo(sorted(z.namelist())[-1])
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2 + 40
    flipped[middle] ^= 0xFF
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupt.npz"):
        ser.load_model(corrupt)

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not an archive at all" * 10)
    with pytest.raises(ValueError, match="garbage.bin: not a readable minires archive"):
        ser.load_model(garbage)

    plain_npy = tmp_path / "plain.npy"
    np.save(plain_npy, np.zeros(3))
    with pytest.raises(ValueError, match="plain.npy: not a minires archive"):
        ser.load_model(plain_npy)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.npz: not a minires archive"):
        ser.load_model(foreign)

    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled.npy"):
        ser.load_model(pickled)

    with pytest.raises(FileNotFoundError):
        ser.load_model(tmp_path / "missing.npz")


def _rewrite(path, arrays, meta_update=None, raw_meta=None):
    header = raw_meta if raw_meta is not None else json.dumps(meta_update).encode()
    np.savez(path, **{ser.META_KEY: np.frombuffer(header, np.uint8)}, **arrays)


def test_header_and_weights_are_validated(tmp_path):
    model = _model()
    arrays, meta = ser.model_to_archive(model)
    full = {"format": "minires", "version": 1, **meta}

    newer = tmp_path / "newer.npz"
    _rewrite(newer, arrays, {**full, "version": 99})
    with pytest.raises(ValueError, match="newer.npz: archive format version 99"):
        ser.load_model(newer)

    other_format = tmp_path / "other.npz"
    _rewrite(other_format, arrays, {**full, "format": "keras"})
    with pytest.raises(ValueError, match="other.npz: not a minires archive \\(format 'keras'\\)"):
        ser.load_model(other_format)

    bad_json = tmp_path / "badjson.npz"
    _rewrite(bad_json, arrays, raw_meta=b"{not json")
    with pytest.raises(ValueError, match="badjson.npz: corrupt archive"):
        ser.load_model(bad_json)

    wrong_dtype = tmp_path / "dtype.npz"
    _rewrite(wrong_dtype, {**arrays, "weights/2": arrays["weights/2"].astype(np.float64)}, full)
    with pytest.raises(ValueError, match=r"dtype.npz: weight 2 \(block1_conv1/kernel\) .* float64"):
        ser.load_model(wrong_dtype)

    missing = tmp_path / "missing_weight.npz"
    _rewrite(missing, {k: v for k, v in arrays.items() if k != "weights/5"}, full)
    with pytest.raises(ValueError, match="missing_weight.npz"):
        ser.load_model(missing)

    bad_arch = tmp_path / "arch.npz"
    broken = json.loads(json.dumps(full))
    broken["model"]["layers"][1]["class_name"] = "Conv3D"
    _rewrite(bad_arch, arrays, broken)
    with pytest.raises(ValueError, match="arch.npz: bad architecture"):
        ser.load_model(bad_arch)


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model = _model(seed=0)
    model.save(path)
    before = path.read_bytes()

    calls = {"n": 0}
    real_write_array = np.lib.format.write_array

    def failing_write_array(fp, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:               # part of the new archive is written, then the disk "fills"
            raise OSError("No space left on device")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    other = _model(seed=1)
    with pytest.raises(OSError, match="No space left"):
        other.save(path)
    monkeypatch.undo()

    assert calls["n"] == 4
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]   # no temporary file left
    np.testing.assert_array_equal(ser.load_model(path).get_weights()[0], model.get_weights()[0])


def test_generator_state_round_trip():
    rng = np.random.default_rng(42)
    rng.random(3)
    state = json.loads(json.dumps(ser.generator_state(rng)))
    again = ser.generator_from_state(state)
    np.testing.assert_array_equal(again.random(5), rng.random(5))
    with pytest.raises(ValueError, match="unknown bit generator"):
        ser.generator_from_state({"bit_generator": "Nope"})


def test_model_save_works_when_only_the_model_package_is_imported(tmp_path):
    """The model does not import its file format; importing any part of minires provides it."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from minires.model import Input, Model\n"
            "from minires.layers import Dense\n"
            "inputs = Input((3,))\n"
            "model = Model(inputs, Dense(2)(inputs))\n"
            "model.save(sys.argv[1])\n"
            "model.save_weights(sys.argv[1] + '.weights.npz')\n"
            "model.load_weights(sys.argv[1] + '.weights.npz')\n")
    path = tmp_path / "m.npz"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    assert ser.load_model(path).count_params() == 8


# --- limits before allocation -----------------------------------------------------------------

def _dense_archive(n_in=4, units=3):
    """(arrays, meta) of a one-Dense-layer model, n_in -> units."""
    from minires import Input, Model
    from minires.layers import Dense

    inputs = Input((4,))
    model = Model(inputs, Dense(3, activation="softmax")(inputs))
    arrays, meta = ser.model_to_archive(model)
    meta = json.loads(json.dumps(meta))
    meta["model"]["layers"][0]["config"]["batch_shape"] = [None, n_in]
    meta["model"]["layers"][1]["config"]["units"] = units
    return arrays, meta


def _peak_bytes(call):
    """The peak of memory traced (NumPy's arrays included) while ``call()`` runs, and its error."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    except ValueError as exc:
        error = exc
    else:
        error = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("declared", ["nothing", "huge", "small"])
def test_a_small_file_declaring_a_huge_layer_is_refused_before_anything_is_allocated(tmp_path, declared):
    """A 20000 x 20000 Dense (1.6 GB of float32) declared in a file of a few KB: refused before the
    architecture's parameters are made, whatever the file says of its arrays."""
    arrays, meta = _dense_archive(20000, 20000)
    if declared == "nothing":
        arrays, meta["weights"] = {}, []
    elif declared == "huge":
        meta["weights"] = [{"name": "dense/kernel", "shape": [20000, 20000], "dtype": "float32"},
                           {"name": "dense/bias", "shape": [20000], "dtype": "float32"}]
    path = tmp_path / "huge.npz"
    ser.write_archive(path, arrays, meta)
    assert path.stat().st_size < 4096
    peak, error = _peak_bytes(lambda: ser.load_model(path))
    assert error is not None and "huge.npz" in str(error)
    assert peak < 20 * 2 ** 20, peak


def _npz_with_entry(path, name, header_bytes, data_bytes, compress=False, repeat=1):
    """A minires-looking archive whose entry ``name`` is a hand-made .npy: a header, then data."""
    meta = json.dumps({"format": "minires", "version": 1, "kind": "weights", "weights": []}).encode()
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(meta, np.uint8))
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode) as z:
        z.writestr(ser.META_KEY + ".npy", buffer.getvalue())
        with z.open(name + ".npy", "w", force_zip64=True) as entry:
            entry.write(header_bytes)
            for _ in range(repeat):
                entry.write(data_bytes)


def _npy_header(shape, dtype="<f4"):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_array_header_claiming_more_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    _npz_with_entry(path, "weights/0", _npy_header((20000, 20000)), b"\0" * 64)
    peak, error = _peak_bytes(lambda: ser.read_archive(path))
    assert error is not None and "liar.npz" in str(error) and "weights/0" in str(error)
    assert peak < 20 * 2 ** 20, peak


def test_a_compressed_entry_that_expands_a_thousandfold_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "bomb.npz"
    chunk = b"\0" * 2 ** 20
    _npz_with_entry(path, "weights/0", _npy_header((100, 2 ** 20), "<u1"), chunk, compress=True, repeat=100)
    assert path.stat().st_size < 1_000_000
    peak, error = _peak_bytes(lambda: ser.read_archive(path))
    assert error is not None and "bomb.npz" in str(error) and "expand" in str(error)
    assert peak < 20 * 2 ** 20, peak


def test_archives_larger_than_the_limit_are_refused(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    with pytest.raises(ValueError, match="model.npz: .*limit"):
        ser.read_archive(path, max_bytes=10_000)
    assert ser.read_archive(path)[1]["kind"] == "model"


# --- non-finite numbers ---------------------------------------------------------------------

def test_non_finite_weights_are_refused_unless_allowed(tmp_path):
    x, _ = _data()
    model = _model()
    weights = model.get_weights()
    weights[2][0, 0, 0, 0] = np.nan
    weights[-1][:] = np.inf
    model.set_weights(weights)
    path = tmp_path / "nan.npz"
    model.save(path)
    with pytest.raises(ValueError, match=r"nan.npz: .*non-finite.*allow_nonfinite"):
        ser.load_model(path)
    with pytest.raises(ValueError, match="non-finite"):
        _model().load_weights(path)
    loaded = ser.load_model(path, allow_nonfinite=True)
    assert np.isnan(loaded.get_weights()[2][0, 0, 0, 0])
    assert np.isnan(loaded.predict(x[:2])).all()
