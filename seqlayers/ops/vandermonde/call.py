"""What every ``vandermonde`` backend receives: checked arguments, described by a :class:`VandermondeCall`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class VandermondeCall:
    """One call for ``L`` positions on ``v (P, M, N)`` and ``z (M, N)`` (or any ``v (..., M..., N)``,
    ``z (M..., N)``, counted as ``P`` channels of ``M`` rows): shapes, dtype, device."""

    channels: int
    rows: int
    modes: int
    length: int
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def of(cls, v: Tensor, z: Tensor, L: int) -> VandermondeCall:
        N = z.shape[-1]
        rows = z.numel() // N if N else 0
        return cls(v.numel() // max(z.numel(), 1), rows, N, L, z.dtype, z.device)

    @property
    def width(self) -> int:
        """The parallel width ``P * M``: the output rows."""
        return self.channels * self.rows
