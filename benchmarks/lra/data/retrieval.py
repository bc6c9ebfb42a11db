"""Retrieval: do two ACL Anthology papers cite each other? Byte level, 4000 bytes per document.

:func:`load` reads the release's ``tsv_data/new_aan_pairs.{train,eval,test}.tsv``: no header,
tab-separated columns ``label, id1, id2, text1, text2`` (label 0/1, possibly written ``1.0``).
The two documents are tokenized separately (bytes, see ``common.encode_bytes``); the model
encodes each with the same backbone.

:func:`generate` is a synthetic stand-in for smoke runs, not AAN: two random texts that each
contain an identifier word; the label says whether the identifiers are the same.
"""

from __future__ import annotations

import random
from pathlib import Path

from .common import (BYTE_VOCAB_SIZE, PairDataset, TaskData, check_generator_keys, collate_pairs, encode_bytes,
                     require_file)
from .text import GENERATE_KEYS, random_words

SPLITS = ("train", "eval", "test")


def identifier(rng: random.Random) -> str:
    """A 6-character identifier in capitals and digits (never produced by ``random_words``)."""
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))


def synthetic_document(rng: random.Random, key: str, min_length: int, max_length: int) -> str:
    """Random words of ``min_length..max_length`` bytes with ``key`` planted at a random place."""
    words = random_words(rng, rng.randint(min_length, max_length))
    words.insert(rng.randrange(len(words) + 1), key)
    return " ".join(words)


def synthetic_pair(rng: random.Random, min_length: int, max_length: int) -> tuple[str, str, int]:
    """Two documents and label 1 if they share their identifier, 0 otherwise."""
    label = rng.randrange(2)
    key = identifier(rng)
    other = key if label else identifier(rng)
    return (synthetic_document(rng, key, min_length, max_length),
            synthetic_document(rng, other, min_length, max_length), label)


def generate(cfg: dict, l_max: int, seed: int) -> TaskData:
    """Synthetic stand-in splits; ``cfg`` keys ``n_train``, ``n_val``, ``n_test``, ``min_length``, ``max_length``."""
    check_generator_keys(cfg, GENERATE_KEYS, "Retrieval")
    rng = random.Random(seed)
    splits = []
    for split in ("n_train", "n_val", "n_test"):
        pairs = [synthetic_pair(rng, cfg["min_length"], cfg["max_length"]) for _ in range(cfg[split])]
        splits.append(PairDataset([encode_bytes(a, l_max) for a, _, _ in pairs],
                                  [encode_bytes(b, l_max) for _, b, _ in pairs], [y for _, _, y in pairs]))
    return TaskData(*splits, collate=collate_pairs, n_classes=2, l_max=l_max, kind="tokens",
                    vocab_size=BYTE_VOCAB_SIZE, paired=True, source="generated stand-in (shared identifiers), not AAN")


def read_tsv(path: Path, l_max: int) -> PairDataset:
    """One release split: ``label<TAB>id1<TAB>id2<TAB>text1<TAB>text2`` per line, no header."""
    require_file(path, "an AAN split (tsv_data/new_aan_pairs.{train,eval,test}.tsv)")
    first, second, labels = [], [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                label = int(float(fields[0]))
            except ValueError:
                label = -1
            if len(fields) != 5 or label not in (0, 1):
                raise ValueError(
                    f"{path}:{line_no}: expected 5 tab-separated columns 'label id1 id2 text1 text2' "
                    f"with label 0 or 1, got {len(fields)} columns starting {line[:60]!r}"
                )
            first.append(encode_bytes(fields[3], l_max))
            second.append(encode_bytes(fields[4], l_max))
            labels.append(label)
    return PairDataset(first, second, labels)


def load(data_dir: Path, l_max: int) -> TaskData:
    """The release splits from ``data_dir/tsv_data/new_aan_pairs.{train,eval,test}.tsv``."""
    root = Path(data_dir) / "tsv_data"
    splits = [read_tsv(root / f"new_aan_pairs.{split}.tsv", l_max) for split in SPLITS]
    return TaskData(*splits, collate=collate_pairs, n_classes=2, l_max=l_max, kind="tokens",
                    vocab_size=BYTE_VOCAB_SIZE, paired=True, source=str(root))
