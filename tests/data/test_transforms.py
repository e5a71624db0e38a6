"""Scaling, resizing and augmentation of NHWC batches."""

from __future__ import annotations

import numpy
import pytest

from minires.data.transforms import Augmenter, affine_sample, augment, resize_images, scale_pixels


def _batch(n=8, h=12, w=10, seed=0, dtype=numpy.float32):
    return numpy.random.default_rng(seed).random((n, h, w, 3)).astype(dtype)


# --- scale_pixels and resize_images --------------------------------------------------------

def test_scale_pixels_is_x_over_255_in_float32():
    x = numpy.array([[0, 1, 128, 255]], dtype=numpy.uint8)
    out = scale_pixels(x)
    assert out.dtype == numpy.float32
    numpy.testing.assert_array_equal(out, x.astype(numpy.float32) / numpy.float32(255.0))
    assert scale_pixels(x, dtype=numpy.float64).dtype == numpy.float64
    with pytest.raises(TypeError, match="scale_pixels: x must be uint8"):
        scale_pixels(out)


@pytest.mark.parametrize("size", [(20, 20), (45, 45), (16, 40), (7, 3)])
def test_resize_matches_pillow_bilinear(size):
    Image = pytest.importorskip("PIL.Image")
    x = _batch(n=2, h=32, w=30, dtype=numpy.float64)
    out = resize_images(x, size)
    assert out.shape == (2, *size, 3) and out.dtype == numpy.float64
    for n in range(2):
        for c in range(3):
            plane = Image.fromarray(x[n, :, :, c].astype(numpy.float32), mode="F")
            ref = numpy.asarray(plane.resize(size[::-1], Image.Resampling.BILINEAR))
            numpy.testing.assert_allclose(out[n, :, :, c], ref, atol=1e-5)


def test_resize_keeps_dtype_and_constants():
    x = numpy.full((1, 9, 9, 3), 200, numpy.uint8)
    out = resize_images(x, 4)
    assert out.dtype == numpy.uint8 and out.shape == (1, 4, 4, 3) and (out == 200).all()
    same = resize_images(x, (9, 9))
    assert same is not x and numpy.array_equal(same, x)
    with pytest.raises(ValueError, match="resize_images: x must be NHWC"):
        resize_images(x[0], 4)


# --- augmentation ------------------------------------------------------------------------

def test_default_augmenter_returns_the_input():
    x = _batch()
    assert Augmenter().is_identity
    assert Augmenter()(x, numpy.random.default_rng(0)) is x
    assert augment(x, numpy.random.default_rng(0)) is x


def test_identity_affine_is_exact():
    x = _batch(n=3, h=11, w=14)
    for fill in ("reflect", "zero"):
        out = affine_sample(x, numpy.zeros(3), numpy.ones(3), fill)
        numpy.testing.assert_array_equal(out, x)


def test_quarter_turn_is_rot90():
    x = _batch(n=2, h=9, w=9, dtype=numpy.float64)
    out = affine_sample(x, numpy.full(2, numpy.pi / 2), numpy.ones(2))
    numpy.testing.assert_allclose(out, numpy.rot90(x, k=-1, axes=(1, 2)), atol=1e-12)


def test_zooming_out_with_zero_fill_darkens_the_border():
    x = numpy.ones((1, 16, 16, 3), numpy.float32)
    out = affine_sample(x, numpy.zeros(1), numpy.full(1, 0.5), "zero")
    assert out[0, 0, 0, 0] == 0 and out[0, 8, 8, 0] == 1
    reflected = affine_sample(x, numpy.zeros(1), numpy.full(1, 0.5), "reflect")
    numpy.testing.assert_allclose(reflected, x)


def test_flip_is_exact_and_random():
    x = _batch(n=64)
    out = Augmenter(flip=True)(x, numpy.random.default_rng(1))
    flipped = [numpy.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    kept = [numpy.array_equal(o, i) for o, i in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54
    assert numpy.array_equal(x, _batch(n=64))          # the input is not modified


@pytest.mark.parametrize("fill, mode", [("zero", "constant"), ("reflect", "reflect")])
def test_crop_is_a_window_of_the_padded_image(fill, mode):
    x = _batch(n=6)
    out = Augmenter(crop_padding=3, fill=fill)(x, numpy.random.default_rng(5))
    offsets = numpy.random.default_rng(5).integers(0, 7, size=(6, 2))
    padded = numpy.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode=mode)
    for k, (top, left) in enumerate(offsets):
        numpy.testing.assert_array_equal(out[k], padded[k, top:top + 12, left:left + 10])


def test_standard_augmentation_keeps_shape_dtype_and_is_deterministic():
    for dtype in (numpy.float32, numpy.float64):
        x = _batch(n=16, h=32, w=32, dtype=dtype)
        augmenter = Augmenter.standard()
        a = augmenter(x, numpy.random.default_rng(42))
        b = augmenter(x, numpy.random.default_rng(42))
        c = augmenter(x, numpy.random.default_rng(43))
        assert a.shape == x.shape and a.dtype == dtype
        numpy.testing.assert_array_equal(a, b)
        assert not numpy.array_equal(a, c)
        assert 0.0 <= a.min() and a.max() <= 1.0       # bilinear stays within the input range


def test_rotation_and_scale_change_the_images():
    x = _batch(n=4, h=16, w=16)
    out = augment(x, numpy.random.default_rng(0), rotation=10.0, scale=(0.9, 1.1))
    assert out.shape == x.shape and not numpy.allclose(out, x)


@pytest.mark.parametrize("kwargs, message", [
    (dict(crop_padding=-1), "crop_padding"),
    (dict(rotation=-5.0), "rotation"),
    (dict(scale=(1.1, 0.9)), "scale"),
    (dict(scale=(0.0, 1.0)), "scale"),
    (dict(fill="wrap"), "fill"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=f"Augmenter: {message}"):
        Augmenter(**kwargs)


def test_bad_batches_and_generators():
    augmenter = Augmenter(flip=True)
    with pytest.raises(TypeError, match="floating-point batch"):
        augmenter(numpy.zeros((1, 4, 4, 3), numpy.uint8), numpy.random.default_rng(0))
    with pytest.raises(ValueError, match="NHWC with 4 dims"):
        augmenter(numpy.zeros((4, 4, 3), numpy.float32), numpy.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        augmenter(numpy.zeros((1, 4, 4, 3), numpy.float32), numpy.random.RandomState(0))
