"""Shared pieces of the LRA data: vocabularies, datasets, batch collation, the task container.

Every task ends up as a :class:`TaskData`: three datasets plus what the model needs to know
(token vocabulary or pixel channels, number of classes, longest length, paired documents).

Batches are dicts:

- ``x``: token ids ``(B, L)`` int64 (padded with :data:`PAD_ID`), or pixels ``(B, L, 1)``
  float32 (standardized);
- ``lengths``: valid length of each row ``(B,)`` int64 for token tasks, ``None`` for pixel tasks
  (every image is full length);
- ``y``: labels ``(B,)`` int64.

For paired tasks (Retrieval) ``x`` and ``lengths`` hold ``2B`` rows: the first documents of the
``B`` pairs, then the second documents, padded to one common length.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

PAD_ID, UNK_ID, EOS_ID, MASK_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<eos>", "<mask>")
BYTE_VOCAB_SIZE = len(SPECIALS) + 256


def encode_bytes(text: str, l_max: int) -> np.ndarray:
    """Byte-level tokens of ``text`` (UTF-8), shifted past the special ids, cut to ``l_max``.

    Returns an int64 array of length ``min(len(bytes), l_max)``, values in
    ``[len(SPECIALS), BYTE_VOCAB_SIZE)``. An empty text becomes the single token ``<unk>`` so
    that every sequence has a valid position.

    Example:
        >>> encode_bytes("ab", 10)
        array([101, 102])
    """
    data = np.frombuffer(text.encode("utf-8")[:l_max], dtype=np.uint8).astype(np.int64)
    if data.size == 0:
        return np.array([UNK_ID], dtype=np.int64)
    return data + len(SPECIALS)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Fill a fresh temporary folder beside ``final``; on success it replaces ``final`` whole.

    The temporary folder (``.<name>.partial-<pid>``, hidden, so no reader looks into it) is
    removed when the block raises, Ctrl-C included: an interrupted writer leaves no partial
    data set, and an earlier complete one stays in place until the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            # move the old set aside first: a rename cannot replace a non-empty folder
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise FileNotFoundError naming ``what`` was expected."""
    if not path.is_file():
        raise FileNotFoundError(f"expected {what} at {path}, but there is no such file")
    return path


class TokenDataset(Dataset):
    """Variable-length token sequences with labels: item ``i`` is ``(tokens (L_i,) int64, label)``."""

    def __init__(self, sequences: Sequence[np.ndarray], labels: Sequence[int]) -> None:
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
        self.sequences = [torch.as_tensor(s, dtype=torch.long) for s in sequences]
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int):
        return self.sequences[i], self.labels[i]


class PairDataset(Dataset):
    """Pairs of token sequences with labels: item ``i`` is ``(tokens_1, tokens_2, label)``."""

    def __init__(self, first: Sequence[np.ndarray], second: Sequence[np.ndarray], labels: Sequence[int]) -> None:
        if not len(first) == len(second) == len(labels):
            raise ValueError(f"{len(first)} first documents, {len(second)} second ones, {len(labels)} labels")
        self.first = TokenDataset(first, labels)
        self.second = [torch.as_tensor(s, dtype=torch.long) for s in second]

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, i: int):
        tokens, label = self.first[i]
        return tokens, self.second[i], label


class PixelDataset(Dataset):
    """Flattened grayscale images in memory: item ``i`` is ``(pixels (L,) uint8, label)``."""

    def __init__(self, images: np.ndarray, labels: Sequence[int]) -> None:
        if images.ndim != 2 or images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 array (N, L), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


def pad_tokens(sequences: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad 1-D token tensors with :data:`PAD_ID`: ``(B, L_max)`` int64 and lengths ``(B,)``."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    x = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, s in zip(x, sequences):
        row[: len(s)] = s
    return x, lengths


def collate_tokens(items) -> dict:
    """Batch ``(tokens, label)`` items into ``{"x": (B, L), "lengths": (B,), "y": (B,)}``."""
    sequences, labels = zip(*items)
    x, lengths = pad_tokens(sequences)
    return {"x": x, "lengths": lengths, "y": torch.stack(labels)}


def collate_pairs(items) -> dict:
    """Batch ``(tokens_1, tokens_2, label)`` items: ``x (2B, L)``, first documents then second ones."""
    first, second, labels = zip(*items)
    x, lengths = pad_tokens(first + second)
    return {"x": x, "lengths": lengths, "y": torch.stack(labels)}


@dataclass(frozen=True)
class PixelCollate:
    """Batch ``(pixels uint8 (L,), label)`` items into standardized ``x (B, L, 1)`` float32.

    ``x = (pixels / 255 - mean) / std``; ``lengths`` is ``None`` (all images are full length).
    A dataclass rather than a closure so that DataLoader workers can pickle it.
    """

    mean: float
    std: float

    def __call__(self, items) -> dict:
        pixels, labels = zip(*items)
        x = (torch.stack(pixels).float() / 255.0 - self.mean) / self.std
        return {"x": x.unsqueeze(-1), "lengths": None, "y": torch.stack(labels)}


@dataclass
class TaskData:
    """A task's splits and the facts the model is built from.

    Attributes:
        train, val, test: the three datasets.
        collate: turns a list of items into a batch dict (see the module docstring).
        n_classes: number of labels.
        l_max: longest sequence length of the task (per document for paired tasks).
        kind: ``"tokens"`` (embedding encoder, ``vocab_size`` ids) or ``"pixels"`` (one real
            channel per position).
        vocab_size: number of token ids, specials included (``None`` for pixels).
        paired: each example is two documents (Retrieval).
        source: where the data came from, for logs (``"generated ..."`` or the directory).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    collate: Callable
    n_classes: int
    l_max: int
    kind: str
    vocab_size: int | None = None
    paired: bool = False
    source: str = field(default="")


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into consecutive parts of the given fractions.

    The last part takes the remainder, so the parts always cover all ``n`` indices.
    """
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    return np.split(order, bounds)


def labels_of(dataset: Dataset) -> torch.Tensor:
    """The ``(N,)`` int64 labels of any dataset of this package (pairs included)."""
    if isinstance(dataset, PairDataset):
        return dataset.first.labels
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise TypeError(f"{type(dataset).__name__} has no labels attribute")
    return torch.as_tensor(labels, dtype=torch.long)


def check_generator_keys(cfg: dict, keys: Sequence[str], task: str) -> None:
    """Raise KeyError when ``cfg`` (a ``data.generate`` section) has keys outside ``keys`` or lacks some."""
    unknown, missing = sorted(set(cfg) - set(keys)), sorted(set(keys) - set(cfg))
    if unknown or missing:
        raise KeyError(f"{task} generator settings (data.generate): unknown {unknown}, missing {missing}; "
                       f"expected {sorted(keys)}")
