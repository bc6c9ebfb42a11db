"""Pathfinder, Path-X, Path256: are the two dots joined by a path? 2 classes, read pixel by pixel.

Sizes: ``pathfinder`` 32x32 (L = 1024), ``pathx`` 128x128 (L = 16,384), ``path256`` 256x256
(L = 65,536). :func:`load` reads the release::

    pathfinder<side>/<difficulty>/metadata/*.npy   text files despite the suffix; each line
                                                   "<subdir> <filename> <_> <label> ..."
    pathfinder<side>/<difficulty>/<subdir>/<filename>   e.g. imgs/0/sample_0.png

with ``difficulty = curv_contour_length_14`` (the hard split LRA reports) by default and any
other split folder (``curv_baseline``, ``curv_contour_length_9``) through ``data.difficulty``;
``side`` is the task's, or any other (e.g. the release's ``pathfinder64``) through
``data.resolution``. The images
are shuffled with a fixed seed (42) and split 80/10/10. Metadata lines whose PNG is missing
(the release has a few) are skipped with a warning. PNGs are read lazily with Pillow.

:func:`generate` is our own Pathfinder generator (not the release's code): paths of
``contour_length`` short straight segments, each turning by a bounded random angle, optionally
dashed (``gap``); two square markers; unmarked distractor paths; label 1 when one path carries
both markers. Paths keep clear of each other, so the label equals the pixel connectivity of the
two markers. Any side from 32 to 256, seeded. :func:`write_release` writes its images in the
release layout (PNGs + metadata), so that :func:`load` can be run end to end offline::

    python -m benchmarks.lra.make_data --task pathfinder --out /tmp/lra --n 2000
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .common import PixelCollate, PixelDataset, TaskData, split_indices
from .image import pixel_task

SIDES = {"pathfinder": 32, "pathx": 128, "path256": 256}
DIFFICULTIES = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}
SPLIT_SEED = 42
STATS_SAMPLE = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathSpec:
    """Settings of the Pathfinder generator (:func:`draw_sample`).

    Attributes:
        side: image side in pixels (32 to 256; L = side * side).
        contour_length: segments per path, the difficulty knob of the release (6, 9, 14 for
            ``curv_baseline``, ``curv_contour_length_9``, ``curv_contour_length_14``).
        distractors: unmarked paths of the same length drawn around the marked ones.
        gap: blank pixels between consecutive segments (0: solid paths; larger: dashed ones).
        segment_length: pixels each segment spans along the path, gap included;
            0 means ``max(gap + 2, side / 16)``.
        max_turn: largest change of direction between segments, in radians.
    """

    side: int = 32
    contour_length: int = 14
    distractors: int = 2
    gap: int = 0
    segment_length: float = 0.0
    max_turn: float = 0.6

    def __post_init__(self) -> None:
        if not 16 <= self.side <= 512:
            raise ValueError(f"Pathfinder side must lie in 16..512, got {self.side}")
        if self.contour_length < 1 or self.distractors < 0 or self.gap < 0:
            raise ValueError(f"Pathfinder needs contour_length >= 1, distractors >= 0, gap >= 0; got {self}")
        if self.segment_length and self.segment_length < self.gap + 1:
            raise ValueError(f"segment_length {self.segment_length} leaves nothing to draw with gap {self.gap}")

    @property
    def step(self) -> float:
        """Pixels per segment along the path."""
        return self.segment_length or max(self.gap + 2.0, self.side / 16)

    @property
    def thickness(self) -> int:
        """Stroke width in pixels: 1 up to 64 x 64, then growing with the side."""
        return max(1, self.side // 64)

    @property
    def reach(self) -> int:
        """Chebyshev distance that joins two pixels of one path (a gap is bridged, nothing more)."""
        return self.gap + 1


INK = 255   # paths and markers alike, on black


def from_config(cfg: dict) -> PathSpec:
    """A :class:`PathSpec` from a config's ``data.generate`` (unknown keys are an error)."""
    keys = {"side", "contour_length", "distractors", "gap", "segment_length", "max_turn"}
    unknown = set(cfg) - keys - {"n_train", "n_val", "n_test"}
    if unknown:
        raise KeyError(f"Pathfinder generator settings (data.generate): unknown {sorted(unknown)}; "
                       f"expected {sorted(keys | {'n_train', 'n_val', 'n_test'})}")
    return PathSpec(**{k: v for k, v in cfg.items() if k in keys})


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean ``mask`` grown by ``radius`` pixels in the Chebyshev (square) metric."""
    if radius <= 0:
        return mask.copy()
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    side_r, side_c = mask.shape
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            out |= padded[dr : dr + side_r, dc : dc + side_c]
    return out


def stroke(p0: np.ndarray, p1: np.ndarray, thickness: int, side: int) -> np.ndarray | None:
    """Flat indices of the pixels of the segment ``p0 -> p1`` drawn ``thickness`` wide, or ``None``
    when any of them falls off the image."""
    (r0, c0), (r1, c1) = p0, p1
    n = int(math.ceil(2 * max(abs(r1 - r0), abs(c1 - c0)))) + 1
    shift = (thickness - 1) // 2
    pixels = set()
    for i in range(n):
        t = i / (n - 1) if n > 1 else 0.0
        r = int(r0 + t * (r1 - r0) + 0.5) - shift      # coordinates are >= 0: int() floors
        c = int(c0 + t * (c1 - c0) + 0.5) - shift
        if r < 0 or c < 0 or r + thickness > side or c + thickness > side:
            return None
        pixels.update((r + dr) * side + c + dc for dr in range(thickness) for dc in range(thickness))
    return np.fromiter(pixels, dtype=np.int64, count=len(pixels))


def marker(center: np.ndarray, spec: PathSpec) -> np.ndarray | None:
    """Flat indices of the square marker (side ``3 * thickness``) centred on ``center``."""
    half = (3 * spec.thickness) // 2
    r, c = (int(v) for v in np.rint(center))
    if r - half < 0 or c - half < 0 or r + half >= spec.side or c + half >= spec.side:
        return None
    rows, cols = np.mgrid[r - half : r + half + 1, c - half : c + half + 1]
    return (rows * spec.side + cols).reshape(-1)


def grow_path(rng: np.random.Generator, spec: PathSpec, blocked: np.ndarray, n_markers: int,
              tries: int = 6, budget: int = 400) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """One path of ``spec.contour_length`` segments avoiding ``blocked`` (flat bool), or ``None``.

    Returns the flat indices of its pixels (markers included) and the marker centres: none, the
    start (``n_markers == 1``) or both ends (``2``). Each segment turns by at most
    ``spec.max_turn``; its last ``spec.gap`` pixels stay blank. A segment that finds no free
    direction in ``tries`` draws takes the previous one back (depth-first search); ``None`` after
    ``budget`` draws in all.
    """
    side, step = spec.side, spec.step
    margin = 2 * spec.thickness
    start = rng.uniform(margin, side - 1 - margin, size=2)
    centre = (side - 1) / 2
    # head roughly towards the middle, so that a path rarely runs into the border
    angle = math.atan2(centre - start[0], centre - start[1]) + rng.uniform(-math.pi / 2, math.pi / 2)
    states, attempts, pieces = [(start, angle)], [0], []
    draws = 0
    while len(pieces) < spec.contour_length:
        if draws >= budget:
            return None
        if attempts[-1] >= tries:           # dead end: take the last segment back
            states.pop()
            attempts.pop()
            if not pieces:
                return None
            pieces.pop()
            continue
        attempts[-1] += 1
        draws += 1
        pos, angle = states[-1]
        turn = angle + rng.uniform(-spec.max_turn, spec.max_turn)
        direction = np.array([math.sin(turn), math.cos(turn)])
        nxt = pos + direction * step
        if nxt.min() < 0 or nxt.max() > side - 1:
            continue
        drawn = stroke(pos, pos + direction * (step - spec.gap), spec.thickness, side)
        if drawn is None or blocked[drawn].any():
            continue
        pieces.append(drawn)
        states.append((nxt, turn))
        attempts.append(0)
    # the path ends at its last drawn pixel, before the trailing gap
    pos, angle = states[-1]
    end = pos - np.array([math.sin(angle), math.cos(angle)]) * spec.gap
    centers = [start, end][:n_markers]
    for center in centers:
        square = marker(center, spec)
        if square is None or blocked[square].any():
            return None
        pieces.append(square)
    return np.unique(np.concatenate(pieces)), centers


def draw_sample(rng: np.random.Generator, spec: PathSpec, label: int,
                max_attempts: int = 200) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One ``side x side`` uint8 image of class ``label`` and its two marker centres ``(row, col)``.

    Class 1: one path carries both markers; one more unmarked path of the same length. Class 0:
    two paths each carry one marker (at their start). Both classes then get ``spec.distractors``
    unmarked paths, so the amount of ink says nothing about the label. Different paths keep a
    Chebyshev distance above ``spec.reach`` from each other, so the markers are joined by drawn
    pixels (gaps of at most ``spec.gap`` bridged) exactly when they are on the same path.
    Raises RuntimeError when ``max_attempts`` images in a row do not fit (too many or too long
    paths for the side).
    """
    n_pixels = spec.side * spec.side
    plan = ([2, 0] if label else [1, 1]) + [0] * spec.distractors
    for _ in range(max_attempts):
        ink = np.zeros(n_pixels, dtype=bool)
        blocked = np.zeros(n_pixels, dtype=bool)
        centers: list[np.ndarray] = []
        for n_markers in plan:
            for _ in range(20):
                path = grow_path(rng, spec, blocked, n_markers)
                if path is not None:
                    break
            else:
                break
            pixels, ends = path
            ink[pixels] = True
            mask = np.zeros(n_pixels, dtype=bool)
            mask[pixels] = True
            blocked |= dilate(mask.reshape(spec.side, spec.side), spec.reach).reshape(-1)
            centers += ends
        else:
            img = np.where(ink, INK, 0).astype(np.uint8).reshape(spec.side, spec.side)
            return img, [tuple(int(v) for v in np.rint(c)) for c in centers]
    raise RuntimeError(
        f"Pathfinder generator: could not place {len(plan)} paths of {spec.contour_length} segments "
        f"on a {spec.side}x{spec.side} image in {max_attempts} attempts; lower contour_length or distractors"
    )


