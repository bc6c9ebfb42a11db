"""Text: IMDB sentiment at the byte level, L = 4096, 2 classes.

The LRA release does not ship IMDB (it came from TensorFlow Datasets). :func:`load` reads the
Stanford release instead, unpacked under ``--data-dir``::

    aclImdb/train/pos/*.txt   aclImdb/train/neg/*.txt
    aclImdb/test/pos/*.txt    aclImdb/test/neg/*.txt

(``aclImdb_v1.tar.gz`` from ai.stanford.edu/~amaas/data/sentiment/). Label 1 = positive. As in
LRA, the 25k test reviews also serve as the validation set.

:func:`generate` is a synthetic stand-in for smoke runs, not IMDB: random lowercase "words"
with one planted sentiment keyword (one of :data:`POSITIVE` or :data:`NEGATIVE`) that decides
the label.
"""

from __future__ import annotations

import random
from pathlib import Path

from .common import BYTE_VOCAB_SIZE, TaskData, TokenDataset, check_generator_keys, collate_tokens, encode_bytes

POSITIVE = ("great", "superb", "lovely")
NEGATIVE = ("awful", "boring", "dreadful")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
GENERATE_KEYS = ("n_train", "n_val", "n_test", "min_length", "max_length")


def random_words(rng: random.Random, n_chars: int) -> list[str]:
    """Random lowercase words of 2-7 letters totalling about ``n_chars`` characters with spaces."""
    words, total = [], 0
    while total < n_chars:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 7)))
        words.append(word)
        total += len(word) + 1
    return words


def synthetic_review(rng: random.Random, min_length: int, max_length: int) -> tuple[str, int]:
    """A random text of ``min_length..max_length`` bytes with one planted keyword; ``(text, label)``."""
    label = rng.randrange(2)
    words = random_words(rng, rng.randint(min_length, max_length))
    words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
    return " ".join(words)[:max_length], label


def generate(cfg: dict, l_max: int, seed: int) -> TaskData:
    """Synthetic stand-in splits; ``cfg`` keys ``n_train``, ``n_val``, ``n_test``, ``min_length``, ``max_length``.

    A keyword cut off by ``max_length`` leaves a few unlabeled texts; that noise is harmless for
    a smoke run.
    """
    check_generator_keys(cfg, GENERATE_KEYS, "Text")
    rng = random.Random(seed)
    splits = []
    for split in ("n_train", "n_val", "n_test"):
        examples = [synthetic_review(rng, cfg["min_length"], cfg["max_length"]) for _ in range(cfg[split])]
        splits.append(TokenDataset([encode_bytes(t, l_max) for t, _ in examples], [y for _, y in examples]))
    return TaskData(*splits, collate=collate_tokens, n_classes=2, l_max=l_max, kind="tokens",
                    vocab_size=BYTE_VOCAB_SIZE, source="generated stand-in (planted keywords), not IMDB")


def read_reviews(split_dir: Path, l_max: int) -> TokenDataset:
    """``split_dir/{neg,pos}/*.txt`` as byte tokens with labels 0 / 1 (files in sorted order)."""
    sequences, labels = [], []
    for label, name in enumerate(("neg", "pos")):
        folder = split_dir / name
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(
                f"expected IMDB reviews as {folder}/*.txt (the aclImdb layout: aclImdb/{{train,test}}/{{pos,neg}}/)"
            )
        for path in files:
            sequences.append(encode_bytes(path.read_text(encoding="utf-8", errors="replace"), l_max))
            labels.append(label)
    return TokenDataset(sequences, labels)


def load(data_dir: Path, l_max: int) -> TaskData:
    """IMDB from ``data_dir/aclImdb``; the test split doubles as the validation split."""
    root = Path(data_dir) / "aclImdb"
    train = read_reviews(root / "train", l_max)
    test = read_reviews(root / "test", l_max)
    return TaskData(train, test, test, collate=collate_tokens, n_classes=2, l_max=l_max, kind="tokens",
                    vocab_size=BYTE_VOCAB_SIZE, source=str(root))
