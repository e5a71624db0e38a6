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


def _caches():
    """The image caches in the minires cache directory (the test's own, see conftest.py)."""
    from minires.data.cache import minires_cache_dir

    where = minires_cache_dir() / "images"
    return sorted(where.iterdir()) if where.is_dir() else []


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
    cache_files = [p.name for p in _caches()]
    assert len(cache_files) == 1 and cache_files[0].startswith("images-") and "-32x32-" in cache_files[0]

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
    assert len(_caches()) == 1


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
    names = [p.name for p in _caches()]
    assert len(names) == 2 and "16x16" in names[0] and "32x32" in names[1]


def test_an_unwritable_cache_directory_only_costs_decoding_again(tree, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(folders, "atomic_write", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, _, _ = load_image_folder(tree, progress=False)
    assert len(x) == 8 and not _caches()
    assert any("could not write a cache file" in str(w.message) for w in caught)


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
    cache_file = _caches()[0]
    cache_file.write_bytes(b"garbage")
    (x2, _, _), _ = _load(tree)
    numpy.testing.assert_array_equal(x1, x2)
    assert cache_file.stat().st_size > 100


def test_cache_false_writes_nothing(tree):
    _load(tree, cache=False)
    assert not _caches()


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


# --- limits ---------------------------------------------------------------------------------

def _png_declaring(path, width, height, bit_depth=8, colour=2):
    """A PNG whose header declares width x height but whose data is one empty row: a few
    hundred bytes that Pillow opens without decoding anything."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [20_000, 100_000])
def test_an_image_with_too_many_pixels_is_refused_before_decoding(tmp_path, side):
    path = _png_declaring(tmp_path / "huge.png", side, side)
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"huge.png.*pixels.*limit"):
        folders.decode_image(path, (32, 32))


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    _solid("RGB", (64, 64), (1, 2, 3)).save(path)
    assert folders.decode_image(path, (8, 8)).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="4096 pixels"):
        folders.decode_image(path, (8, 8), max_pixels=4000)
    monkeypatch.setenv("MINIRES_MAX_IMAGE_PIXELS", "4000")
    with pytest.raises(ValueError, match="MINIRES_MAX_IMAGE_PIXELS"):
        folders.decode_image(path, (8, 8))
    monkeypatch.setenv("MINIRES_MAX_IMAGE_PIXELS", "many")
    with pytest.raises(ValueError, match="MINIRES_MAX_IMAGE_PIXELS"):
        folders.decode_image(path, (8, 8))


def test_a_target_size_beyond_the_limit_is_refused_before_allocating(tmp_path):
    """A model file may declare any input size; decoding to it must not allocate it blindly."""
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    _solid("RGB", (8, 8), (0, 0, 0)).save(root / "a" / "x.png")
    with pytest.raises(ValueError, match="image_size.*pixels"):
        load_image_folder(root, image_size=(20_000, 20_000), progress=False)
    with pytest.raises(ValueError, match="pixels"):
        folders.decode_image(root / "a" / "x.png", (20_000, 20_000))


def test_16_bit_images_decode_without_float64_copies(tmp_path):
    import tracemalloc

    side = 2000
    path = tmp_path / "deep.png"
    Image.fromarray(numpy.full((side, side), 40000, numpy.uint16)).save(path)
    tracemalloc.start()
    try:
        image = folders.decode_image(path, (32, 32))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image[0, 0].tolist() == [156, 156, 156]          # round(40000 / 257)
    assert peak < 5 * side * side, peak                     # float64 would take 8 bytes a pixel


def test_16_bit_values_round_as_before_and_32_bit_values_clip(tmp_path):
    every = numpy.arange(65536, dtype=numpy.uint16).reshape(256, 256)
    path = tmp_path / "every.png"
    Image.fromarray(every).save(path)
    decoded = folders.decode_image(path, (256, 256))[..., 0]
    expected = numpy.clip(numpy.rint(every / 257.0), 0, 255).astype(numpy.uint8)
    numpy.testing.assert_array_equal(decoded, expected)
    wide = numpy.array([[-70000, -1, 0, 128, 65535, 70000, 2 ** 31 - 1, -2 ** 31]], numpy.int32)
    path = tmp_path / "wide.tif"
    Image.fromarray(wide, "I").save(path)
    decoded = folders.decode_image(path, (1, 8))[0, :, 0]
    assert decoded.tolist() == [0, 0, 0, 0, 255, 255, 255, 0]


def test_the_cache_lives_in_the_minires_cache_never_in_the_data_folder(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRES_CACHE", str(tmp_path / "mc"))
    before = sorted(p.name for p in tree.rglob("*"))
    _load(tree)
    assert sorted(p.name for p in tree.rglob("*")) == before
    assert len(list((tmp_path / "mc" / "images").iterdir())) == 1
