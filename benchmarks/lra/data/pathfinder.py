"""Pathfinder, Path-X, Path256: are the two dots joined by a path? 2 classes, read pixel by pixel.

Sizes: ``pathfinder`` 32x32 (L = 1024), ``pathx`` 128x128 (L = 16,384), ``path256`` 256x256
(L = 65,536). :func:`load` reads the release::

    pathfinder{32,128,256}/<difficulty>/metadata/*.npy   text files despite the suffix; each line
                                                         "<subdir> <filename> <_> <label> ..."
    pathfinder{32,128,256}/<difficulty>/<subdir>/<filename>   e.g. imgs/0/sample_0.png

with ``difficulty = curv_contour_length_14`` (the hard split LRA reports) by default. The images
are shuffled with a fixed seed (42) and split 80/10/10. Metadata lines whose PNG is missing
(the release has a few) are skipped with a warning. PNGs are read lazily with Pillow.

:func:`generate` is a synthetic stand-in for smoke runs, not the release: smooth random curves
on a ``side x side`` grid; label 1 when one curve joins the two dots, 0 when each dot starts its
own curve; extra curves without dots distract.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .common import PixelCollate, PixelDataset, TaskData, split_indices
from .image import pixel_task

SIDES = {"pathfinder": 32, "pathx": 128, "path256": 256}
SPLIT_SEED = 42
STATS_SAMPLE = 1000
log = logging.getLogger(__name__)


def random_curve(rng: np.random.Generator, side: int, n_steps: int, start=None) -> list[tuple[int, int]]:
    """Pixels of a smooth random walk (unit steps, slowly turning, reflected at the borders)."""
    pos = np.array(start if start is not None else rng.uniform(0, side - 1, size=2), dtype=float)
    angle = rng.uniform(0, 2 * math.pi)
    points = [tuple(int(v) for v in np.rint(pos))]
    for _ in range(n_steps):
        angle += rng.normal(0, 0.35)
        step = np.array([math.sin(angle), math.cos(angle)])
        nxt = pos + step
        if not (0 <= nxt[0] <= side - 1 and 0 <= nxt[1] <= side - 1):
            angle += math.pi
            nxt = np.clip(pos - step, 0, side - 1)
        pos = nxt
        points.append(tuple(int(v) for v in np.rint(pos)))
    return points


def draw_sample(rng: np.random.Generator, side: int, n_distractors: int) -> tuple[np.ndarray, int]:
    """One synthetic ``side x side`` uint8 image and its label (1 = the dots are connected)."""
    img = np.zeros((side, side), dtype=np.uint8)
    length = max(4, int(side * 0.9))
    label = int(rng.integers(2))
    if label:
        curves = [random_curve(rng, side, length)]
        dots = [curves[0][0], curves[0][-1]]
    else:
        curves = [random_curve(rng, side, length // 2), random_curve(rng, side, length // 2)]
        dots = [curves[0][0], curves[1][0]]
    curves += [random_curve(rng, side, length // 2) for _ in range(n_distractors)]
    for curve in curves:
        rows, cols = zip(*curve)
        img[list(rows), list(cols)] = 160
    for r, c in dots:
        img[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = 255
    return img, label


def generate(cfg: dict, seed: int) -> TaskData:
    """Synthetic splits; ``cfg`` keys ``n_train``, ``n_val``, ``n_test``, ``side``, ``distractors``."""
    rng = np.random.default_rng(seed)
    splits = []
    for split in ("n_train", "n_val", "n_test"):
        samples = [draw_sample(rng, cfg["side"], cfg["distractors"]) for _ in range(cfg[split])]
        images = np.stack([img.reshape(-1) for img, _ in samples])
        splits.append(PixelDataset(images, [y for _, y in samples]))
    return pixel_task(*splits, n_classes=2, source="generated stand-in (random curves), not the Pathfinder release")


def read_png(path: Path, side: int) -> np.ndarray:
    """A grayscale PNG as a flat ``(side * side,)`` uint8 array (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("reading Pathfinder PNGs needs Pillow: pip install pillow") from err
    with Image.open(path) as img:
        pixels = np.array(img.convert("L"), dtype=np.uint8)
    if pixels.shape != (side, side):
        raise ValueError(f"{path}: expected a {side}x{side} image, got {pixels.shape[1]}x{pixels.shape[0]}")
    return pixels.reshape(-1)


class PathfinderFiles(Dataset):
    """Release images read on access: item ``i`` is ``(pixels (side*side,) uint8, label)``."""

    def __init__(self, paths: list[Path], labels: list[int], side: int) -> None:
        self.paths, self.side = paths, side
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return torch.from_numpy(read_png(self.paths[i], self.side)), self.labels[i]


def read_metadata(root: Path) -> tuple[list[Path], list[int]]:
    """All ``(image path, label)`` entries of ``root/metadata/*.npy``, in sorted file order."""
    files = sorted((root / "metadata").glob("*.npy"))
    if not files:
        raise FileNotFoundError(
            f"expected Pathfinder metadata files {root}/metadata/*.npy (lines '<subdir> <filename> _ <label>')"
        )
    paths, labels, missing = [], [], 0
    for meta in files:
        for line_no, line in enumerate(meta.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(f"{meta}:{line_no}: expected '<subdir> <filename> _ <label 0/1>', got {line[:80]!r}")
            path = root / fields[0] / fields[1]
            if not path.is_file():
                missing += 1
                continue
            paths.append(path)
            labels.append(int(fields[3]))
    if missing:
        log.warning("%s: skipped %d metadata entries whose image is missing", root, missing)
    if not paths:
        raise FileNotFoundError(f"{root}: none of the images named in metadata/*.npy exist")
    return paths, labels


def load(task: str, data_dir: Path, difficulty: str) -> TaskData:
    """``task`` (``pathfinder``, ``pathx``, ``path256``) from ``data_dir``; 80/10/10 split."""
    side = SIDES[task]
    root = Path(data_dir) / f"pathfinder{side}" / difficulty
    paths, labels = read_metadata(root)
    splits = [
        PathfinderFiles([paths[i] for i in idx], [labels[i] for i in idx], side)
        for idx in split_indices(len(paths), (0.8, 0.1, 0.1), SPLIT_SEED)
    ]
    sample = torch.stack([splits[0][i][0] for i in range(min(STATS_SAMPLE, len(splits[0])))]).float() / 255.0
    collate = PixelCollate(float(sample.mean()), float(sample.std().clamp_min(1e-6)))
    return TaskData(*splits, collate=collate, n_classes=2, l_max=side * side, kind="pixels", source=str(root))
