"""ListOps: nested list operations over digits, 10 classes (Nangia & Bowman 2018; LRA version).

An expression is a tree: each inner node is an operator ``MIN``, ``MAX``, ``MED`` (integer
median) or ``SM`` (sum modulo 10) applied to 2..``max_args`` arguments, each leaf a digit 0-9.
Its label is its value. Source strings wrap every argument in parentheses, e.g.
``( ( [MAX 2 ) 9 ) ]`` for ``MAX(2, 9)``.

Tokenization drops the parentheses and keeps ``[MIN [MAX [MED [SM``, ``]`` (close) and the
digits: 15 tokens after the special ids (pad, unk, eos, mask), an ``<eos>`` appended.

- :func:`generate_tree`, :func:`evaluate`, :func:`to_source`: the generator of the release
  (each node below the root is an operator with probability 0.25 up to ``max_depth``).
- :func:`tokenize`, :func:`evaluate_tokens`: the model's view of an expression.
- :func:`load` reads ``listops-1000/basic_{train,val,test}.tsv`` (header ``Source\\tTarget``).
- :func:`generate` builds all three splits with the generator (the smoke runs' data);
  :func:`write_release` writes them as the release's TSV files, so that :func:`load` runs
  offline end to end (``python -m benchmarks.lra.make_data --task listops --out DIR``).

A release line with a token outside the vocabulary, a label outside 0-9 or a wrong column count
is an error naming the file and line.
"""

from __future__ import annotations

import random
from pathlib import Path
from statistics import median
from typing import Callable

import numpy as np

from .common import (EOS_ID, SPECIALS, UNK_ID, TaskData, TokenDataset, atomic_dir, check_generator_keys,
                     collate_tokens, require_file)

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
VOCAB = (*SPECIALS, *OPERATORS, CLOSE, *(str(d) for d in range(10)))
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
N_CLASSES = 10
HEADER = ["Source", "Target"]
DIGITS = tuple(str(d) for d in range(10))


def apply_operator(op: str, values: list[int]) -> int:
    """Value of ``op`` (one of :data:`OPERATORS`) on the digits ``values``.

    Example:
        >>> apply_operator("[MED", [1, 2, 9, 4])
        3
    """
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(median(values))
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}; expected one of {OPERATORS}")


def generate_tree(rng: random.Random, max_depth: int = 10, max_args: int = 10, op_prob: float = 0.25, depth: int = 0):
    """A random expression: a digit (int) or ``(operator, [arguments])``.

    The root (``depth == 0``) is always an operator; below it a node is an operator with
    probability ``op_prob`` while ``depth < max_depth`` and a digit otherwise. Operators take
    ``2..max_args`` arguments.
    """
    if depth > 0 and (depth >= max_depth or rng.random() >= op_prob):
        return rng.randrange(10)
    op = rng.choice(OPERATORS)
    args = [generate_tree(rng, max_depth, max_args, op_prob, depth + 1) for _ in range(rng.randint(2, max_args))]
    return op, args


def evaluate(tree) -> int:
    """Value (0-9) of a tree from :func:`generate_tree`."""
    if isinstance(tree, int):
        return tree
    op, args = tree
    return apply_operator(op, [evaluate(a) for a in args])


def to_source(tree) -> str:
    """The release's source string: ``MAX(2, 9)`` -> ``( ( [MAX 2 ) 9 ) ]``.

    Each argument closes a parenthesized prefix ``( prefix arg )``; the close token ends the
    operator.
    """
    if isinstance(tree, int):
        return str(tree)
    op, args = tree
    text = op
    for arg in args:
        text = f"( {text} {to_source(arg)} )"
    return f"{text} {CLOSE}"


def tokenize(source: str) -> list[str]:
    """Split a source string on whitespace and drop the parentheses."""
    return [t for t in source.split() if t not in ("(", ")")]


def encode(source: str, l_max: int) -> np.ndarray:
    """Token ids of ``source`` plus ``<eos>``, cut to ``l_max``; unknown tokens map to ``<unk>``."""
    ids = [TOKEN_IDS.get(t, UNK_ID) for t in tokenize(source)]
    return np.array((ids + [EOS_ID])[:l_max], dtype=np.int64)


def evaluate_tokens(tokens: list[str]) -> int:
    """Value of a tokenized expression (parentheses already dropped), with a stack.

    Raises ValueError on a malformed sequence (unbalanced operators, stray tokens).

    Example:
        >>> evaluate_tokens(["[MAX", "2", "9", "]"])
        9
    """
    stack: list[tuple[str, list[int]]] = []
    result = None
    for token in tokens:
        if token in OPERATORS:
            stack.append((token, []))
        elif token == CLOSE:
            if not stack:
                raise ValueError("ListOps: ']' without an open operator")
            op, values = stack.pop()
            value = apply_operator(op, values)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        elif token.isdigit() and len(token) == 1 and stack:
            stack[-1][1].append(int(token))
        else:
            raise ValueError(f"ListOps: unexpected token {token!r}")
    if stack or result is None:
        raise ValueError("ListOps: unterminated expression")
    return result


