"""``minires verify`` on the command line: exit 0 when nothing disagrees, 1 when something
does, 2 for bad usage (one line); reproducers saved and replayed."""

import json
from pathlib import Path

import numpy as np
import pytest

from minires import frameworks
from minires.cli import main

SMALL = ["--dtype", "float64", "--cases", "1"]


@pytest.mark.parametrize("argv, words", [
    (["--against", "tensorflow"], ["--against", "unknown 'tensorflow'", "onnxruntime"]),
    (["--ops", "conv3d,relu"], ["--ops", "unknown 'conv3d'"]),
    (["--dtype", "float16"], ["--dtype", "unknown 'float16'"]),
    (["--against", "ghost"], ["not installed", "ghost"]),
    (["--replay", "nowhere.json"], ["nowhere.json", "no such file"]),
    (["nowhere.npz"], ["nowhere.npz", "no such file"]),
    (["--replay", "x.json", "--ops", "relu"], ["--replay", "takes no"]),
])
def test_bad_usage_is_one_line_and_exit_2(argv, words, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(frameworks.FRAMEWORKS, "ghost", (str(tmp_path / "ghost.py"), {}))
    assert main(["verify", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert captured.out == ""


def test_a_bad_option_value_is_argparse_s_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--cases", "0"])
    assert stop.value.code == 2 and "--cases" in capsys.readouterr().err


@pytest.mark.torch
def test_a_model_file_is_checked_whole(tmp_path, capsys):
    pytest.importorskip("torch")
    from tests.interop.toys import tiny_resnet

    model = tiny_resnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "tiny.npz")
    out = tmp_path / "v.json"
    code = main(["verify", str(tmp_path / "tiny.npz"), "--against", "torch", "--dtype", "float64",
                 "--steps", "1", "--json", str(out)])
    assert code == 0, capsys.readouterr()
    cells = json.loads(out.read_text())["cells"]
    assert {c["op"] for c in cells} == {f"model:{model.name}"} and all(c["framework"] == "torch" for c in cells)
    outputs = {c["output"] for c in cells}
    assert {"predictions", "loss", "adam:step1", "sgd:step1"} <= outputs
    assert sum(o.startswith("grad:") for o in outputs) == len(model.get_weights())


@pytest.mark.torch
def test_agreement_exits_0_and_writes_json_and_markdown(tmp_path, capsys):
    pytest.importorskip("torch")
    out_json, out_md = tmp_path / "v.json", tmp_path / "v.md"
    code = main(["verify", "--against", "torch", "--ops", "relu,softmax", *SMALL, "--json", str(out_json),
                 "--markdown", str(out_md)])
    assert code == 0
    text = capsys.readouterr().out
    assert "relu" in text and "ok 0.0e+00" in text and "0 disagree" in text
    data = json.loads(out_json.read_text())
    assert {(c["op"], c["output"]) for c in data["cells"]} == {("relu", "y"), ("relu", "dx"),
                                                               ("softmax", "y"), ("softmax", "dx")}
    assert data["versions"]["torch"]
    assert "| op | output | dtype | torch |" in out_md.read_text()


@pytest.mark.torch
def test_a_disagreement_exits_1_is_saved_and_replays(tmp_path, capsys, register):
    pytest.importorskip("torch")
    register("faulty", "gradient:dense:dw")
    saved = tmp_path / "failures"
    code = main(["verify", "--against", "faulty", "--ops", "dense", *SMALL, "--save-failures", str(saved)])
    assert code == 1
    text = capsys.readouterr().out
    assert "dense  dw      float64  FAIL" in text and "outlier: faulty" in text
    files = sorted(saved.glob("*.json"))
    assert files and len(files) == len(list(saved.glob("*.npz")))
    assert str(files[0]) in text

    meta = json.loads(files[0].read_text())
    assert (meta["op"], meta["dtype"], meta["framework"]) == ("dense", "float64", "faulty")
    assert list(meta["outputs"]) == ["dw"] and meta["outputs"]["dw"]["outlier"] == "faulty"
    assert set(meta["versions"]) == {"minires", "torch", "fault"}
    assert meta["versions"]["fault"] == "gradient:dense:dw"
    with np.load(files[0].with_suffix(".npz"), allow_pickle=False) as arrays:
        assert {"input.x", "input.w", "input.dy", "framework.dw", "minires.dw"} <= set(arrays.files)
        np.testing.assert_allclose(arrays["framework.dw"], arrays["minires.dw"] * (1 + 1e-6), rtol=1e-12)

    assert main(["verify", "--replay", str(files[0])]) == 1
    assert "still disagrees" in capsys.readouterr().out
    register("faulty", "")                      # the fault mended: the case agrees now
    assert main(["verify", "--replay", str(files[0].with_suffix(".npz"))]) == 0
    replayed = capsys.readouterr().out
    assert "agrees now" in replayed and "dw" in replayed


FINDINGS = Path(__file__).resolve().parents[2] / "docs" / "findings"


@pytest.mark.torch
@pytest.mark.parametrize("case", sorted(p.name for p in FINDINGS.glob("*.json")))
def test_the_committed_findings_still_reproduce(case, capsys):
    """docs/frameworks.md reports these as findings on the versions pinned for the tests: a
    release that fixes one makes this fail, and the docs must say so."""
    from minires.frameworks import installed

    path = FINDINGS / case
    framework = json.loads(path.read_text())["framework"]
    if not installed(framework):
        pytest.skip(f"{framework} is not installed")
    assert main(["verify", "--replay", str(path)]) == 1
    assert "still disagrees" in capsys.readouterr().out
