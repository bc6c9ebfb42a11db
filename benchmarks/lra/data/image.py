"""Image: CIFAR-10 in grayscale read pixel by pixel, L = 1024, 10 classes.

:func:`load` accepts either layout under ``--data-dir`` (torchvision and TFDS are not needed):

- ``cifar-10-batches-py/`` -- the official Python release (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``: pickled dicts with ``b"data"`` (N, 3072) uint8 RGB planes and ``b"labels"``);
- ``cifar10.npz`` -- a NumPy archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``, the
  images uint8 ``(N, 32, 32)`` (grayscale) or ``(N, 32, 32, 3)`` (RGB).

RGB is converted with the ITU-R 601 weights ``0.2989 R + 0.5870 G + 0.1140 B`` (as
``tf.image.rgb_to_grayscale`` in LRA). Validation: a fixed 10% of the training images
(split seed 42), as the S4 code does; the 10k test images are the test split.

:func:`generate` is a synthetic stand-in for smoke runs, not CIFAR: noisy images of
:data:`SHAPES` at random places and sizes, one class per shape.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .common import PixelCollate, PixelDataset, TaskData, check_generator_keys, split_indices

SHAPES = ("horizontal bar", "vertical bar", "square outline", "disc")
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])
SPLIT_SEED = 42
GENERATE_KEYS = ("n_train", "n_val", "n_test", "side", "noise")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, H, W)`` uint8 luminance."""
    return np.clip(np.rint(rgb.astype(np.float64) @ GRAY_WEIGHTS), 0, 255).astype(np.uint8)


def draw_shape(rng: np.random.Generator, shape: int, side: int, noise: float) -> np.ndarray:
    """One ``side x side`` uint8 image of ``SHAPES[shape]`` plus Gaussian noise of std ``noise`` (0-1 scale)."""
    img = np.zeros((side, side))
    size = int(rng.integers(side // 4, side // 2 + 1))
    top, left = (int(v) for v in rng.integers(0, side - size + 1, size=2))
    thick = max(1, size // 5)
    mid = size // 2
    patch = img[top : top + size, left : left + size]
    if shape == 0:
        patch[mid - thick // 2 : mid - thick // 2 + thick, :] = 1
    elif shape == 1:
        patch[:, mid - thick // 2 : mid - thick // 2 + thick] = 1
    elif shape == 2:
        patch[:thick, :] = patch[-thick:, :] = patch[:, :thick] = patch[:, -thick:] = 1
    else:
        yy, xx = np.mgrid[:size, :size]
        patch[(yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2 <= (size / 2) ** 2] = 1
    img = img * 0.8 + 0.1 + rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def images_dataset(images: np.ndarray, labels: np.ndarray) -> PixelDataset:
    """Flatten ``(N, H, W)`` uint8 images row by row into a :class:`PixelDataset`."""
    return PixelDataset(images.reshape(len(images), -1), labels.astype(np.int64))


def pixel_task(train: PixelDataset, val: PixelDataset, test: PixelDataset, n_classes: int, source: str) -> TaskData:
    """Wrap pixel splits in a TaskData, standardizing with the training images' mean and std."""
    pixels = train.images.float() / 255.0
    collate = PixelCollate(float(pixels.mean()), float(pixels.std().clamp_min(1e-6)))
    return TaskData(train, val, test, collate=collate, n_classes=n_classes, l_max=train.images.shape[1],
                    kind="pixels", source=source)


def generate(cfg: dict, seed: int) -> TaskData:
    """Synthetic shape images; ``cfg`` keys ``n_train``, ``n_val``, ``n_test``, ``side``, ``noise``."""
    check_generator_keys(cfg, GENERATE_KEYS, "Image")
    rng = np.random.default_rng(seed)
    splits = []
    for split in ("n_train", "n_val", "n_test"):
        labels = rng.integers(0, len(SHAPES), size=cfg[split])
        images = np.stack([draw_shape(rng, int(c), cfg["side"], cfg["noise"]) for c in labels])
        splits.append(images_dataset(images, labels))
    return pixel_task(*splits, n_classes=len(SHAPES), source="generated stand-in (shapes), not CIFAR-10")


def read_python_release(root: Path) -> tuple[np.ndarray, ...]:
    """``cifar-10-batches-py`` -> grayscale ``x_train, y_train, x_test, y_test``."""
    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"expected the CIFAR-10 batch {path} (cifar-10-batches-py layout)")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            rgb = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:  # truncated or foreign file: say which one
            raise ValueError(
                f"{path}: not a CIFAR-10 python batch (a pickled dict with b'data' (N, 3072) uint8 and "
                f"b'labels'): {type(exc).__name__}: {exc}"
            ) from exc
        if len(labels) != len(rgb):
            raise ValueError(f"{path}: {len(rgb)} images but {len(labels)} labels")
        return to_gray(rgb), labels

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test


def read_npz(path: Path) -> tuple[np.ndarray, ...]:
    """``cifar10.npz`` -> grayscale ``x_train, y_train, x_test, y_test``."""
    with np.load(path) as archive:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
        if missing:
            raise KeyError(f"{path}: expected arrays x_train, y_train, x_test, y_test; missing {sorted(missing)}")
        arrays = [archive[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    for i in (0, 2):
        x = arrays[i]
        if x.dtype != np.uint8 or x.shape[1:] not in ((32, 32), (32, 32, 3)):
            raise ValueError(f"{path}: images must be uint8 (N, 32, 32) or (N, 32, 32, 3), got {x.dtype} {x.shape}")
        arrays[i] = to_gray(x) if x.ndim == 4 else x
    return arrays[0], arrays[1].astype(np.int64), arrays[2], arrays[3].astype(np.int64)


def load(data_dir: Path) -> TaskData:
    """Grayscale CIFAR-10 from ``data_dir`` (either layout above); 45k/5k/10k split."""
    data_dir = Path(data_dir)
    if (data_dir / "cifar-10-batches-py").is_dir():
        source = data_dir / "cifar-10-batches-py"
        x_train, y_train, x_test, y_test = read_python_release(source)
    elif (data_dir / "cifar10.npz").is_file():
        source = data_dir / "cifar10.npz"
        x_train, y_train, x_test, y_test = read_npz(source)
    else:
        raise FileNotFoundError(
            f"expected CIFAR-10 under {data_dir}: either the folder cifar-10-batches-py/ (official Python "
            f"release) or cifar10.npz (x_train, y_train, x_test, y_test as uint8 arrays)"
        )
    train_idx, val_idx = split_indices(len(x_train), (0.9, 0.1), SPLIT_SEED)
    return pixel_task(images_dataset(x_train[train_idx], y_train[train_idx]),
                      images_dataset(x_train[val_idx], y_train[val_idx]),
                      images_dataset(x_test, y_test), n_classes=10, source=str(source))
