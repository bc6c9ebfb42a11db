"""The ``"torch"`` backend of long_conv: zero-padded real FFTs from ``torch.fft``.

Runs on every device and dtype torch supports; it is the CPU default and the reference the
Triton backends are benchmarked against. The plan is the FFT size; the backward correlates in
the frequency domain (``du = irfft(G conj(K))``, ``dk = irfft(sum_b G conj(U))``), recomputing the
input spectra rather than keeping them from the forward.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .call import ConvCall


@functools.lru_cache(maxsize=None)
def next_fast_len(n: int) -> int:
    """Smallest integer ``>= n`` whose prime factors are all in {2, 3, 5, 7}.

    FFT libraries (pocketfft, cuFFT) are fastest on such sizes; a power of two can be up to
    twice as large.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    best = 1 << (n - 1).bit_length()
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                size = p3
                while size < n:
                    size *= 2
                best = min(best, size)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


def plan(call: ConvCall, auto: bool) -> int:
    """The FFT size: the smallest 2-3-5-7-smooth size ``>= L + Lk - 1``."""
    return next_fast_len(call.total)


def _compute_dtype(u: Tensor) -> torch.dtype:
    return torch.promote_types(u.dtype, torch.float32)


def forward(n: int, u: Tensor, k: Tensor, D: Tensor | None) -> Tensor:
    """``y = conv(u, k) + D u`` by FFTs of size ``n``; ``(B, H, L)`` in ``u``'s dtype."""
    dtype, L = _compute_dtype(u), u.shape[-1]
    u32 = u.to(dtype)
    y = torch.fft.irfft(torch.fft.rfft(u32, n=n) * torch.fft.rfft(k.to(dtype), n=n), n=n)[..., :L]
    if D is not None:
        y = y + D.to(dtype).unsqueeze(-1) * u32
    return y.to(u.dtype)


def backward(n: int, grad: Tensor, u: Tensor, k: Tensor, D: Tensor | None,
             needs: list[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(du, dk, dD)`` of :func:`forward` for the upstream gradient ``grad``; None where not needed."""
    dtype, L, Lk = _compute_dtype(u), u.shape[-1], k.shape[-1]
    g = grad.to(dtype)
    g_f = torch.fft.rfft(g, n=n)
    du = dk = dD = None
    if needs[0]:
        du = torch.fft.irfft(g_f * torch.fft.rfft(k.to(dtype), n=n).conj_physical(), n=n)[..., :L]
        if D is not None:
            du = du + D.to(dtype).unsqueeze(-1) * g
    if needs[1]:
        corr = torch.einsum("bhf,bhf->hf", g_f, torch.fft.rfft(u.to(dtype), n=n).conj_physical())
        dk = torch.fft.irfft(corr, n=n)[..., :Lk]
    if needs[2]:
        dD = torch.einsum("bhl,bhl->h", u.to(dtype), g)
    return du, dk, dD


def torch_fft_long_conv(u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
    """Causal linear convolution by ``torch.fft``, differentiable through plain autograd.

    The function behind the ``"torch"`` backend, without the custom op: same contract as
    :func:`seqlayers.ops.long_conv` (``u (B, H, L)``, ``k (H, Lk)``, ``D (H,)`` or None).
    """
    return forward(next_fast_len(u.shape[-1] + k.shape[-1] - 1), u, k, D)
