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
           "cmul", "second_row_mask", "triton", "tl"]


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
def second_row_mask(mask, pair, B):
    """``mask`` for row ``2 * pair + 1`` of a batch of ``B`` packed in pairs: off past the batch."""
    return tl.where(2 * pair + 1 < B, mask, False)
