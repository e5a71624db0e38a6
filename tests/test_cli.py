"""The command line: train, evaluate, predict end to end, and one-line errors."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from minires.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    code = main(["train", "--synthetic-size", "200", "--epochs", "1", "--out", str(run), "--quiet"])
    assert code == 0
    return run


def test_train_writes_a_run_directory(trained_run):
    for name in ("model.npz", "checkpoint.npz", "history.json", "history.png", "run.json"):
        assert (trained_run / name).is_file(), name


def test_train_refuses_to_overwrite_a_run(trained_run, capsys):
    code = main(["train", "--synthetic-size", "200", "--epochs", "1", "--out", str(trained_run), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]


def test_resume_continues_to_more_epochs(trained_run, capsys):
    code = main(["train", "--synthetic-size", "200", "--epochs", "2", "--out", str(trained_run), "--quiet",
                 "--resume"])
    assert code == 0
    import json

    assert json.loads((trained_run / "history.json").read_text())["epochs"] == 2


def test_evaluate_prints_accuracy_per_class_and_a_confusion_matrix(trained_run, capsys, tmp_path):
    png = tmp_path / "confusion.png"
    code = main(["evaluate", str(trained_run / "model.npz"), "--synthetic-size", "100",
                 "--confusion-png", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    assert "accuracy" in out and "per-class accuracy" in out and "confusion matrix" in out
    assert "checkerboard" in out                      # class names travel with the model
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_lists_top_classes(trained_run, capsys, tmp_path):
    from PIL import Image

    paths = []
    for i, size in enumerate([(32, 32), (50, 40)]):
        path = tmp_path / f"image{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    code = main(["predict", str(trained_run / "model.npz"), *paths, "--top", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    for line in lines:
        probabilities = [float(part.split()[-1]) for part in line.split(": ", 1)[1].split(", ")]
        assert len(probabilities) == 2 and probabilities[0] >= probabilities[1]


@pytest.mark.parametrize("argv, words", [
    (["evaluate", "missing.npz"], ["missing.npz"]),
    (["predict", "missing.npz", "x.png"], ["missing.npz"]),
    (["train", "--data", "no/such/dir", "--epochs", "1"], ["no/such/dir"]),
])
def test_missing_files_give_one_line_and_exit_1(argv, words, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_corrupt_model_gives_one_line(tmp_path, capsys):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["predict", str(bad), "x.png"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.npz" in err[0]


def test_unreadable_image_gives_one_line(trained_run, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert main(["predict", str(trained_run / "model.npz"), str(text)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.txt" in err[0]


def test_python_dash_m_and_help():
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"], ["bench", "--help"]):
        done = subprocess.run([sys.executable, "-m", "minires", *argv], capture_output=True, text=True)
        assert done.returncode == 0 and "usage: minires" in done.stdout


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    """A real SIGINT to a training process: it stops after the batch, saves, exits 130."""
    import signal
    import time

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "minires", "train", "--synthetic-size", "1000", "--epochs", "5",
            "--out", str(run), "--backend", "numpy"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline and "Epoch 1/5" not in line:   # wait for training to start
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Checkpoint saved" in err and (run / "checkpoint.npz").is_file()
    assert not (run / "model.npz").exists()

    done = subprocess.run(argv + ["--resume", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Resuming" in done.stderr and (run / "model.npz").is_file()


@pytest.mark.parametrize("error, words", [
    (MemoryError(), ["out of memory"]),
    (KeyError("run"), ["unexpected KeyError", "'run'", "MINIRES_DEBUG"]),
    (ValueError("first line\n  second line"), ["first line; second line"]),
])
def test_any_failure_is_one_line_and_exit_1(monkeypatch, capsys, error, words):
    import minires.cli as cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "cmd_predict", fail)
    monkeypatch.delenv("MINIRES_DEBUG", raising=False)
    assert main(["predict", "model.npz", "x.png"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minires predict: ") and all(w in err[0] for w in words), err


# --- run directories ----------------------------------------------------------------------------

def test_train_refuses_a_directory_with_run_files_but_no_checkpoint(tmp_path, capsys):
    for name in ("model.npz", "best.npz", "history.json", "run.json"):
        (tmp_path / name).write_bytes(b"another run")
    assert main(["train", "--synthetic-size", "100", "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.npz" in err[0] and "another --out" in err[0]
    assert (tmp_path / "model.npz").read_bytes() == b"another run"


def test_two_runs_into_one_directory_at_once_one_is_refused(tmp_path):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "minires", "train", "--synthetic-size", "200", "--epochs", "2",
            "--out", str(run), "--quiet", "--backend", "numpy"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, err in results if code == 1).strip().splitlines()
    assert len(refused) == 1 and ("in use by another run" in refused[0] or "--resume" in refused[0]), refused
    assert json.loads((run / "history.json").read_text())["epochs"] == 2


def test_a_diverging_run_exits_1_with_one_line_and_saves_nothing_non_finite(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--synthetic-size", "200", "--epochs", "2", "--out", str(run), "--quiet",
                 "--lr", "1e30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 3 and err[0].startswith("minires train: backend") and err[1].startswith("Training on")
    assert "non-finite" in err[2], err
    assert not (run / "model.npz").exists() and not (run / "best.npz").exists()


# --- evaluate: what is compared with what -------------------------------------------------------

def test_evaluate_refuses_data_whose_classes_are_not_the_models(trained_run, tmp_path, capsys):
    from PIL import Image

    from minires.data.cifar10 import CIFAR10_CLASSES

    root = tmp_path / "cifar-like"
    for i, name in enumerate(CIFAR10_CLASSES):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (i * 20, 0, 0)).save(root / name / "0.png")
    code = main(["evaluate", str(trained_run / "model.npz"), "--data", str(root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "airplane" in err[0] and "disk" in err[0], err


def test_evaluate_the_val_split_of_no_split_is_an_error(trained_run, capsys):
    code = main(["evaluate", str(trained_run / "model.npz"), "--synthetic-size", "100", "--split", "val",
                 "--val-split", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "--val-split" in err[0], err


def test_a_checkpoint_can_be_evaluated_with_its_class_names(trained_run, capsys):
    assert main(["evaluate", str(trained_run / "checkpoint.npz"), "--synthetic-size", "100"]) == 0
    assert "checkerboard" in capsys.readouterr().out


# --- hostile files ------------------------------------------------------------------------------

def _png(path, width, height, bit_depth=8, colour=0, rows=True, orientation=None):
    """A PNG of ``width`` x ``height`` zeros, streamed (never held in memory); ``rows=False``:
    the header alone declares the size, with one empty row of data; ``orientation``: an EXIF
    orientation tag (6: turned 90 degrees)."""
    import struct
    import zlib

    from PIL import Image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\0" * (1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height if rows else 1)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    exif = b""
    if orientation is not None:
        tags = Image.Exif()
        tags[0x0112] = orientation
        exif = chunk(b"eXIf", tags.tobytes().removeprefix(b"Exif\0\0"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + exif + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))
    return path


class _Calls:
    """Pickles to a call of ``function(*args)``, as a malicious file would."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, trained_run):
    """Files crafted to hurt, each under 1 MB, and a good model and image to pair them with."""
    import os
    import pickle
    import zipfile

    import minires.serialization as ser
    from minires import Input, Model
    from minires.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from tests.data.cifar_files import write_archive, write_batches

    d = tmp_path_factory.mktemp("hostile")
    f = {"dir": d, "good_model": trained_run / "model.npz", "sentinel": d / "SENTINEL"}
    f["good_image"] = _png(d / "good.png", 40, 30, colour=2)

    evil = d / "cifar-evil"
    write_batches(evil)
    (evil / "data_batch_1").write_bytes(pickle.dumps(_Calls(os.system, f"touch {f['sentinel']}"), protocol=2))
    f["cifar_evil"] = evil
    cut = d / "cifar-cut"
    write_batches(cut)
    (cut / "data_batch_2").write_bytes((cut / "data_batch_2").read_bytes()[:500])
    f["cifar_cut"] = cut
    archive = d / "cut-archive" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_archive(archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    f["cifar_cut_archive"] = archive

    good = f["good_model"].read_bytes()
    f["model_cut"] = d / "cut.npz"
    f["model_cut"].write_bytes(good[: len(good) // 2])
    inputs = Input((4,))
    arrays, meta = ser.model_to_archive(Model(inputs, Dense(3, activation="softmax")(inputs)))
    meta["model"]["layers"][0]["config"]["batch_shape"] = [None, 20000]
    meta["model"]["layers"][1]["config"]["units"] = 20000
    f["model_huge_dense"] = d / "huge-dense.npz"
    ser.write_archive(f["model_huge_dense"], arrays, meta)
    inputs = Input((6000, 6000, 3))           # 1.2 GB for one conv output: 20 KB of file
    features = MaxPooling2D(1000)(Conv2D(8, 3, padding="same")(inputs))
    big_input = Model(inputs, Dense(3, activation="softmax")(Flatten()(features)))
    f["model_huge_input"] = d / "huge-input.npz"
    big_input.save(f["model_huge_input"])
    f["model_pickle"] = d / "pickle.npz"
    f["model_pickle"].write_bytes(pickle.dumps(_Calls(os.system, f"touch {f['sentinel']}")))
    f["model_bomb"] = d / "bomb.npz"
    with zipfile.ZipFile(f["model_bomb"], "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("weights/0.npy", "w", force_zip64=True) as entry:
            import io

            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                          "shape": (300, 2 ** 20)})
            entry.write(header.getvalue())
            for _ in range(300):
                entry.write(b"\0" * 2 ** 20)
        z.writestr("__minires__.npy", b"")
    from minires.models import build_resnet

    model = build_resnet(input_shape=(32, 32, 3), num_classes=10, filters=4, blocks=1, dense_units=8)
    weights = model.get_weights()
    weights[0][:] = np.nan
    model.set_weights(weights)
    f["model_nan"] = d / "nan.npz"
    model.save(f["model_nan"])

    f["png_huge"] = _png(d / "huge.png", 100_000, 100_000, rows=False)
    f["png_16bit_big"] = _png(d / "sixteen-big.png", 13_000, 13_000, bit_depth=16, rows=False)
    f["png_16bit"] = _png(d / "sixteen.png", 6000, 6000, bit_depth=16)
    f["png_rgba"] = _png(d / "rgba.png", 6300, 6300, colour=6, orientation=6)

    for name in ("run_no_state", "run_foreign", "run_model_only"):
        (d / name).mkdir()
    arrays, meta = ser.read_archive(trained_run / "checkpoint.npz")
    del meta["metadata"]["trainer"]["run"], meta["format"], meta["version"]
    ser.write_archive(d / "run_no_state" / "checkpoint.npz", arrays, meta)
    np.savez(d / "run_foreign" / "checkpoint.npz", a=np.zeros(3))
    (d / "run_model_only" / "checkpoint.npz").write_bytes(good)
    for key, value in list(f.items()):
        if key != "good_model" and isinstance(value, type(d)) and value.is_file():
            assert value.stat().st_size < 1_000_000, key
    return f


def _hostile_cases():
    train = ["train", "--epochs", "1", "--quiet", "--synthetic-size", "100"]
    return {
        "cifar pickle calling os.system": (train + ["--data", "{cifar_evil}", "--out", "{dir}/r1"], 1),
        "cifar truncated pickle": (train + ["--data", "{cifar_cut}", "--out", "{dir}/r2"], 1),
        "cifar truncated archive": (train + ["--data", "{cifar_cut_archive}", "--out", "{dir}/r3"], 1),
        "model truncated": (["predict", "{model_cut}", "{good_image}"], 1),
        "model declaring a 20000x20000 Dense (predict)": (["predict", "{model_huge_dense}", "{good_image}"], 1),
        "model declaring a 20000x20000 Dense (evaluate)": (["evaluate", "{model_huge_dense}",
                                                            "--synthetic-size", "100"], 1),
        "model with a 6000x6000 input": (["predict", "{model_huge_input}", "{good_image}"], 1),
        "model that is a pickle": (["predict", "{model_pickle}", "{good_image}"], 1),
        "model that is a zip bomb": (["predict", "{model_bomb}", "{good_image}"], 1),
        "model with NaN weights (predict)": (["predict", "{model_nan}", "{good_image}"], 1),
        "model with NaN weights (evaluate)": (["evaluate", "{model_nan}", "--synthetic-size", "100"], 1),
        "PNG declaring 100000x100000": (["predict", "{good_model}", "{png_huge}"], 1),
        "16-bit PNG declaring 13000x13000": (["predict", "{good_model}", "{png_16bit_big}"], 1),
        "16-bit PNG of 6000x6000": (["predict", "{good_model}", "{png_16bit}"], 0),
        "RGBA PNG at the pixel limit, turned by EXIF": (["predict", "{good_model}", "{png_rgba}"], 0),
        "checkpoint without the run's state": (train + ["--out", "{dir}/run_no_state", "--resume"], 1),
        "foreign checkpoint": (train + ["--out", "{dir}/run_foreign", "--resume"], 1),
        "model file as a checkpoint": (train + ["--out", "{dir}/run_model_only", "--resume"], 1),
    }


# Runs the command line and writes the process's peak resident memory (VmHWM, in kB) to a file
# at exit. The peak is read inside the process: the rusage of a child started by a large
# parent (the test run) counts the parent's memory at the fork.
_MEASURED = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)

atexit.register(report)
sys.argv = ["minires", *sys.argv[1:]]
runpy.run_module("minires", run_name="__main__", alter_sys=True)
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("case", list(_hostile_cases()))
def test_hostile_files_get_one_line_little_memory_and_time(hostile, case, tmp_path):
    """Each command on each crafted file: the expected exit code, one line on stderr when it
    fails and never a traceback, under 600 MB of memory and 5 s of CPU time."""
    import os
    import threading
    import time

    template, expected = _hostile_cases()[case]
    argv = [part.format(**hostile) for part in template]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIRES_")}
    env.update(HOME=str(tmp_path), MINIRES_CACHE=str(tmp_path / "cache"), MINIRES_NO_DOWNLOAD="1",
               MINIRES_BACKEND="numpy", PEAK_FILE=str(tmp_path / "peak"))
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-c", _MEASURED, *argv], stdout=stdout, stderr=stderr,
                                 env=env)
        watchdog = threading.Timer(120, child.kill)
        watchdog.start()
        _, status, usage = os.wait4(child.pid, 0)
        watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
    text = err.read_text() + out.read_text()
    assert child.returncode == expected, (case, text)
    assert "Traceback" not in text, (case, text)
    if expected:
        lines = err.read_text().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"minires {argv[0]}: "), (case, lines)
    peak_mb = int((tmp_path / "peak").read_text()) / 1024
    cpu = usage.ru_utime + usage.ru_stime
    assert peak_mb < 600, (case, f"{peak_mb:.0f} MB")
    assert cpu < 5, (case, f"{cpu:.1f} s of CPU, {wall:.1f} s")
    assert not hostile["sentinel"].exists(), "a pickle ran code"