def sample_expression(rng: random.Random, min_length: int, max_length: int, max_depth: int, max_args: int,
                      max_tries: int = 10_000):
    """Draw trees until one has ``min_length <= tokens <= max_length``; return ``(source, label)``.

    Token counts exclude parentheses (and ``<eos>``). Raises RuntimeError naming the settings if
    ``max_tries`` draws all miss the range.
    """
    for _ in range(max_tries):
        tree = generate_tree(rng, max_depth, max_args)
        source = to_source(tree)
        if min_length <= len(tokenize(source)) <= max_length:
            return source, evaluate(tree)
    raise RuntimeError(
        f"ListOps generator: no expression with {min_length}..{max_length} tokens in {max_tries} draws "
        f"(max_depth={max_depth}, max_args={max_args}); widen the length range or raise max_depth/max_args"
    )


SPLITS = ("train", "val", "test")
GENERATE_KEYS = ("n_train", "n_val", "n_test", "min_length", "max_length", "max_depth", "max_args")


def generate_examples(cfg: dict, seed: int,
                      progress: Callable[[int], None] | None = None) -> dict[str, list[tuple[str, int]]]:
    """``(source, label)`` pairs of the three splits, keyed ``train``, ``val``, ``test``.

    ``cfg`` keys: ``n_train``, ``n_val``, ``n_test``, ``min_length``, ``max_length``,
    ``max_depth``, ``max_args`` (the release used 96000/2000/2000, 500, 2000, 10, 10).
    ``progress(1)`` is called after each example.
    """
    check_generator_keys(cfg, GENERATE_KEYS, "ListOps")
    rng = random.Random(seed)
    splits = {}
    for split in SPLITS:
        examples = []
        for _ in range(cfg[f"n_{split}"]):
            examples.append(sample_expression(rng, cfg["min_length"], cfg["max_length"], cfg["max_depth"],
                                              cfg["max_args"]))
            if progress is not None:
                progress(1)
        splits[split] = examples
    return splits


def write_release(data_dir: Path, cfg: dict, seed: int, progress: Callable[[int], None] | None = None) -> Path:
    """Write generated splits as ``data_dir/listops-1000/basic_{train,val,test}.tsv`` (the release
    format: header ``Source<TAB>Target``, then ``source<TAB>label``); return the folder. The folder
    is written whole or not at all and replaces an earlier one (:func:`~.common.atomic_dir`)."""
    root = Path(data_dir) / "listops-1000"
    splits = generate_examples(cfg, seed, progress)
    with atomic_dir(root) as tmp:       # all three files or none: an interrupt leaves no partial set
        for split, examples in splits.items():
            rows = [f"{source}\t{label}" for source, label in examples]
            (tmp / f"basic_{split}.tsv").write_text("\t".join(HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return root


def generate(cfg: dict, l_max: int, seed: int) -> TaskData:
    """All three splits from the generator (settings as :func:`generate_examples`)."""
    splits = [TokenDataset([encode(s, l_max) for s, _ in examples], [label for _, label in examples])
              for examples in generate_examples(cfg, seed).values()]
    return TaskData(*splits, collate=collate_tokens, n_classes=N_CLASSES, l_max=l_max, kind="tokens",
                    vocab_size=len(VOCAB), source="generated ListOps")


def read_tsv(path: Path, l_max: int) -> TokenDataset:
    """One release split: header ``Source\\tTarget``, then ``source<TAB>label`` lines."""
    require_file(path, "a ListOps split (listops-1000/basic_{train,val,test}.tsv)")
    sequences, labels = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != HEADER:
            raise ValueError(f"{path}: expected the header {'<TAB>'.join(HEADER)!r}, got {'<TAB>'.join(header)!r}")
        for line_no, line in enumerate(f, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2 or fields[1].strip() not in DIGITS:
                raise ValueError(f"{path}:{line_no}: expected 'source<TAB>label (0-9)', got {line[:80]!r}")
            unknown = sorted({t for t in tokenize(fields[0]) if t not in TOKEN_IDS})
            if unknown:
                raise ValueError(f"{path}:{line_no}: unknown ListOps tokens {unknown[:5]}; expected "
                                 f"parentheses and {list(VOCAB[len(SPECIALS):])}")
            sequences.append(encode(fields[0], l_max))
            labels.append(int(fields[1]))
    return TokenDataset(sequences, labels)


def load(data_dir: Path, l_max: int) -> TaskData:
    """The release splits from ``data_dir/listops-1000/basic_{train,val,test}.tsv``."""
    root = Path(data_dir) / "listops-1000"
    splits = [read_tsv(root / f"basic_{split}.tsv", l_max) for split in SPLITS]
    return TaskData(*splits, collate=collate_tokens, n_classes=N_CLASSES, l_max=l_max, kind="tokens",
                    vocab_size=len(VOCAB), source=str(root))
