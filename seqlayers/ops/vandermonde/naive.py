"""Materializing Vandermonde product: the oracle for :func:`seqlayers.ops.vandermonde`."""

from __future__ import annotations

import torch
from torch import Tensor



def _powers(z: Tensor, L: int) -> Tensor:
    """``z ** l`` for ``l < L``: ``(M..., N, L)``."""
    ar = torch.arange(L, device=z.device, dtype=z.real.dtype)
    return torch.exp(torch.log(z).unsqueeze(-1) * ar)


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
    return 2 * torch.einsum("...n,...nl->...l", v, _powers(z, L)).real


def plan(call, auto: bool) -> None:
    return None


def forward(plan: None, v: Tensor, z: Tensor, L: int) -> Tensor:
    return naive_vandermonde(v, z, L)


def backward(plan: None, grad: Tensor, v: Tensor, z: Tensor, L: int, needs: list[bool]):
    """``grad_v = 2 conj(sum_l g[l] z^l)`` and ``grad_z = 2 conj(sum_p v sum_l g[l] l z^l / z)``
    (PyTorch's complex convention) for ``v (P, M, N)``, ``z (M, N)`` and a real ``grad (P, M, L)``."""
    powers = _powers(z, L)  # (M, N, L)
    g = grad.to(z.dtype)
    grad_v = grad_z = None
    if needs[0]:
        grad_v = 2 * torch.einsum("pml,mnl->pmn", g, powers).conj_physical()
    if needs[1]:
        steps = torch.arange(L, device=z.device, dtype=z.real.dtype)
        weighted = torch.einsum("pml,mnl->pmn", g, powers * steps)  # sum_l g l z^l
        grad_z = 2 * ((v * weighted).sum(0) / z).conj_physical()
    return grad_v, grad_z
