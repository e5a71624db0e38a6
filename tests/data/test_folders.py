"""Image folders: every mode decoded to RGB at one size, bad files skipped by name, cached."""

from __future__ import annotations

import os
import sys
import warnings

import numpy
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from minires.data import folders  # noqa: E402
from minires.data.folders import SkippedFilesWarning, load_image_folder  # noqa: E402


def _solid(mode, size, value):
    return Image.new(mode, size, value)


@pytest.fixture
def tree(tmp_path):
    """root/{bird,cat,dog}: images of many sizes and modes, one corrupt file, one text file."""
    root = tmp_path / "images"
    for name in ("dog", "cat", "bird"):
        (root / name).mkdir(parents=True)
    _solid("RGB", (40, 30), (255, 0, 0)).save(root / "bird" / "red.png")
    _solid("L", (32, 32), 128).save(root / "bird" / "grey.jpg", quality=95)
    _solid("RGBA", (50, 20), (0, 0, 255, 100)).save(root / "bird" / "blue_alpha.png")
    palette = _solid("P", (16, 16), 0)
    palette.putpalette([0, 255, 0] + [0] * 765)
    palette.info["transparency"] = 0
    palette.save(root / "cat" / "green_palette.png", transparency=0)
    _solid("CMYK", (64, 48), (0, 0, 0, 0)).save(root / "cat" / "white_cmyk.jpg", quality=95)
    Image.fromarray(numpy.full((20, 24), 65535, numpy.uint16)).save(root / "cat" / "white16.png")
    nested = root / "dog" / "more"
    nested.mkdir()
    _solid("1", (33, 31), 1).save(nested / "white_1bit.png")
    _solid("LA", (32, 32), (0, 255)).save(root / "dog" / "black_la.png")
    (root / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (root / "cat" / "notes.txt").write_text("not an image\n")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "README").write_text("files directly in the root are ignored\n")
    return root


