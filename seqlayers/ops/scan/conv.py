"""The ``"conv"`` backend of linear_scan: a time-invariant recurrence as a causal convolution.

With one decay ``z (P,)`` for every row and step (``a`` of shape ``(1, 1, P)``), the states are
``h_t = sum_{s <= t} z^(t - s) b_s + z^(t + 1) h0``: the causal convolution of ``b`` with the
powers ``K[p, l] = z_p^l``, computed by :func:`seqlayers.ops.long_conv`, whose own backend
choice applies (``use_backend(..., op="long_conv")``, ``SEQLAYERS_CONV_BACKEND``, ``"auto"``).
Complex states convolve as four real convolutions. The backward is the adjoint recurrence of
:mod:`.adjoint` (``conj(z)``, run backwards in time), which is the same convolution on the
reversed gradient, and ``grad_z = sum over rows and t of conj(h_{t-1}) lam_t``.

Memory: the modes are taken in groups small enough that a group's powers and convolution
buffers stay within :data:`GROUP_BYTES`, so no ``(P, L)`` kernel is ever held whole.

``"auto"`` gives it a call only on CUDA, where the convolution backends are the fast path; on the
CPU the scan backends are faster (2-31x, ``benchmarks/results/scan_cpu.md``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import Unsupported
from ..conv import long_conv
from .call import ScanCall

__all__ = ["SHARED_DECAY", "plan", "forward", "backward"]

SHARED_DECAY = True
"""The dispatcher hands this backend ``a`` as the shared ``(1, 1, P)`` decay, unexpanded."""

GROUP_BYTES = 1 << 28
"""Working memory aimed at per group of modes (256 MiB)."""

_BYTES_PER_POSITION = 48
"""Real values held per mode, row and position while a group convolves: the four real inputs
and outputs of a complex convolution and the FFT buffers of twice the length (measured order of
magnitude, rounded up)."""


def plan(call: ScanCall, auto: bool) -> int:
    """The number of modes convolved at once; refuses decays that vary (and, for ``"auto"``,
    devices other than CUDA)."""
    if not call.shared_decay:
        raise Unsupported("needs one time-invariant decay: a of shape (1, 1, P)")
    if auto and call.device.type != "cuda":
        raise Unsupported("off CUDA the scans are faster (2-31x on the CPU); ask for 'conv' by name")
    real_size = torch.finfo(call.dtype).bits // (16 if call.dtype.is_complex else 8)
    per_mode = real_size * call.length * (_BYTES_PER_POSITION * call.batch + 8)
    return max(1, min(call.states, GROUP_BYTES // per_mode))


def _powers(z: Tensor, L: int) -> Tensor:
    """``(G,)`` -> ``(G, L)``: ``z ** l``, with ``z ** 0 = 1`` even where ``z`` underflowed to 0."""
    steps = torch.arange(L, device=z.device, dtype=z.real.dtype)
    return torch.where(steps == 0, torch.ones((), dtype=z.dtype, device=z.device), z[:, None] ** steps)


def _causal_conv(x: Tensor, K: Tensor) -> Tensor:
    """``y_t = sum_{s <= t} K[:, t - s] x_s``: ``x (B, L, G)``, ``K (G, L)`` -> ``(B, L, G)``."""
    u = x.transpose(1, 2)
    if not x.is_complex():
        return long_conv(u, K).transpose(1, 2)
    u4 = torch.cat([u.real, u.imag, u.imag, u.real], dim=1)
    k4 = torch.cat([K.real, K.imag, K.real, K.imag])
    rr, ii, ri, ir = long_conv(u4, k4).split(K.shape[0], dim=1)
    return torch.complex(rr - ii, ri + ir).transpose(1, 2)


def _groups(P: int, size: int):
    return (slice(start, min(start + size, P)) for start in range(0, P, size))


def forward(plan: int, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    z = a.reshape(-1)
    h = torch.empty_like(b)
    for modes in _groups(b.shape[-1], plan):
        K = _powers(z[modes], b.shape[1])
        h_g = _causal_conv(b[..., modes], K)
        if h0 is not None:  # + z^(t + 1) h0
            h_g += (z[modes] * h0[:, modes]).unsqueeze(1) * K.T
        h[..., modes] = h_g
    return h


def backward(plan: int, grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor,
             needs: list[bool]) -> tuple[Tensor | None, Tensor, Tensor | None]:
    z = a.reshape(-1)
    lam = torch.empty_like(b)
    grad_z = torch.zeros_like(z) if needs[0] else None
    for modes in _groups(b.shape[-1], plan):
        # lam_t = sum_{s >= t} conj(z)^(s - t) grad_s: the causal convolution in reversed time
        lam_g = _causal_conv(grad[..., modes].flip(1), _powers(z[modes].conj(), b.shape[1])).flip(1)
        lam[..., modes] = lam_g
        if needs[0]:
            grad_z[modes] = (lam_g[:, 1:] * h[:, :-1, modes].conj()).sum((0, 1))
            if h0 is not None:
                grad_z[modes] += (lam_g[:, 0] * h0[:, modes].conj()).sum(0)
    grad_h0 = z.conj() * lam[:, 0] if needs[2] and h0 is not None else None
    return None if grad_z is None else grad_z.view(a.shape), lam, grad_h0
