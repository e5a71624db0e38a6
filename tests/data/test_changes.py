"""Change pairs: deterministic, the mask exactly the changes, nuisance never in the mask."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy
import pytest

from minires.data import make_synthetic
from minires.data.change_baselines import best_threshold, difference_map, pair_scores, roc_auc
from minires.data.changes import (CHANGE_KINDS, CHANGE_LEVEL, ChangePairs, Nuisance,
                                  _translate, iter_change_pairs, make_change_pairs)

pytest.importorskip("PIL")      # the default nuisance re-encodes JPEG

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CIFAR = SHARED / "data" / "cifar10-jpeg" / "train"
SHIFT_ONLY = Nuisance(contrast=0.0, colour=0.0, brightness=0.0, noise=(0.0, 0.0), jpeg_quality=None)


@pytest.fixture(scope="module")
def images():
    return make_synthetic(120, seed=3)[0]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """A few CIFAR-10 JPEGs copied into a folder of our own (the loader caches beside them)."""
    if not CIFAR.is_dir():
        pytest.skip(f"the shared CIFAR-10 JPEGs are not beside the repository ({CIFAR})")
    from minires.data import load_image_folder
    root = tmp_path_factory.mktemp("cifar")
    for folder in sorted(CIFAR.iterdir())[:10]:
        (root / folder.name).mkdir()
        for file in sorted(folder.iterdir())[:30]:
            shutil.copy(file, root / folder.name / file.name)
    return load_image_folder(root, progress=False)[0]


def _equal(a: ChangePairs, b: ChangePairs) -> bool:
    arrays = ("before", "after", "mask")
    return all(numpy.array_equal(getattr(a, k), getattr(b, k)) for k in arrays) \
        and a.kinds == b.kinds


def _levels(pairs: ChangePairs) -> numpy.ndarray:
    return numpy.abs(pairs.after.astype(int) - pairs.before.astype(int)).max(axis=-1)


def test_shapes_and_dtypes(images):
    pairs = make_change_pairs(images[:10], seed=0)
    assert len(pairs) == 10
    assert pairs.before.shape == pairs.after.shape == (10, 32, 32, 3)
    assert pairs.before.dtype == pairs.after.dtype == numpy.uint8
    assert pairs.mask.shape == (10, 32, 32) and pairs.mask.dtype == bool
    assert len(pairs.kinds) == 10 and all(set(k) <= set(CHANGE_KINDS) for k in pairs.kinds)
    assert numpy.array_equal(pairs.changed, [bool(k) for k in pairs.kinds])
    assert len(make_change_pairs(images, count=250)) == 250       # sources repeat
    assert len(make_change_pairs(images, count=0)) == 0


def test_same_seed_same_pairs_other_seed_other_pairs(images):
    a = make_change_pairs(images[:20], seed=7)
    assert _equal(a, make_change_pairs(images[:20], seed=7))
    b = make_change_pairs(images[:20], seed=8)
    assert not numpy.array_equal(a.after, b.after) and not numpy.array_equal(a.mask, b.mask)


def test_batches_equal_one_call(images):
    whole = make_change_pairs(images, count=30, seed=1, start=5)
    parts = [make_change_pairs(images, count=c, seed=1, start=s) for s, c in ((5, 12), (17, 18))]
    for name in ("before", "after", "mask"):
        assert numpy.array_equal(getattr(whole, name),
                                 numpy.concatenate([getattr(p, name) for p in parts]))
    assert whole.kinds == parts[0].kinds + parts[1].kinds


def test_epochs_stream_fresh_pairs_of_every_image(images):
    small = images[:10]
    epoch1 = list(iter_change_pairs(small, 4, seed=2, epoch=1))
    assert [len(b) for b in epoch1] == [4, 4, 2]
    joined = make_change_pairs(small, seed=2, start=10)
    assert numpy.array_equal(numpy.concatenate([b.after for b in epoch1]), joined.after)
    epoch0 = make_change_pairs(small, seed=2)
    assert numpy.array_equal(epoch0.before, joined.before)        # the same images ...
    assert not numpy.array_equal(epoch0.after, joined.after)      # ... changed otherwise


def test_without_nuisance_after_differs_from_before_exactly_on_the_mask(images):
    pairs = make_change_pairs(images, seed=0, nuisance=False)
    assert numpy.array_equal(pairs.before, images)
    levels = _levels(pairs)
    assert levels[~pairs.mask].max() == 0
    assert levels[pairs.mask].min() >= CHANGE_LEVEL
    assert pairs.mask.any()


def test_nuisance_alone_is_never_in_the_mask(images):
    pairs = make_change_pairs(images[:40], seed=0, no_change_fraction=1.0)
    assert not pairs.mask.any() and all(k == () for k in pairs.kinds)
    assert numpy.array_equal(pairs.before, images[:40])
    # The nuisance is there, and strong: far more than rounding.
    assert (_levels(pairs).mean(axis=(1, 2)) > 3).all()


def test_the_mask_moves_with_the_shift(images):
    clean = make_change_pairs(images[:40], seed=4, nuisance=False)
    shifted = make_change_pairs(images[:40], seed=4, nuisance=SHIFT_ONLY)
    moved = 0
    for i in range(40):
        found = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if numpy.array_equal(shifted.after[i], _translate(clean.after[i], dy, dx))]
        assert found, i
        dy, dx = found[0]
        assert numpy.array_equal(shifted.mask[i], _translate(clean.mask[i], dy, dx))
        moved += (dy, dx) != (0, 0)
    assert moved > 20


@pytest.mark.parametrize("max_changes, changes", [(1, 1), (3, 3)])
def test_change_sizes_are_a_few_pixels_to_a_tenth_of_the_image(images, max_changes, changes):
    pairs = make_change_pairs(images, seed=5, nuisance=False, no_change_fraction=0.0,
                              max_changes=max_changes)
    area = pairs.mask.sum(axis=(1, 2))
    assert (area >= 4).all()
    assert area.max() <= changes * 0.1 * 32 * 32
    if max_changes == 1:
        assert area.min() < 20 and area.max() > 60           # the whole range is used


def test_the_no_change_fraction(images):
    pairs = make_change_pairs(images, count=600, seed=6, nuisance=False)
    assert abs((~pairs.changed).mean() - 0.3) < 0.06

    def changed(fraction):
        pairs = make_change_pairs(images, seed=6, no_change_fraction=fraction, nuisance=False)
        return pairs.changed

    assert changed(0.0).all() and not changed(1.0).any()


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_each_kind_changes_the_image(images, kind):
    pairs = make_change_pairs(images[:30], seed=9, nuisance=False, no_change_fraction=0.0,
                              kinds=(kind,), max_changes=1)
    made = [k for k in pairs.kinds if k]
    assert made.count((kind,)) >= 27          # a rare fallback to "add" is allowed
    assert pairs.changed.all()


def test_the_default_mix_uses_every_kind(images):
    pairs = make_change_pairs(images, seed=0)
    used = {k for kinds in pairs.kinds for k in kinds}
    assert used == set(CHANGE_KINDS)
    assert max(len(k) for k in pairs.kinds) == 3


def test_before_nuisance(images):
    plain = make_change_pairs(images[:10], seed=0)
    both = make_change_pairs(images[:10], seed=0, before_nuisance=True)
    assert numpy.array_equal(both.mask, plain.mask) and numpy.array_equal(both.after, plain.after)
    assert not numpy.array_equal(both.before, images[:10])


def _baseline_f1(pairs) -> float:
    return best_threshold(difference_map(pairs.before, pairs.after), pairs.mask)[1]


def _baseline_auc(pairs) -> float:
    return roc_auc(pair_scores(difference_map(pairs.before, pairs.after)), pairs.changed)


def test_nuisance_defeats_the_pixel_difference(images):
    # The best single threshold on |after - before| finds the changes exactly without
    # nuisance, and is clearly wrong with it: the point of learning a detector.
    clean = make_change_pairs(images, seed=0, nuisance=False)
    noisy = make_change_pairs(images, seed=0)
    assert _baseline_f1(clean) == 1.0 and _baseline_auc(clean) == 1.0
    assert _baseline_f1(noisy) < 0.6 and _baseline_auc(noisy) < 0.85


def test_cifar_folder(cifar):
    pairs = make_change_pairs(cifar, seed=0, nuisance=False)
    levels = _levels(pairs)
    assert levels[~pairs.mask].max() == 0 and levels[pairs.mask].min() >= CHANGE_LEVEL
    assert {k for kinds in pairs.kinds for k in kinds} == set(CHANGE_KINDS)
    assert _baseline_f1(pairs) == 1.0
    noisy = make_change_pairs(cifar, seed=0)
    assert _equal(noisy, make_change_pairs(cifar, seed=0))
    assert _baseline_f1(noisy) < 0.6


@pytest.mark.parametrize("options, message", [
    ({"count": -1}, "count"),
    ({"seed": -3}, "seed"),
    ({"no_change_fraction": 1.5}, "no_change_fraction"),
    ({"kinds": ("paste", "smudge")}, "kinds"),
    ({"kinds": ()}, "kinds"),
    ({"max_changes": 0}, "max_changes"),
    ({"max_fraction": 0.001}, "max_fraction"),
    ({"nuisance": "strong"}, "nuisance"),
])
def test_bad_options_are_named(images, options, message):
    with pytest.raises((ValueError, TypeError), match=f"make_change_pairs: {message}"):
        make_change_pairs(images[:2], **options)


@pytest.mark.parametrize("bad", [numpy.zeros((2, 8, 8, 3), numpy.float32),
                                 numpy.zeros((8, 8, 3), numpy.uint8),
                                 numpy.zeros((2, 8, 8, 1), numpy.uint8),
                                 numpy.zeros((0, 8, 8, 3), numpy.uint8), [[1, 2]]])
def test_bad_images_are_named(bad):
    with pytest.raises(ValueError, match="make_change_pairs: images must be"):
        make_change_pairs(bad)


def test_jpeg_without_pillow_names_the_extra(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"minires\[images\]"):
        make_change_pairs(images[:2])
    pairs = make_change_pairs(images[:2], nuisance=Nuisance(jpeg_quality=None))
    assert len(pairs) == 2