def _backend_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[0]


def test_commands_run_numba_by_default_and_say_so_first(trained_run, capsys, monkeypatch):
    """--backend > MINIRES_BACKEND > auto (numba when it imports); the library's default stays numpy."""
    from minires import backend

    monkeypatch.delenv("MINIRES_BACKEND", raising=False)
    model = str(trained_run / "model.npz")
    assert main(["evaluate", model, "--synthetic-size", "20", "--confusion-png", "/dev/null"]) == 0
    expected = "numba" if importlib.util.find_spec("numba") else "numpy"
    line = _backend_line(capsys)
    assert line.startswith(f"minires evaluate: backend {expected} (the default, auto")
    assert backend.get_backend() == expected
    monkeypatch.setenv("MINIRES_BACKEND", "numpy")
    assert main(["evaluate", model, "--synthetic-size", "20", "--confusion-png", "/dev/null"]) == 0
    assert _backend_line(capsys).startswith("minires evaluate: backend numpy (MINIRES_BACKEND)")
    assert main(["evaluate", model, "--synthetic-size", "20", "--confusion-png", "/dev/null",
                 "--backend", "auto"]) == 0
    assert _backend_line(capsys).startswith(f"minires evaluate: backend {expected} (--backend: numba")


def test_auto_falls_back_to_numpy_without_numba(trained_run, capsys, monkeypatch, tmp_path):
    from minires import backend

    def no_numba():
        raise RuntimeError("minires backend 'numba' needs Numba")

    monkeypatch.delenv("MINIRES_BACKEND", raising=False)
    monkeypatch.setattr(backend, "_load_numba_kernels", no_numba)
    from PIL import Image

    path = tmp_path / "image.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(path)
    assert main(["predict", str(trained_run / "model.npz"), str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0].startswith("minires predict: backend numpy (the default, auto")
    assert "Numba does not import here" in captured.err
    assert len(captured.out.strip().splitlines()) == 1          # stdout keeps one line per image


def test_a_bad_minires_backend_is_one_line(trained_run, capsys, monkeypatch):
    monkeypatch.setenv("MINIRES_BACKEND", "tensorflow")
    assert main(["evaluate", str(trained_run / "model.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MINIRES_BACKEND must be one of numpy, numba, cupy, auto" in err[0]
