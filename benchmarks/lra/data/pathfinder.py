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
two markers. Any side from 32 to 256, seeded. It works on arrays: many images at once, many
candidate paths per image, all candidate turns of a segment tested together
(``benchmarks/results/pathfinder_gen_cpu.md``: about 30-40x faster per image than drawing
one segment and one pixel at a time in Python). :func:`write_release` writes its images in the
release layout (PNGs + metadata), so that :func:`load` can be run end to end offline::

    python -m benchmarks.lra.make_data --task pathfinder --out /tmp/lra --n 2000
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .common import PixelCollate, PixelDataset, TaskData, atomic_dir, split_indices
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


def markers(centers: np.ndarray, spec: PathSpec) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(m, Q)`` of the square markers (side ``3 * thickness``) centred on
    ``centers`` ``(m, 2)``, and ``(m,)`` bool: the square lies on the image (indices 0 where not)."""
    half = (3 * spec.thickness) // 2
    rc = np.rint(centers).astype(np.int64)
    ok = ((rc - half >= 0) & (rc + half < spec.side)).all(axis=1)
    span = np.arange(-half, half + 1)
    square = (span[:, None] * spec.side + span[None, :]).reshape(-1)
    flat = (rc[:, 0] * spec.side + rc[:, 1])[:, None] + square
    return np.where(ok[:, None], flat, 0), ok


def random_starts(rng: np.random.Generator, spec: PathSpec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` start points ``(k, 2)`` away from the border and headings ``(k,)`` roughly towards
    the middle, so that a path rarely runs off the image."""
    margin = 2 * spec.thickness
    starts = rng.uniform(margin, spec.side - 1 - margin, size=(k, 2))
    centre = (spec.side - 1) / 2
    heading = np.arctan2(centre - starts[:, 0], centre - starts[:, 1]) + rng.uniform(-math.pi / 2, math.pi / 2, k)
    return starts, heading


def extend(rng: np.random.Generator, spec: PathSpec, corners_blocked: np.ndarray, owner: np.ndarray,
           pos: np.ndarray, angle: np.ndarray, tries: int) -> tuple[np.ndarray, ...]:
    """One more segment for each of ``m`` paths: ``tries`` random turns each, the first that fits kept.

    A stroke is a run of ``thickness x thickness`` squares; ``corners_blocked`` marks the
    top-left corners whose square would touch a forbidden pixel, so a candidate is tested on its
    corners only (``thickness^2`` times fewer lookups than on its pixels).

    Args:
        corners_blocked: ``(B, side * side)`` bool, per image (see above).
        owner: ``(m,)`` the image of each path; ``pos``, ``angle``: ``(m, 2)`` current end
            points ``(row, col)`` and ``(m,)`` directions.

    Returns:
        found: ``(m,)`` bool, the path got a segment (its end and its stroke stay on the image
            and off its image's forbidden pixels).
        pixels: ``(m, M)`` int64 flat indices of each new stroke (meaningful where ``found``).
        new_pos, new_angle, direction: ``(m, 2)``, ``(m,)``, ``(m, 2)`` after the segment.
    """
    side, step, width = spec.side, spec.step, spec.thickness
    m = len(pos)
    turns = angle[:, None] + rng.uniform(-spec.max_turn, spec.max_turn, (m, tries))        # (m, T)
    sin, cos = np.sin(turns), np.cos(turns)
    end_r, end_c = pos[:, 0, None] + sin * step, pos[:, 1, None] + cos * step
    # squares at most `width` pixels apart: rounded, consecutive ones touch or overlap, so a
    # stroke has no holes (the label check joins pixels within Chebyshev distance 1 at least)
    drawn = step - spec.gap
    t = np.linspace(0.0, drawn, int(math.ceil(drawn / width)) + 1)
    shift = (width - 1) // 2                                                              # top-left of each square
    rows = np.floor(pos[:, 0, None, None] + t * sin[..., None] + 0.5).astype(np.intp) - shift   # (m, T, n)
    cols = np.floor(pos[:, 1, None, None] + t * cos[..., None] + 0.5).astype(np.intp) - shift
    fits = (end_r >= 0) & (end_r <= side - 1) & (end_c >= 0) & (end_c <= side - 1)
    for i in (0, -1):       # a stroke is straight: its first and last squares are its extremes
        fits &= (rows[..., i] >= 0) & (rows[..., i] + width <= side) & (cols[..., i] >= 0) & (cols[..., i] + width <= side)
    flat = np.where(fits[..., None], rows * side + cols, 0)
    # one flat lookup into the (B, side * side) map instead of a two-index gather
    n_pixels = corners_blocked.shape[1]
    fits &= ~np.take(corners_blocked.reshape(-1), flat + (owner * n_pixels)[:, None, None]).any(axis=2)
    choice, index = fits.argmax(axis=1), np.arange(m)
    square = (np.arange(width)[:, None] * side + np.arange(width)[None, :]).reshape(-1)
    pixels = (flat[index, choice][:, :, None] + square).reshape(m, -1)
    direction = np.stack([sin[index, choice], cos[index, choice]], axis=1)
    new_pos = np.stack([end_r[index, choice], end_c[index, choice]], axis=1)
    return fits.any(axis=1), pixels, new_pos, turns[index, choice], direction


