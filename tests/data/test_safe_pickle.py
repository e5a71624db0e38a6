"""The restricted unpickler reads CIFAR-10's pickles and refuses anything that could run code."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess

import numpy
import pytest

from minires.data.cifar10 import read_cifar10
from minires.data.safe_pickle import ForbiddenGlobalError, safe_load

from .cifar_files import batch_dict, make_images, py2_dumps, write_batches


class _Calls:
    """Pickles to a call of ``function(*args)`` when loaded."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_reads_a_python2_batch_with_either_numpy_module_name(module):
    x, y = make_images(4, seed=1)
    loaded = safe_load(py2_dumps(batch_dict(x, y, "b"), module), "batch")
    assert set(loaded) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert loaded[b"data"].dtype == numpy.uint8 and loaded[b"data"].shape == (4, 3072)
    assert loaded[b"labels"] == y.tolist()


def test_reads_a_python3_protocol2_batch():
    # Python 3 writes bytes in protocol 2 as _codecs.encode(text, "latin1").
    x, y = make_images(2, seed=2)
    data = pickle.dumps(batch_dict(x, y, "b"), protocol=2)
    assert b"_codecs" in data
    loaded = safe_load(data, "batch")
    numpy.testing.assert_array_equal(loaded[b"data"], batch_dict(x, y, "b")[b"data"])


def test_refuses_os_system_and_never_runs_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "SENTINEL"
    payload = pickle.dumps(_Calls(os.system, f"touch {sentinel}"), protocol=2)
    with pytest.raises(ForbiddenGlobalError) as caught:
        safe_load(payload, "evil_batch")
    message = str(caught.value)
    assert "evil_batch" in message and "system" in message
    assert not sentinel.exists()


@pytest.mark.parametrize("call", [
    _Calls(builtins.eval, "1 + 1"),
    _Calls(builtins.exec, "x = 1"),
    _Calls(subprocess.check_call, ["true"]),
    _Calls(builtins.__import__, "os"),
    _Calls(numpy.load, "x.npy"),
], ids=["eval", "exec", "subprocess", "import", "numpy.load"])
def test_refuses_every_global_outside_the_format(call):
    with pytest.raises(ForbiddenGlobalError, match="refusing to load src"):
        safe_load(pickle.dumps(call, protocol=2), "src")


def test_refuses_malicious_content_inside_a_batch_file(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    write_batches(directory)
    sentinel = tmp_path / "SENTINEL"
    batch = {b"data": numpy.zeros((1, 3072), numpy.uint8),
             b"labels": [_Calls(os.system, f"touch {sentinel}")]}
    (directory / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ForbiddenGlobalError, match="data_batch_3") as caught:
        read_cifar10(directory)
    assert "posix.system" in str(caught.value) or "nt.system" in str(caught.value)
    assert not sentinel.exists()


def test_refuses_object_arrays():
    array = numpy.array([1, "a"], dtype=object)
    with pytest.raises(pickle.UnpicklingError, match="numeric dtypes only"):
        safe_load(py2_dumps({b"data": array}), "objects")


def test_refuses_other_codecs():
    crafted = (b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(pickle.UnpicklingError, match="latin1 only"):
        safe_load(crafted, "codec")


def test_a_truncated_pickle_is_a_clear_error():
    data = py2_dumps(batch_dict(*make_images(2, seed=3), "b"))
    with pytest.raises(pickle.UnpicklingError, match="cut_short"):
        safe_load(data[: len(data) // 2], "cut_short")


def test_every_refusal_is_also_a_value_error(tmp_path):
    """Callers that report bad input as ValueError (the command line) need no pickle import."""
    with pytest.raises(ValueError, match="refusing to load src"):
        safe_load(pickle.dumps(_Calls(os.system, "true"), protocol=2), "src")
    data = py2_dumps(batch_dict(*make_images(2, seed=3), "b"))
    with pytest.raises(ValueError, match="cut_short"):
        safe_load(data[: len(data) // 2], "cut_short")
