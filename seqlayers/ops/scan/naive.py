"""Sequential linear recurrence: the oracle every ``linear_scan`` backend is tested against."""

from __future__ import annotations

import torch
from torch import Tensor

from .adjoint import adjoint


def naive_linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t``, one Python step per position; obviously correct, slow.

    Differentiable through plain autograd.

    Args:
        a: ``(B, L, P)`` decay, float32/float64/complex64/complex128.
        b: ``(B, L, P)`` input, same dtype as ``a``.
        h0: ``(B, P)`` initial state, or None for zeros.

    Returns:
        ``(B, L, P)`` states ``h_0 .. h_{L-1}`` in ``a``'s dtype.

    Example:
        >>> a, b = torch.rand(2, 10, 4), torch.randn(2, 10, 4)
        >>> naive_linear_scan(a, b).shape
        torch.Size([2, 10, 4])
    """
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    states = []
    # unbind, not a[:, t]: the backward of one unbind is one stack, not L full-size scatters
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, dim=1)


def _sequential(a: Tensor, b: Tensor, h0: Tensor | None, reverse: bool) -> Tensor:
    """The recurrence position by position, from the end if ``reverse`` (the adjoint's direction)."""
    if not reverse:
        return naive_linear_scan(a, b, h0)
    return naive_linear_scan(a.flip(1), b.flip(1), h0).flip(1)


def plan(call, auto: bool) -> None:
    return None


def forward(plan: None, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    return naive_linear_scan(a, b, h0)


def backward(plan: None, grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor, needs: list[bool]):
    return adjoint(_sequential, grad, a, h0, h, False, needs)