def generate_split(spec: PathSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, side, side)`` uint8 and balanced random labels ``(n,)`` int64."""
    labels = rng.permutation(np.arange(n) % 2)
    images = np.stack([draw_sample(rng, spec, int(y))[0] for y in labels]) if n else \
        np.zeros((0, spec.side, spec.side), np.uint8)
    return images, labels.astype(np.int64)


def generate(cfg: dict, seed: int) -> TaskData:
    """Generated splits; ``cfg``: ``n_train``, ``n_val``, ``n_test`` and :class:`PathSpec` fields."""
    spec, rng = from_config(cfg), np.random.default_rng(seed)
    splits = []
    for split in ("n_train", "n_val", "n_test"):
        images, labels = generate_split(spec, cfg[split], rng)
        splits.append(PixelDataset(images.reshape(len(images), -1), labels))
    return pixel_task(*splits, n_classes=2,
                      source=f"generated Pathfinder {spec.side}x{spec.side}, {spec.contour_length} segments, "
                             f"{spec.distractors} distractors, gap {spec.gap}")


def write_release(data_dir: Path, spec: PathSpec, n: int, seed: int, difficulty: str | None = None,
                  per_folder: int = 1000) -> Path:
    """Write ``n`` generated images in the release layout and return the split's folder.

    Layout: ``data_dir/pathfinder<side>/<difficulty>/imgs/<k>/sample_<i>.png`` and
    ``metadata/<k>.npy`` (text lines ``imgs/<k> sample_<i>.png <i> <label> <contour_length>``),
    ``k = i // per_folder``. ``difficulty`` defaults to the release name of
    ``spec.contour_length`` (:data:`DIFFICULTIES`), else ``curv_contour_length_<n>``.
    """
    from PIL import Image

    if difficulty is None:
        names = {v: k for k, v in DIFFICULTIES.items()}
        difficulty = names.get(spec.contour_length, f"curv_contour_length_{spec.contour_length}")
    root = Path(data_dir) / f"pathfinder{spec.side}" / difficulty
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    images, labels = generate_split(spec, n, np.random.default_rng(seed))
    lines: dict[int, list[str]] = {}
    for i, (img, label) in enumerate(zip(images, labels)):
        k = i // per_folder
        folder = root / "imgs" / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"sample_{i}.png")
        lines.setdefault(k, []).append(f"imgs/{k} sample_{i}.png {i} {label} {spec.contour_length}")
    for k, rows in lines.items():
        (root / "metadata" / f"{k}.npy").write_text("\n".join(rows) + "\n")
    return root


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
            f"expected Pathfinder metadata files {root}/metadata/*.npy (text lines '<subdir> <filename> _ <label>', "
            f"images under {root}/<subdir>/, the layout pathfinder<side>/<difficulty>/{{metadata,imgs}}/ of the release)"
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


def load(task: str, data_dir: Path, difficulty: str, resolution: int = 0) -> TaskData:
    """``task`` (``pathfinder``, ``pathx``, ``path256``) from ``data_dir``; 80/10/10 split.

    ``resolution`` (0: the task's own side, :data:`SIDES`) picks ``pathfinder<resolution>/``,
    e.g. 64 for the release's ``pathfinder64``; ``difficulty`` is any split folder in it.
    """
    side = resolution or SIDES[task]
    root = Path(data_dir) / f"pathfinder{side}" / difficulty
    paths, labels = read_metadata(root)
    splits = [
        PathfinderFiles([paths[i] for i in idx], [labels[i] for i in idx], side)
        for idx in split_indices(len(paths), (0.8, 0.1, 0.1), SPLIT_SEED)
    ]
    sample = torch.stack([splits[0][i][0] for i in range(min(STATS_SAMPLE, len(splits[0])))]).float() / 255.0
    collate = PixelCollate(float(sample.mean()), float(sample.std().clamp_min(1e-6)))
    return TaskData(*splits, collate=collate, n_classes=2, l_max=side * side, kind="pixels", source=str(root))
