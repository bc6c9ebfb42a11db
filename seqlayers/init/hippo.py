"""HiPPO-LegS and its normal-plus-low-rank split (float64, torch)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import is_int


def _check_n(N: int) -> None:
    if not is_int(N) or N <= 0:
        raise ValueError(f"state size N must be a positive int, got {N!r}")


def hippo_legs(N: int) -> tuple[Tensor, Tensor]:
    """The HiPPO-LegS matrices, float64.

    ``A[n, k] = -sqrt(2n+1) sqrt(2k+1)`` for ``n > k``, ``A[n, n] = -(n+1)``, 0 above the
    diagonal; ``B[n] = sqrt(2n+1)``.

    Returns:
        ``A (N, N)`` and ``B (N,)``, float64.

    Example:
        >>> A, B = seqlayers.init.hippo_legs(4)
        >>> A[1, 0].item()
        -1.7320508075688772
    """
    _check_n(N)
    q = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
    A = -torch.tril(q[:, None] * q[None, :], diagonal=-1) - torch.diag(torch.arange(1, N + 1, dtype=torch.float64))
    return A, q.clone()


def hippo_legs_nplr(N: int) -> tuple[Tensor, Tensor, Tensor]:
    """Normal plus low-rank split of HiPPO-LegS: ``A = S - P P^T``.

    Returns:
        ``S (N, N)`` (normal: ``-1/2 I`` plus a skew-symmetric matrix), ``P (N,)`` with
        ``P[n] = sqrt(n + 1/2)``, and ``B (N,)``; all float64.
    """
    A, B = hippo_legs(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    return A + P[:, None] * P[None, :], P, B


def legs_normal_diagonal(N: int) -> tuple[Tensor, Tensor]:
    """Exact diagonalization of the normal part of HiPPO-LegS: ``S = V diag(Lambda) V^*``.

    ``S = -1/2 I + K`` with ``K`` skew-symmetric, so ``-iK`` is Hermitian and ``eigh`` gives a
    unitary ``V`` and real ``mu`` with ``Lambda = -1/2 + i mu``. The modes come in conjugate
    pairs.

    Returns:
        ``Lambda (N,)`` complex128 sorted by imaginary part, and unitary ``V (N, N)`` complex128.
    """
    S, _, _ = hippo_legs_nplr(N)
    skew = S + 0.5 * torch.eye(N, dtype=torch.float64)
    mu, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    Lambda = torch.complex(torch.full_like(mu, -0.5), mu)
    return Lambda, V


def legs_half_modes(N: int) -> tuple[Tensor, Tensor]:
    """The ``N // 2`` modes of the LegS normal part with negative imaginary part, and ``V^* B``.

    This is the S4D-LegS initialization (the other half are the conjugates, accounted for by
    ``2 * Re``).

    Returns:
        ``A (N // 2,)`` complex128 and ``B_tilde (N // 2,)`` complex128.
    """
    _check_n(N)
    if N % 2:
        raise ValueError(f"state size N must be even to keep conjugate pairs, got {N}")
    Lambda, V = legs_normal_diagonal(N)
    _, B = hippo_legs(N)
    B_tilde = V.conj().T @ B.to(torch.complex128)
    keep = Lambda.imag < 0
    if int(keep.sum()) != N // 2:
        raise RuntimeError(f"expected {N // 2} modes with negative imaginary part, found {int(keep.sum())}")
    return Lambda[keep], B_tilde[keep]
