"""The command line: train, evaluate, predict end to end, and one-line errors."""

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