def marker_fits(centers: np.ndarray, spec: PathSpec, blocked: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, ...]:
    """Markers centred on ``centers`` ``(m, 2)``: flat indices ``(m, Q)`` and ``(m,)`` bool, the
    square lies on the image and off its image's (``owner``) forbidden pixels."""
    flat, on_image = markers(centers, spec)
    return flat, on_image & ~blocked[owner[:, None], flat].any(axis=1)


def start_fits(starts: np.ndarray, spec: PathSpec, blocked: np.ndarray, corners_blocked: np.ndarray,
               owner: np.ndarray, n_markers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start markers ``(m, Q)`` for ``starts`` ``(m, 2)``, and ``(m,)`` bool: the start's stroke
    square is free and, where ``n_markers >= 1``, so is its marker."""
    squares, marker_ok = marker_fits(starts, spec, blocked, owner)
    corner = np.floor(starts + 0.5).astype(np.int64) - (spec.thickness - 1) // 2
    free = ~corners_blocked[owner, corner[:, 0] * spec.side + corner[:, 1]]
    return squares, free & (marker_ok | (n_markers == 0))


def grow_paths(rng: np.random.Generator, spec: PathSpec, blocked: np.ndarray, corners_blocked: np.ndarray,
               n_markers: np.ndarray, k: int, tries: int = 6) -> list[tuple[np.ndarray, list[np.ndarray]] | None]:
    """One path of ``spec.contour_length`` segments for each of ``B`` images, off its ``blocked`` row.

    Each image grows ``k`` candidate paths side by side, one segment at a time
    (:func:`extend`: ``tries`` turns of at most ``spec.max_turn`` per segment, the last
    ``spec.gap`` pixels of a segment blank). A candidate that finds no fitting turn (or whose
    start marker does not fit) is replaced by a copy of a surviving candidate of the same image,
    which then grows on with turns of its own: each image keeps ``k`` candidates, and it fails
    only when all of them are stuck at once (the depth-first search of one path at a time,
    done as arrays). Every image keeps its first candidate whose markers fit: none, at the start
    (``n_markers[b] == 1``) or at both ends (``2``). Working on arrays of paths of many images at
    once, instead of pixel by pixel, is what makes the generator fast.

    Args:
        blocked: ``(B, side * side)`` bool, the forbidden pixels; corners_blocked: the same
            for stroke squares' corners (:func:`extend`); n_markers: ``(B,)`` int.

    Returns:
        Per image, ``(flat pixel indices with markers (repeats allowed), marker centres)``, or
        ``None`` when no candidate survived.
    """
    n_images, m = len(blocked), len(blocked) * k
    owner = np.repeat(np.arange(n_images), k)            # candidates grouped by image, k each
    starts, angle = random_starts(rng, spec, m)
    start_squares, found = start_fits(starts, spec, blocked, corners_blocked, owner, n_markers[owner])
    for _ in range(3):      # draw the starts on forbidden pixels again: on a crowded image, most are
        again = np.flatnonzero(~found)
        if not again.size:
            break
        starts[again], angle[again] = random_starts(rng, spec, len(again))
        start_squares[again], found[again] = start_fits(starts[again], spec, blocked, corners_blocked,
                                                        owner[again], n_markers[owner[again]])
    stuck = np.zeros(n_images, dtype=bool)
    pos, direction = starts, np.zeros((m, 2))
    segments, parents = [], []
    for _ in range(spec.contour_length + 1):
        # replace each stuck candidate by the first surviving one of its image
        grid = found.reshape(n_images, k)
        stuck |= ~grid.any(axis=1)
        first = np.arange(n_images) * k + grid.argmax(axis=1)
        parent = np.where(found, np.arange(m), first[owner])
        parents.append(parent)
        pos, angle, direction = pos[parent], angle[parent], direction[parent]
        if len(segments) == spec.contour_length:
            break
        found, pixels, pos, angle, direction = extend(rng, spec, corners_blocked, owner, pos, angle, tries)
        segments.append(pixels)
    # trace each candidate's segments back through its parents
    lineage, pieces = np.arange(m), []
    for step in range(spec.contour_length, 0, -1):
        lineage = parents[step][lineage]
        pieces.append(segments[step - 1][lineage])
    lineage = parents[0][lineage]
    starts, start_squares = starts[lineage], start_squares[lineage]
    # a path ends at its last drawn pixel, before the trailing gap
    ends = pos - direction * spec.gap
    end_squares, end_ok = marker_fits(ends, spec, blocked, owner)
    need = n_markers[owner]
    fits = (need < 2) | end_ok
    result: list = [None] * n_images
    for b in np.flatnonzero(~stuck):
        candidates = np.flatnonzero(fits[b * k : (b + 1) * k])
        if not candidates.size:
            continue
        i = b * k + candidates[0]
        ink = pieces + [start_squares, end_squares][: need[i]]
        result[b] = (np.concatenate([piece[i] for piece in ink]), [starts[i], ends[i]][: need[i]])
    return result


def dilate(mask: np.ndarray, before: int, after: int) -> np.ndarray:
    """``(B, S, S)`` bool ``mask`` grown so that pixel ``(r, c)`` also sets ``(r - i, c - j)`` for
    ``-after <= i, j <= before``; ``before == after == d``: the Chebyshev ball of radius ``d``."""
    _, rows, cols = mask.shape
    width = before + after + 1
    padded = np.pad(mask, ((0, 0), (after, before), (after, before)))
    # a square window is separable: OR the shifted rows, then the shifted columns
    grown_rows = np.zeros((len(mask), rows, padded.shape[2]), dtype=bool)
    for d in range(width):
        grown_rows |= padded[:, d : d + rows]
    grown = np.zeros_like(mask)
    for d in range(width):
        grown |= grown_rows[:, :, d : d + cols]
    return grown


def draw_batch(rng: np.random.Generator, spec: PathSpec, labels: np.ndarray,
               k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Try to draw one image per label ``(B,)``; see :func:`draw_sample` for what an image holds.

    Returns images ``(B, side, side)`` uint8, marker centres ``(B, 2, 2)`` int64 ``(row, col)``,
    and ``(B,)`` bool: the image was completed (a crowded one is abandoned, not searched on).
    """
    n, n_pixels = len(labels), spec.side * spec.side
    ink = np.zeros((n, n_pixels), dtype=bool)
    blocked = np.zeros((n, n_pixels), dtype=bool)
    corners_blocked = np.zeros((n, n_pixels), dtype=bool)
    centers = np.zeros((n, 2, 2))
    done = np.ones(n, dtype=bool)
    plan = [np.where(labels == 1, 2, 1), np.where(labels == 1, 0, 1)] + [np.zeros(n, np.int64)] * spec.distractors
    n_centers = np.zeros(n, dtype=np.int64)
    for n_markers in plan:
        todo = np.flatnonzero(done)
        paths = dict.fromkeys(todo.tolist())
        # an image whose path found no room gets many more candidates before it is abandoned
        for candidates in (k, 4 * k, 16 * k, 64 * k):
            todo = np.array([b for b, path in paths.items() if path is None], dtype=np.int64)
            if not todo.size:
                break
            paths.update(zip(todo.tolist(), grow_paths(rng, spec, blocked[todo], corners_blocked[todo],
                                                      n_markers[todo], candidates)))
        placed = np.zeros((n, n_pixels), dtype=bool)
        for b, path in paths.items():
            if path is None:
                done[b] = False
                continue
            pixels, ends = path
            placed[b, pixels] = True
            for center in ends:
                centers[b, n_centers[b]] = center
                n_centers[b] += 1
        ink |= placed
        placed = placed.reshape(n, spec.side, spec.side)
        blocked |= dilate(placed, spec.reach, spec.reach).reshape(n, n_pixels)
        # a stroke square whose top-left corner lies up to thickness - 1 pixels above or left of
        # a forbidden pixel covers it
        corners_blocked |= dilate(placed, spec.reach + spec.thickness - 1, spec.reach).reshape(n, n_pixels)
    images = np.where(ink, INK, 0).astype(np.uint8).reshape(n, spec.side, spec.side)
    return images, np.rint(centers).astype(np.int64), done


def batch_size(spec: PathSpec, k: int = 4, tries: int = 6, budget: int = 1_000_000,
               pixel_budget: int = 16_000_000) -> int:
    """Images drawn at once: the candidate strokes of one step stay within ``budget`` indices and
    each per-image bool map (ink, forbidden pixels, ...) within ``pixel_budget`` bytes."""
    per_image = k * tries * (int(math.ceil(spec.step / spec.thickness)) + 2)
    return int(max(1, min(512, budget // per_image, pixel_budget // spec.side ** 2)))


def draw_images(rng: np.random.Generator, spec: PathSpec, labels: np.ndarray, max_attempts: int = 200,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, side, side)`` uint8 and marker centres ``(n, 2, 2)`` for ``labels`` ``(n,)``.

    Drawn :func:`batch_size` at a time; an image that did not fit is drawn again, up to
    ``max_attempts`` times (then RuntimeError). ``progress(k)`` is called as ``k`` more images
    are finished.
    """
    labels = np.asarray(labels, dtype=np.int64)
    images = np.zeros((len(labels), spec.side, spec.side), np.uint8)
    centers = np.zeros((len(labels), 2, 2), np.int64)
    size = batch_size(spec)
    for lo in range(0, len(labels), size):
        todo = np.arange(lo, min(lo + size, len(labels)))
        for _ in range(max_attempts):
            imgs, ctrs, done = draw_batch(rng, spec, labels[todo])
            images[todo[done]], centers[todo[done]] = imgs[done], ctrs[done]
            if progress is not None and done.any():
                progress(int(done.sum()))
            todo = todo[~done]
            if not todo.size:
                break
        else:
            raise RuntimeError(
                f"Pathfinder generator: could not place {2 + spec.distractors} paths of {spec.contour_length} "
                f"segments on a {spec.side}x{spec.side} image in {max_attempts} attempts; lower contour_length "
                f"or distractors"
            )
    return images, centers


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
    images, centers = draw_images(rng, spec, np.array([label]), max_attempts)
    return images[0], [tuple(int(v) for v in c) for c in centers[0]]


def generate_split(spec: PathSpec, n: int, rng: np.random.Generator,
                   progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, side, side)`` uint8 and balanced random labels ``(n,)`` int64
    (``progress`` as in :func:`draw_images`)."""
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    images, _ = draw_images(rng, spec, labels, progress=progress)
    return images, labels


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
                  per_folder: int = 1000, progress: Callable[[int], None] | None = None) -> Path:
    """Write ``n`` generated images in the release layout and return the split's folder.

    Layout: ``data_dir/pathfinder<side>/<difficulty>/imgs/<k>/sample_<i>.png`` and
    ``metadata/<k>.npy`` (text lines ``imgs/<k> sample_<i>.png <i> <label> <contour_length>``),
    ``k = i // per_folder``. ``difficulty`` defaults to the release name of
    ``spec.contour_length`` (:data:`DIFFICULTIES`), else ``curv_contour_length_<n>``.
    The folder is written whole or not at all (:func:`atomic_dir`: an interrupted run leaves no
    partial split for a later run to trip on) and replaces an earlier one. ``progress(k)`` is
    called as ``k`` more images are drawn, then as ``k`` more are written.
    """
    from PIL import Image

    if difficulty is None:
        names = {v: k for k, v in DIFFICULTIES.items()}
        difficulty = names.get(spec.contour_length, f"curv_contour_length_{spec.contour_length}")
    root = Path(data_dir) / f"pathfinder{spec.side}" / difficulty
    images, labels = generate_split(spec, n, np.random.default_rng(seed), progress)
    with atomic_dir(root) as tmp:
        (tmp / "metadata").mkdir()
        lines: dict[int, list[str]] = {}
        for i, (img, label) in enumerate(zip(images, labels)):
            k = i // per_folder
            folder = tmp / "imgs" / str(k)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"sample_{i}.png")
            lines.setdefault(k, []).append(f"imgs/{k} sample_{i}.png {i} {label} {spec.contour_length}")
            if progress is not None:
                progress(1)
        for k, rows in lines.items():
            (tmp / "metadata" / f"{k}.npy").write_text("\n".join(rows) + "\n")
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
