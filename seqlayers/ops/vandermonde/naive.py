"""Materializing Vandermonde product: the oracle for :func:`seqlayers.ops.vandermonde`."""

from __future__ import annotations

import torch
from torch import Tensor

from ..autograd import vjp_backward


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


def plan(call, auto: bool) -> None:
    return None


def forward(plan: None, v: Tensor, z: Tensor, L: int) -> Tensor:
    return naive_vandermonde(v, z, L)


def backward(plan: None, grad: Tensor, v: Tensor, z: Tensor, L: int, needs: list[bool]):
    return vjp_backward(lambda v, z: naive_vandermonde(v, z, L), grad, (v, z), needs)
