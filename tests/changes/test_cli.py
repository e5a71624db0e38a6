"""minires changes train|detect: a tiny run, its resume, detection and its errors."""

import json

import numpy as np
import pytest
from PIL import Image

from minires.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("changes") / "run"
    args = ["changes", "train", "--dataset", "synthetic", "--synthetic-size", "40", "--epochs", "1",
            "--filters", "4", "--batch-size", "16", "--out", str(out), "--quiet"]
    assert main(args) == 0
    return out, args


def test_train_writes_a_run_and_resumes(run, capsys):
    out, args = run
    history = json.loads((out / "history.json").read_text())["history"]
    assert {"loss", "val_f1", "val_auc", "val_loss"} <= set(history)
    args = list(args)
    args[args.index("--epochs") + 1] = "2"
    assert main(args + ["--resume"]) == 0
    assert json.loads((out / "history.json").read_text())["epochs"] == 2
    assert main(args) != 0
    assert "already holds a run" in capsys.readouterr().err


def test_detect_prints_json_and_writes_a_mask(run, tmp_path, capsys):
    out, _ = run
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (13, 9, 3), dtype=np.uint8)
    after = before.copy()
    after[2:6, 3:7] = 255
    Image.fromarray(before).save(tmp_path / "a.png")
    Image.fromarray(after).save(tmp_path / "b.png")
    capsys.readouterr()
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "b.png"), "--json", "--out-mask", str(tmp_path / "m.png"),
                 "--threshold", "0.0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"changed_fraction", "score", "regions"}
    assert result["changed_fraction"] == 1.0 and result["regions"] == [[0, 0, 12, 8]]
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == (13, 9) and set(np.unique(mask)) == {255}


def test_detect_errors_are_one_line(run, tmp_path, capsys):
    out, _ = run
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    capsys.readouterr()
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "b.png")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a pair must have one size" in err
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "bad.png")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable image" in err


def test_detect_refuses_an_image_past_the_pixel_limit_before_decoding(run, tmp_path, capsys, monkeypatch):
    """The pair is read by the same checked decoder as training and predict."""
    out, _ = run
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setenv("MINIRES_MAX_IMAGE_PIXELS", "32")
    capsys.readouterr()
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the limit of 32" in err


def test_evaluate_scores_the_held_out_pairs_beside_the_baselines(run, tmp_path, capsys):
    out, _ = run
    capsys.readouterr()
    args = ["changes", "evaluate", str(out / "model.npz"), "--dataset", "synthetic",
            "--synthetic-size", "40"]
    assert main(args + ["--json", "--grid", str(tmp_path / "grid.png"), "--grid-rows", "3"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "held out of its training" in captured.err
    # 40 images, val_split 0.1: the 4 images training held out, one pair each, seed 0 + 2.
    assert report["pairs"] == 4 and report["images"] == "held-out" and report["seed"] == 2
    for method in ("model", "otsu", "best"):
        assert 0.0 <= report[method]["f1"] <= 1.0
    assert report["best"]["f1"] >= report["otsu"]["f1"]
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * (32 * 4 + 2) + 2, 6 * (32 * 4 + 2) + 2, 3)
    assert main(args + ["--images", "all", "--pairs", "6", "--seed", "5"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("6 pairs") and "change net (threshold 0.5)" in text
    assert "difference, Otsu" in text and "difference, best" in text


def test_evaluate_errors_are_one_line(run, tmp_path, capsys):
    out, _ = run
    capsys.readouterr()
    # Other data than the model's: it cannot say which images it held out.
    assert main(["changes", "evaluate", str(out / "model.npz"), "--dataset", "synthetic",
                 "--synthetic-size", "30", "--images", "held-out"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --images all" in err
    assert main(["changes", "evaluate", str(tmp_path / "missing.npz"), "--dataset", "synthetic"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.npz" in err
    (tmp_path / "bad.npz").write_bytes(b"not an archive")
    assert main(["changes", "evaluate", str(tmp_path / "bad.npz"), "--dataset", "synthetic"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.npz" in err
    assert main(["changes", "evaluate", str(out / "model.npz"), "--dataset", "synthetic",
                 "--synthetic-size", "40", "--image-size", "30", "--data", str(tmp_path)]) != 0
    assert capsys.readouterr().err.count("\n") == 1


def test_train_refuses_a_resume_without_checkpoint_before_making_pairs(tmp_path, capsys, monkeypatch):
    import minires.changes.train as change_train

    def no_pairs(*args, **kwargs):
        raise AssertionError("pairs were made for a run that is refused")

    monkeypatch.setattr(change_train, "change_dataset", no_pairs)
    args = ["changes", "train", "--dataset", "synthetic", "--synthetic-size", "40", "--out",
            str(tmp_path / "run")]
    (tmp_path / "run").mkdir()
    assert main(args + ["--resume"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint to resume from" in err
    (tmp_path / "run" / "history.json").write_text("{}")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another run's files" in err


def test_detect_runs_numpy_unless_told_and_says_so(run, tmp_path, capsys, monkeypatch):
    """One pair is over before Numba's kernels would be loaded: numpy is detect's default."""
    from minires import backend

    out, _ = run
    monkeypatch.delenv("MINIRES_BACKEND", raising=False)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    capsys.readouterr()
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "a.png")]) == 0
    assert "backend numpy (the default for this command" in capsys.readouterr().err
    assert backend.get_backend() == "numpy"
    monkeypatch.setenv("MINIRES_BACKEND", "numba")
    assert main(["changes", "detect", str(out / "model.npz"), str(tmp_path / "a.png"),
                 str(tmp_path / "a.png")]) == 0
    assert "backend numba (MINIRES_BACKEND)" in capsys.readouterr().err
