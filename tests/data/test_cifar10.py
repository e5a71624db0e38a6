"""Reading CIFAR-10's official Python format, and where ``load_data`` looks for it."""

from __future__ import annotations

import numpy
import pytest

from minires.data import cifar10
from minires.data.cifar10 import CIFAR10_CLASSES, batch_to_arrays, load_data, read_cifar10

from .cifar_files import batch_dict, make_images, py2_dumps, write_archive, write_batches


def _check(loaded, expected):
    (x_train, y_train), (x_test, y_test) = loaded
    (ex_train, ey_train), (ex_test, ey_test) = expected
    for x, ex in ((x_train, ex_train), (x_test, ex_test)):
        assert x.dtype == numpy.uint8 and x.shape == (len(ex), 32, 32, 3)
        numpy.testing.assert_array_equal(x, ex)
    for y, ey in ((y_train, ey_train), (y_test, ey_test)):
        assert y.dtype == numpy.uint8 and y.shape == (len(ey), 1)
        numpy.testing.assert_array_equal(y[:, 0], ey)


def test_a_row_is_red_then_green_then_blue_planes():
    row = numpy.concatenate([numpy.full(1024, 10), numpy.full(1024, 20), numpy.arange(1024) % 256])
    x, y = batch_to_arrays({b"data": row.astype(numpy.uint8)[None], b"labels": [7]}, "one")
    assert x.shape == (1, 32, 32, 3) and y.tolist() == [[7]]
    assert (x[0, :, :, 0] == 10).all() and (x[0, :, :, 1] == 20).all()
    numpy.testing.assert_array_equal(x[0, :, :, 2], (numpy.arange(1024) % 256).reshape(32, 32))


def test_reads_the_batches_directory(tmp_path):
    expected = write_batches(tmp_path / "cifar-10-batches-py")
    _check(load_data(tmp_path / "cifar-10-batches-py", download=False), expected)
    _check(load_data(tmp_path, download=False), expected)      # a directory holding it
    assert read_cifar10(tmp_path).class_names == CIFAR10_CLASSES


def test_reads_batches_written_with_numpy2_names(tmp_path):
    expected = write_batches(tmp_path / "d", numpy_module="numpy._core.multiarray")
    _check(load_data(tmp_path / "d", download=False), expected)


def test_reads_the_archive_without_extracting(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    expected = write_archive(archive)
    before = sorted(p.name for p in tmp_path.iterdir())
    _check(load_data(archive, download=False), expected)
    _check(load_data(tmp_path, download=False), expected)       # a directory holding it
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_given_path_without_the_data_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_data: path"):
        load_data(tmp_path, download=False)


def test_search_order(tmp_path, isolated_home, monkeypatch):
    # Different batch sizes tell the copies apart: 5 batches of k images each.
    cache = tmp_path / "cache"
    write_archive(cache / "cifar-10-python.tar.gz", per_batch=1)
    monkeypatch.setenv("MINIRES_CACHE", str(cache))
    assert len(load_data(download=False)[0][0]) == 5

    keras = isolated_home / ".keras" / "datasets"
    write_archive(keras / "cifar-10-batches-py.tar.gz", per_batch=2)      # Keras 2's name
    assert len(load_data(download=False)[0][0]) == 10
    write_batches(keras / "cifar-10-batches-py", per_batch=3)   # the directory wins in a place
    assert len(load_data(download=False)[0][0]) == 15

    data = tmp_path / "mine"
    write_batches(data / "cifar-10-batches-py", per_batch=4)
    monkeypatch.setenv("MINIRES_DATA", str(data))
    assert len(load_data(download=False)[0][0]) == 20

    explicit = tmp_path / "explicit"
    write_batches(explicit, per_batch=5)
    assert len(load_data(explicit, download=False)[0][0]) == 25


def test_keras3_layout_and_keras_home(tmp_path, monkeypatch):
    keras_home = tmp_path / "kh"
    keras3 = keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    write_batches(keras3, per_batch=2)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    assert len(load_data(download=False)[0][0]) == 10


def test_xdg_cache_home_and_cache_dir_argument(tmp_path, monkeypatch):
    write_batches(tmp_path / "xdg" / "minires" / "cifar-10-batches-py", per_batch=1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert len(load_data(download=False)[0][0]) == 5
    write_batches(tmp_path / "other" / "cifar-10-batches-py", per_batch=2)
    assert len(load_data(download=False, cache_dir=tmp_path / "other")[0][0]) == 10


def test_not_found_without_download_names_the_places(isolated_home):
    with pytest.raises(FileNotFoundError, match="download=False") as caught:
        load_data(download=False)
    assert str(isolated_home / ".keras" / "datasets") in str(caught.value)


def test_no_download_environment_variable(monkeypatch):
    monkeypatch.setenv("MINIRES_NO_DOWNLOAD", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("load_data tried to download")

    monkeypatch.setattr(cifar10, "download_file", no_network)
    with pytest.raises(FileNotFoundError, match="MINIRES_NO_DOWNLOAD"):
        load_data()


def test_a_missing_batch_is_named(tmp_path):
    write_batches(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_data(tmp_path, download=False)


@pytest.mark.parametrize("entry, value, message", [
    (b"labels", [0, 1, 10], "labels must lie in 0..9"),
    (b"labels", [0, 1], "3 images but 2 labels"),
    (b"labels", [0.0, 1.0, 2.0], "list of ints"),
    (b"data", numpy.zeros((3, 3072), numpy.int32), "uint8 array"),
    (b"data", numpy.zeros((3, 1024), numpy.uint8), "uint8 array of shape"),
    (b"data", b"not an array", "uint8 array"),
])
def test_bad_contents_are_refused_naming_the_file(tmp_path, entry, value, message):
    write_batches(tmp_path)
    x, y = make_images(3, seed=0)
    batch = batch_dict(x, y, "data_batch_2")
    batch[entry] = value
    (tmp_path / "data_batch_2").write_bytes(py2_dumps(batch))
    with pytest.raises(ValueError, match=message) as caught:
        load_data(tmp_path, download=False)
    assert "data_batch_2" in str(caught.value)


def test_a_broken_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_archive(archive)
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(ValueError, match="cifar10"):
        load_data(archive, download=False)


def test_a_truncated_batch_in_a_directory_is_a_value_error_naming_it(tmp_path):
    write_batches(tmp_path)
    data = (tmp_path / "data_batch_2").read_bytes()
    (tmp_path / "data_batch_2").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="data_batch_2"):
        load_data(tmp_path, download=False)
