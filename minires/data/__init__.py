"""Datasets for minires, loaded on the CPU as NumPy arrays (the trainer moves them later).

    from minires import data

    (x_train, y_train), (x_test, y_test) = data.load_data()        # CIFAR-10, official format
    x, y, class_names = data.load_image_folder("train/")           # one folder per class
    x, y = data.make_synthetic(10_000, seed=0)                     # shapes, no files
    x = data.scale_pixels(x)                                       # uint8 -> float32 in [0, 1]
    train, val = data.stratified_split(y, 0.1, seed=0)             # held-out indices
    batch = data.Augmenter.standard()(batch, rng)                  # flips, crops, rotations
    pairs = data.make_change_pairs(x, seed=0)                      # before, after, change mask

Every loader returns uint8 NHWC images; ``scale_pixels`` makes them the float32 inputs the
seed's model trains on.
"""

from .atomic import atomic_write
from .cache import minires_cache_dir
from .changes import CHANGE_KINDS, ChangePairs, Nuisance, iter_change_pairs, make_change_pairs
from .cifar10 import (
    ARCHIVE_NAME,
    CIFAR10_CLASSES,
    OFFICIAL_MD5,
    OFFICIAL_URL,
    Cifar10,
    find_cifar10,
    load_data,
    read_cifar10,
)
from .fetch import DownloadError, download
from .folders import SkippedFilesWarning, decode_image, load_image_folder, scan_image_folder
from .safe_pickle import ForbiddenGlobalError, RestrictedUnpickler, safe_load
from .split import stratified_split
from .synthetic import SYNTHETIC_CLASSES, make_synthetic
from .transforms import Augmenter, affine_sample, augment, resize_images, scale_pixels

__all__ = [
    "ARCHIVE_NAME", "Augmenter", "CHANGE_KINDS", "CIFAR10_CLASSES", "ChangePairs",
    "Cifar10", "DownloadError", "ForbiddenGlobalError", "Nuisance", "OFFICIAL_MD5",
    "OFFICIAL_URL", "RestrictedUnpickler", "SYNTHETIC_CLASSES", "SkippedFilesWarning",
    "affine_sample", "atomic_write", "augment", "decode_image", "download", "find_cifar10",
    "iter_change_pairs", "load_data", "load_image_folder", "make_change_pairs",
    "make_synthetic", "minires_cache_dir", "read_cifar10", "resize_images", "safe_load",
    "scale_pixels", "scan_image_folder", "stratified_split",
]
