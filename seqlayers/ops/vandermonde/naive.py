"""Materializing Vandermonde product: the oracle for :func:`seqlayers.ops.vandermonde`."""

from __future__ import annotations

import torch
from torch import Tensor


def naive_vandermonde(v: Tensor, z: Tensor, L: int) -> Tensor:
    """``K[..., l] = 2 * Re(sum_n v[..., n] * z[..., n] ** l)`` with the full ``(..., N, L)`` powers.

    Memory is O(numel(z) * L); use only for tests and small sizes.

    Args:
        v: complex ``(..., M..., N)``; its trailing dims equal ``z.shape``.
        z: complex ``(M..., N)``.
        L: output length.

    Returns:
        real ``(*v.shape[:-1], L)``, float32 (float64 for complex128 inputs).
    """
    ar = torch.arange(L, device=z.device, dtype=z.real.dtype)
    powers = torch.exp(torch.log(z).unsqueeze(-1) * ar)  # (M..., N, L)
    return 2 * torch.einsum("...n,...nl->...l", v, powers).real
