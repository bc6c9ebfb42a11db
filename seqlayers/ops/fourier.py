"""Fourier pieces every FFT convolution of the package shares: the Monarch split and the roots of unity."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def monarch_factors(n: int) -> tuple[int, int]:
    """``n = N1 * N2`` for a power of two ``n``: ``N1 = 2 ** floor(log2(n) / 2)``, ``N2 = n / N1``.

    So ``N1 <= N2 <= 2 * N1`` (1024 = 32 x 32, 2048 = 32 x 64); the split of every Monarch /
    four-step FFT in this package (the Triton ``fft`` and ``butterfly`` backends, the learned
    butterfly).
    """
    log_n = n.bit_length() - 1
    return 1 << (log_n // 2), 1 << (log_n - log_n // 2)


def roots_of_unity(rows: int, cols: int, n: int) -> Tensor:
    """``exp(-2 pi i r c / n)`` for ``r < rows``, ``c < cols``: complex128 ``(rows, cols)``.

    The exponent is reduced mod ``n`` in integers and the angle taken in float64, so every table
    (DFT matrices, twiddles) is exact to double rounding whatever its size.
    """
    r = torch.arange(rows, dtype=torch.int64)[:, None]
    c = torch.arange(cols, dtype=torch.int64)[None, :]
    angle = ((r * c) % n).to(torch.float64) * (-2.0 * math.pi / n)
    return torch.polar(torch.ones_like(angle), angle)


def real_planes(table: Tensor) -> Tensor:
    """A complex table as float32 planes ``(2, *shape)`` (real, imaginary): what Triton kernels load."""
    return torch.view_as_real(table).movedim(-1, 0).float().contiguous()
