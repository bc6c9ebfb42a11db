"""What the Triton backends share: where they can run, how they split work, tables, device helpers.

Imported only by the Triton backends (``ops/conv/fft.py``, ``ops/conv/butterfly.py``,
``ops/scan/triton.py``); an ImportError here (no Triton) makes those backends unavailable with
the reason, never breaks ``import seqlayers``.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # the registry reports this as the reason the backend is unavailable
    raise ImportError(f"the Triton backends need Triton ({exc}); fix: pip install triton") from exc

from ..errors import Unsupported
from .fourier import real_planes, roots_of_unity

__all__ = ["interpreting", "is_available", "check_call", "target_programs", "split_work", "roots",
           "cmul", "cmul_add", "second_row_mask", "pair_rows", "load_pair", "load_pairs_and_dot", "store_pair", "store_pair_plus_skip", "triton", "tl"]


def interpreting() -> bool:
    """Whether Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def is_available() -> tuple[bool, str]:
    """Triton imported; a CUDA GPU visible, or ``TRITON_INTERPRET=1`` set."""
    if interpreting() or torch.cuda.is_available():
        return True, ""
    return False, ("no CUDA GPU for Triton; on the CPU set TRITON_INTERPRET=1 before importing "
                   "seqlayers (slow, for testing), or use backend='torch'")


def check_call(backend: str, device: torch.device, dtypes: dict[str, torch.dtype | None],
               supported: tuple[torch.dtype, ...], auto: bool) -> None:
    """Raise :class:`Unsupported` unless a Triton backend can take a call on ``device`` whose
    tensors have ``dtypes`` (``{name: dtype or None}``); ``auto`` refuses the interpreter."""
    for name, dtype in dtypes.items():
        if dtype is not None and dtype not in supported:
            names = ", ".join(str(d).removeprefix("torch.") for d in supported)
            raise Unsupported(f"{name} has dtype {dtype}; the '{backend}' backend takes {names} "
                              "(use backend='torch' for others)")
    if device.type != "cuda":
        if auto:
            raise Unsupported(f"tensors are on {device}: the Triton interpreter is for testing; "
                              f"ask for backend='{backend}' explicitly")
        if not interpreting():
            raise Unsupported(f"tensors are on {device}; move them to a CUDA device, or set "
                              "TRITON_INTERPRET=1 to run the kernels on the CPU (slow, for testing)")


def target_programs(device: torch.device) -> int:
    """How many programs a launch should aim for to fill the device (4 per SM; 1 off-GPU)."""
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 1


def split_work(items: int, rows: int, programs: int, device: torch.device) -> tuple[int, int]:
    """``(items_per_program, groups)``: split ``items`` (batch pairs) over program groups only
    when ``programs`` alone are too few to fill the device; ``items_per_program`` is a multiple
    of ``rows`` (the items a program handles at once), and each group redoes its setup."""
    chunks = -(-items // rows)
    groups = max(1, min(chunks, -(-target_programs(device) // programs)))
    per_program = -(-chunks // groups) * rows
    return per_program, -(-items // per_program)


@functools.lru_cache(maxsize=None)
def roots(rows: int, cols: int, n: int, device: torch.device) -> Tensor:
    """``exp(-2 pi i r c / n)`` as float32 planes ``(2, rows, cols)`` on ``device``, cached."""
    return real_planes(roots_of_unity(rows, cols, n)).to(device)


@triton.jit
def cmul(ar, ai, br, bi, CONJ_B: tl.constexpr):
    """``a * b`` (or ``a * conj(b)``) for complex numbers held as (real, imaginary) pairs."""
    if CONJ_B:
        return ar * br + ai * bi, ai * br - ar * bi
    return ar * br - ai * bi, ar * bi + ai * br


@triton.jit
def cmul_add(acc_r, acc_i, ar, ai, br, bi, CONJ_B: tl.constexpr):
    """``acc + a * b`` (``acc + a * conj(b)`` with ``CONJ_B``) on split complex tiles."""
    pr, pi = cmul(ar, ai, br, bi, CONJ_B)
    return acc_r + pr, acc_i + pi


@triton.jit
def second_row_mask(mask, pair, B):
    """``mask`` for row ``2 * pair + 1`` of a batch of ``B`` packed in pairs: off past the batch."""
    return tl.where(2 * pair + 1 < B, mask, False)


@triton.jit
def pair_rows(pair, h, H, L, time, mask_r, B):
    """Offsets of feature ``h``, positions ``time``, in row ``2 * pair`` of a ``(B, H, L)``
    tensor (row ``2 * pair + 1`` is ``H * L`` further), and the second row's mask."""
    offs = (2 * pair * H + h.to(tl.int64)) * L + time
    return offs, second_row_mask(mask_r, pair, B)


@triton.jit
def load_pair(ptr, offs, row_stride, mask_r, mask_i):
    """Rows ``2p`` and ``2p + 1`` (``row_stride`` elements apart) at ``offs``, as the real and
    imaginary parts of one complex row, in float32 (zero where masked)."""
    re = tl.load(ptr + offs, mask=mask_r, other=0.0).to(tl.float32)
    im = tl.load(ptr + offs + row_stride, mask=mask_i, other=0.0).to(tl.float32)
    return re, im


@triton.jit
def load_pairs_and_dot(a_ptr, b_ptr, offs, row_stride, mask_r, mask_i, dot, HAS_DOT: tl.constexpr):
    """:func:`load_pair` of ``a`` and of ``b`` at the same ``offs``; with ``HAS_DOT``, ``dot``
    plus the sum of ``a * b`` over both rows (the skip term's gradient), else ``dot``."""
    ar, ai = load_pair(a_ptr, offs, row_stride, mask_r, mask_i)
    br, bi = load_pair(b_ptr, offs, row_stride, mask_r, mask_i)
    if HAS_DOT:
        dot += tl.sum(tl.sum(ar * br + ai * bi, axis=1), axis=0)
    return ar, ai, br, bi, dot


@triton.jit
def store_pair(ptr, offs, row_stride, re, im, mask_r, mask_i):
    """The inverse of :func:`load_pair`: ``re`` to row ``2p``, ``im`` to row ``2p + 1``."""
    tl.store(ptr + offs, re, mask=mask_r)
    tl.store(ptr + offs + row_stride, im, mask=mask_i)


@triton.jit
def store_pair_plus_skip(out_ptr, skip_ptr, d_ptr, h, offs, row_stride, re, im, mask_r, mask_i,
                         HAS_D: tl.constexpr):
    """:func:`store_pair` of ``(re, im) + D[h] * skip`` (without ``HAS_D``, of ``(re, im)``). The
    skip rows are loaded again here (from cache) rather than kept live through the transforms."""
    if HAS_D:
        d = tl.load(d_ptr + h).to(tl.float32)
        skip_r, skip_i = load_pair(skip_ptr, offs, row_stride, mask_r, mask_i)
        re += d * skip_r
        im += d * skip_i
    store_pair(out_ptr, offs, row_stride, re, im, mask_r, mask_i)
