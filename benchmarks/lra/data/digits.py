"""Digits: scikit-learn's 8x8 handwritten digits read pixel by pixel, L = 64, 10 classes.

An offline real-data task (no download: the 1,797 images ship with scikit-learn, from the UCI
"Optical Recognition of Handwritten Digits" set). Pixels are counts 0-16, stored as uint8
``round(v * 255 / 16)`` and standardized like the other pixel tasks. The images are shuffled
with a fixed seed (42) and split 70/15/15 (1258/270/269), whatever the run's ``--seed``.
``--data-dir`` is not used.
"""

from __future__ import annotations

import numpy as np

from .common import PixelDataset, TaskData, split_indices
from .image import pixel_task

SPLIT_SEED = 42
FRACTIONS = (0.7, 0.15, 0.15)


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """All images ``(1797, 64)`` uint8 and labels ``(1797,)`` int64 from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("the digits task needs scikit-learn: pip install scikit-learn") from err
    bunch = load_digits()
    images = np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def load() -> TaskData:
    """The three splits (see the module docstring)."""
    images, labels = read_digits()
    splits = [PixelDataset(images[idx], labels[idx]) for idx in split_indices(len(images), FRACTIONS, SPLIT_SEED)]
    return pixel_task(*splits, n_classes=10, source="scikit-learn digits (8x8, 1797 images)")
