"""What every ``linear_scan`` backend receives: checked arguments, described by a :class:`ScanCall`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

COMPUTE_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
HALF_DTYPES = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class ScanCall:
    """Shape ``(B, L, P)``, dtype and device of one ``linear_scan(a, b, h0)`` call;
    ``shared_decay``: ``a`` is one time-invariant decay ``(1, 1, P)`` for every row and step."""

    batch: int
    length: int
    states: int
    dtype: torch.dtype
    has_h0: bool
    device: torch.device
    shared_decay: bool = False

    @classmethod
    def of(cls, a: Tensor, b: Tensor, h0: Tensor | None) -> ScanCall:
        return cls(*b.shape, a.dtype, h0 is not None, a.device, a.shape[:2] == (1, 1))

    @property
    def width(self) -> int:
        """The parallel width ``B * P``."""
        return self.batch * self.states


def check_linear_scan_args(a: Tensor, b: Tensor, h0: Tensor | None) -> None:
    """Validate the arguments of :func:`linear_scan`; raise ValueError/TypeError naming the problem."""
    for name, t in (("a", a), ("b", b), ("h0", h0)):
        if t is None and name == "h0":
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"linear_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in COMPUTE_DTYPES + HALF_DTYPES:
            raise TypeError(
                f"linear_scan: {name} must be float32/float64/complex64/complex128/bfloat16/float16, "
                f"got dtype {t.dtype}"
            )
    if a.dim() != 3 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"linear_scan: a must have shape (B, L, P) with L, P >= 1, got {tuple(a.shape)}")
    if a.shape[:2] == (1, 1):  # one time-invariant decay for every row and step
        if b.dim() != 3 or b.shape[1] == 0 or b.shape[2] != a.shape[2]:
            raise ValueError(f"linear_scan: with a shared decay a (1, 1, P) = {tuple(a.shape)}, b must have "
                             f"shape (B, L, P) with L >= 1 and P = {a.shape[2]}, got {tuple(b.shape)}")
    elif b.shape != a.shape:
        raise ValueError(
            f"linear_scan: b must have a's shape (B, L, P) = {tuple(a.shape)}, got {tuple(b.shape)}"
        )
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(
            f"linear_scan: h0 must have shape (B, P) = {(b.shape[0], b.shape[2])} or be None, "
            f"got {tuple(h0.shape)}"
        )
    for name, t in (("b", b), ("h0", h0)):
        if t is None:
            continue
        if t.dtype != a.dtype:
            raise TypeError(f"linear_scan: {name} must have a's dtype {a.dtype}, got {t.dtype}")
        if t.device != a.device:
            raise ValueError(f"linear_scan: {name} is on {t.device} but a is on {a.device}")
