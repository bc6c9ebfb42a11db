"""The adjoint of the linear recurrence, shared by the backward of the PyTorch scan backends.

With upstream gradient ``G`` (PyTorch's complex convention, ``dL/dRe + i dL/dIm``) the adjoint
``lam_t = G_t + conj(a_{t+1}) * lam_{t+1}`` is the recurrence run in the other direction, and
``grad_b = lam``, ``grad_a_t = lam_t * conj(h_{t-1})``, ``grad_h0 = conj(a_0) * lam_0``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def shift(x: Tensor, reverse: bool, fill: Tensor) -> Tensor:
    """``x`` moved one step along the scan direction over dim 1, ``fill`` ``(B, 1, P)`` entering.

    Forward: ``out[:, t] = x[:, t - 1]``, ``out[:, 0] = fill``; reverse: ``out[:, t] = x[:, t + 1]``.
    """
    return torch.cat([x[:, 1:], fill], dim=1) if reverse else torch.cat([fill, x[:, :-1]], dim=1)


def adjoint(scan: Callable, grad_h: Tensor, a: Tensor, h0: Tensor | None, h: Tensor, reverse: bool,
            needs: list[bool]) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """``(grad_a, grad_b, grad_h0)`` of a scan in direction ``reverse`` whose states are ``h``;
    ``scan(a, b, h0, reverse)`` computes the adjoint (differentiable or not). ``a`` is ``(B, L,
    P)`` or one shared decay ``(1, 1, P)``; ``grad_a`` has ``h``'s shape either way."""
    zeros = torch.zeros_like(a[:, :1])
    # a_{t+1} (a_{t-1} in reverse) for lam_t; a shared decay (1, 1, P) is the same at every step
    decay = a.conj_physical() if a.shape[1] == 1 else shift(a.conj_physical(), not reverse, zeros)
    lam = scan(decay, grad_h, None, not reverse)
    grad_a = grad_h0 = None
    if needs[0]:
        first = torch.zeros_like(h[:, :1]) if h0 is None else h0.conj_physical().unsqueeze(1)
        grad_a = lam * shift(h.conj_physical(), reverse, first)
    if needs[2] and h0 is not None:
        start = -1 if reverse else 0
        grad_h0 = a[:, start].conj_physical() * lam[:, start]
    return grad_a, lam, grad_h0
