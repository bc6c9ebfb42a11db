"""The ``"torch"`` backend of long_conv: zero-padded real FFTs from ``torch.fft``.

Runs on every device and dtype torch supports; it is the CPU default and the reference the
Triton backends are benchmarked against.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


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


def fft_long_conv(u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
    """Causal linear convolution by real FFTs of size ``next_fast_len(L + Lk - 1)``.

    Same contract as :func:`seqlayers.ops.long_conv`: ``u (B, H, L)``, ``k (H, Lk)``,
    ``D (H,)`` or None; returns ``(B, H, L)`` in ``u``'s dtype, computed in float32 (float64 for
    float64 inputs). Differentiable through ``torch.fft``.
    """
    dtype = torch.promote_types(u.dtype, torch.float32)
    L, Lk = u.shape[-1], k.shape[-1]
    n = next_fast_len(L + Lk - 1)
    u32 = u.to(dtype)
    u_f = torch.fft.rfft(u32, n=n)
    k_f = torch.fft.rfft(k.to(dtype), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n)[..., :L]
    if D is not None:
        y = y + D.to(dtype).unsqueeze(-1) * u32
    return y.to(u.dtype)