def _load(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_image_folder(root, progress=False, **kwargs)
    skipped = [w.message for w in caught if issubclass(w.category, SkippedFilesWarning)]
    return result, skipped


def test_decodes_every_mode_to_rgb_at_the_size(tree):
    (x, y, names), skipped = _load(tree)
    assert names == ["bird", "cat", "dog"]
    assert x.dtype == numpy.uint8 and x.shape == (8, 32, 32, 3)
    assert y.dtype == numpy.int64 and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    # Sorted by relative path inside each class: bird/blue_alpha, bird/grey, bird/red, ...
    colours = [tuple(int(c) for c in image[16, 16]) for image in x]
    assert colours[0] == (0, 0, 255)                 # alpha dropped
    assert all(abs(c - 128) <= 1 for c in colours[1])
    assert colours[2] == (255, 0, 0)
    assert colours[3] == (0, 255, 0)                 # palette with transparency
    assert min(colours[4]) >= 250                    # CMYK white
    assert colours[5] == (255, 255, 255)             # 16-bit white is 255, not clipped 65535
    assert colours[6] == (0, 0, 0)                   # LA black
    assert colours[7] == (255, 255, 255)             # 1-bit, in a nested folder
    assert len(skipped) == 1
    reported = dict(skipped[0].skipped)
    assert set(reported) == {"dog/corrupt.jpg", "cat/notes.txt"}
    assert "dog/corrupt.jpg" in str(skipped[0]) and "cat/notes.txt" in str(skipped[0])


def test_16_bit_values_scale_to_8_bits(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    ramp = numpy.tile(numpy.array([0, 257, 32896, 65535], numpy.uint16), (4, 1))
    Image.fromarray(ramp).save(root / "a" / "ramp.png")
    (x, _, _), _ = _load(root, image_size=(4, 4), cache=False)
    assert x[0, 0, :, 0].tolist() == [0, 1, 128, 255]


def test_image_size_is_height_then_width(tree):
    (x, _, _), _ = _load(tree, image_size=(20, 36), cache=False)
    assert x.shape == (8, 20, 36, 3)


def test_second_load_reads_the_cache_without_decoding(tree, monkeypatch):
    (x1, y1, names1), _ = _load(tree)
    cache_files = [p.name for p in tree.iterdir() if p.suffix == ".npz"]
    assert len(cache_files) == 1 and cache_files[0].startswith(".minires-images-32x32-")
    assert not [p for p in tree.iterdir() if p.name.endswith(".part")]

    def fail(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(folders, "decode_image", fail)
    monkeypatch.setitem(sys.modules, "PIL", None)       # not even Pillow is needed
    (x2, y2, names2), skipped = _load(tree)
    numpy.testing.assert_array_equal(x1, x2)
    numpy.testing.assert_array_equal(y1, y2)
    assert names1 == names2
    assert len(skipped) == 1 and len(skipped[0].skipped) == 2   # still reported


def test_a_changed_folder_is_decoded_again(tree, monkeypatch):
    _load(tree)
    _solid("RGB", (32, 32), (1, 2, 3)).save(tree / "dog" / "new.png")
    calls = []
    real = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda *a: calls.append(a) or real(*a))
    (x, _, _), _ = _load(tree)
    assert len(x) == 9 and len(calls) == 11
    # The stale cache was replaced, not kept beside the new one.
    assert len([p for p in tree.iterdir() if p.suffix == ".npz"]) == 1


def test_a_touched_file_changes_the_fingerprint(tree, monkeypatch):
    _load(tree)
    target = tree / "bird" / "red.png"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    calls = []
    real = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda *a: calls.append(a) or real(*a))
    _load(tree)
    assert calls


def test_each_image_size_has_its_own_cache(tree):
    _load(tree, image_size=(32, 32))
    _load(tree, image_size=(16, 16))
    names = sorted(p.name for p in tree.iterdir() if p.suffix == ".npz")
    assert len(names) == 2 and "16x16" in names[0] and "32x32" in names[1]


def test_an_unwritable_root_caches_in_the_minires_cache(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRES_CACHE", str(tmp_path / "mc"))
    real = folders.atomic_write

    def refuse_root(path):
        if path.parent == tree:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(folders, "atomic_write", refuse_root)
    _load(tree)
    assert not [p for p in tree.iterdir() if p.suffix == ".npz"]
    stored = list((tmp_path / "mc" / "images").iterdir())
    assert len(stored) == 1 and stored[0].name.startswith("images-")
    monkeypatch.setattr(folders, "decode_image", lambda *a: 1 / 0)
    (x, _, _), _ = _load(tree)
    assert len(x) == 8


def test_a_read_only_root_is_left_alone(tree, tmp_path, monkeypatch):
    # No write bit at all: even a user the permissions would not stop (root) writes elsewhere.
    monkeypatch.setenv("MINIRES_CACHE", str(tmp_path / "mc"))
    tree.chmod(0o555)
    try:
        _load(tree)
        assert not [p for p in tree.iterdir() if p.suffix == ".npz"]
        assert len(list((tmp_path / "mc" / "images").iterdir())) == 1
    finally:
        tree.chmod(0o755)


def test_a_corrupt_cache_is_ignored_and_rewritten(tree):
    (x1, _, _), _ = _load(tree)
    cache_file = next(p for p in tree.iterdir() if p.suffix == ".npz")
    cache_file.write_bytes(b"garbage")
    (x2, _, _), _ = _load(tree)
    numpy.testing.assert_array_equal(x1, x2)
    assert cache_file.stat().st_size > 100


def test_cache_false_writes_nothing(tree):
    _load(tree, cache=False)
    assert not [p for p in tree.iterdir() if p.suffix == ".npz"]


def test_empty_class_folder_is_an_error(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _solid("RGB", (8, 8), (0, 0, 0)).save(root / "a" / "x.png")
    with pytest.raises(ValueError, match="b holds no files"):
        load_image_folder(root, progress=False)


def test_class_with_only_unreadable_files_is_an_error(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _solid("RGB", (8, 8), (0, 0, 0)).save(root / "a" / "x.png")
    (root / "b" / "broken.png").write_bytes(b"nope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="b in .* hold no readable image"):
            load_image_folder(root, progress=False)


def test_no_class_folders_is_an_error(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        load_image_folder(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_image_folder(tmp_path / "missing")


def test_bad_image_size_is_an_error(tree):
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tree, image_size=(0, 32))


def test_missing_pillow_names_the_extra(tree, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install minires\[images\]"):
        load_image_folder(tree, cache=False)
