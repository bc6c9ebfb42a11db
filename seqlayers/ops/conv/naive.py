"""Direct causal convolution: the oracle every long_conv backend is tested against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .call import ConvCall


def naive_long_conv(u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
    """Causal linear convolution computed directly, in O(B * H * L * Lk).

    ``y[b, h, t] = sum_{0 <= j < Lk, j <= t} k[h, j] * u[b, h, t - j] + D[h] * u[b, h, t]``

    Args:
        u: input, ``(B, H, L)``, real floating point.
        k: kernel, ``(H, Lk)`` with ``Lk <= L``.
        D: skip term, ``(H,)``, or None.

    Returns:
        ``(B, H, L)`` in ``u``'s dtype, computed in float32 (float64 for float64 inputs).

    Example:
        >>> y = naive_long_conv(torch.randn(2, 3, 10), torch.randn(3, 4))
    """
    dtype = torch.promote_types(u.dtype, torch.float32)
    H, Lk = k.shape
    x = F.pad(u.to(dtype), (Lk - 1, 0))
    # conv1d computes a cross-correlation, so flip the kernel; groups=H keeps features apart
    y = F.conv1d(x, k.to(dtype).flip(-1).unsqueeze(1), groups=H)
    if D is not None:
        y = y + D.to(dtype).unsqueeze(-1) * u.to(dtype)
    return y.to(u.dtype)


def plan(call: ConvCall, auto: bool) -> None:
    return None


def forward(plan: None, u: Tensor, k: Tensor, D: Tensor | None) -> Tensor:
    return naive_long_conv(u, k, D)


def backward(plan: None, grad: Tensor, u: Tensor, k: Tensor, D: Tensor | None, needs: list[bool]):
    """The gradients written out directly: ``du[s] = sum_j k[j] dy[s + j] + D dy[s]`` (a
    correlation), ``dk[j] = sum_{b, t} dy[t] u[t - j]``, ``dD = sum_{b, t} u dy``."""
    dtype = torch.promote_types(u.dtype, torch.float32)
    H, Lk = k.shape
    g, x = grad.to(dtype), u.to(dtype)
    du = dk = dD = None
    if needs[0]:
        du = F.conv1d(F.pad(g, (0, Lk - 1)), k.to(dtype).unsqueeze(1), groups=H)
        if D is not None:
            du = du + D.to(dtype).unsqueeze(-1) * g
    if needs[1]:
        windows = F.pad(x, (Lk - 1, 0)).unfold(-1, Lk, 1)  # [b, h, t, i] = u[t - (Lk - 1 - i)]
        dk = torch.einsum("bht,bhti->hi", g, windows).flip(-1)
    if needs[2]:
        dD = torch.einsum("bht,bht->h", x, g)
    return du, dk, dD
