"""The ``"torch"`` backend of ``vandermonde``: a blocked matrix product, hand-written backward.

Split every position as ``l = q*T + r`` with ``T ~ sqrt(L)``, so that
``z^l = z^(q T) * z^r`` and

    K[p, m, q*T + r] = 2 Re( sum_n (v[p, m, n] z[m, n]^(q T)) * z[m, n]^r ),

a batched ``(Q x N) @ (N x T)`` complex matmul per row ``m``. Only ``Q + T ~ 2 sqrt(L)`` powers
per mode are ever computed (by ``exp``), the matmul runs on the BLAS, and memory is
O(numel(v) * sqrt(L) + numel(K)) (rows are processed in blocks so the complex
intermediate stays small): never the ``(M, N, L)`` tensor of powers, also not in the
backward, which recomputes the two factors instead of saving them.

With a real upstream gradient ``g[l]`` and PyTorch's complex convention
(``dLoss/dRe + i dLoss/dIm``):

* ``grad_v = 2 conj(sum_l g[l] z^l)``
* ``grad_z = 2 conj(sum_p v * sum_l g[l] l z^(l-1))``, using ``l z^l = (qT) z^(qT) z^r + z^(qT) (r z^r)``
  and one division by ``z`` at the end.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BLOCK_ELEMENTS = 1 << 22  # complex elements of one block's (rows, P, L) intermediate: 32 MiB in complex64


def _factors(log_z: Tensor, Q: int, T: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Coarse powers ``z^(qT) (M, N, Q)``, fine powers ``z^r (M, N, T)`` and their exponents."""
    real = log_z.real.dtype
    q = torch.arange(Q, device=log_z.device, dtype=real) * T
    r = torch.arange(T, device=log_z.device, dtype=real)
    return torch.exp(log_z.unsqueeze(-1) * q), torch.exp(log_z.unsqueeze(-1) * r), q, r


def _row_blocks(M: int, per_row: int):
    """Slices of rows whose complex intermediates hold about BLOCK_ELEMENTS elements."""
    step = max(1, min(M, BLOCK_ELEMENTS // max(1, per_row)))
    return [slice(start, min(M, start + step)) for start in range(0, M, step)]


def _split(L: int) -> tuple[int, int]:
    T = max(1, math.isqrt(L - 1) + 1) if L > 1 else 1
    return -(-L // T), T


def plan(call, auto: bool) -> None:
    return None


def forward(plan: None, v: Tensor, z: Tensor, L: int) -> Tensor:
    """``(P, M, L)`` real from ``v (P, M, N)`` and ``z (M, N)``."""
    P, M, N = v.shape
    Q, T = _split(L)
    log_z = torch.log(z)
    out = torch.empty(P, M, L, device=v.device, dtype=z.real.dtype)
    for rows in _row_blocks(M, P * Q * T):
        z_coarse, z_fine, _, _ = _factors(log_z[rows], Q, T)
        m = z_fine.shape[0]
        left = (v[:, rows].unsqueeze(-1) * z_coarse).permute(1, 0, 3, 2).reshape(m, P * Q, N)
        block = torch.bmm(left, z_fine).reshape(m, P, Q * T)[..., :L]  # (m, P, L) complex
        out[:, rows] = 2 * block.real.permute(1, 0, 2)
    return out


def backward(plan: None, grad_out: Tensor, v: Tensor, z: Tensor, L: int,
             needs: list[bool]) -> tuple[Tensor | None, Tensor | None]:
    """``(grad_v, grad_z)`` of :func:`forward` for the real upstream gradient ``grad_out (P, M, L)``."""
    P, M, N = v.shape
    Q, T = _split(L)
    log_z = torch.log(z)
    grad_v = torch.empty_like(v) if needs[0] else None
    grad_z = torch.empty_like(z) if needs[1] else None
    for rows in _row_blocks(M, P * Q * T):
        z_coarse, z_fine, q, r = _factors(log_z[rows], Q, T)
        m = z_fine.shape[0]
        g = torch.nn.functional.pad(grad_out[:, rows], (0, Q * T - L)).to(z.dtype)
        g = g.permute(1, 0, 2).reshape(m, P * Q, T)
        # sum_r g[q, r] z^r for every (row, p, q, n)
        fine_sum = torch.bmm(g, z_fine.transpose(1, 2)).reshape(m, P, Q, N)
        coarse = z_coarse.transpose(1, 2).unsqueeze(1)  # (m, 1, Q, N)
        if needs[0]:
            grad_v[:, rows] = 2 * (coarse * fine_sum).sum(2).permute(1, 0, 2).conj_physical()
        if needs[1]:
            fine_weighted = torch.bmm(g, (z_fine * r).transpose(1, 2)).reshape(m, P, Q, N)
            q_col = q.view(1, 1, Q, 1)
            l_powers = (coarse * (q_col * fine_sum + fine_weighted)).sum(2)  # sum_l g l z^l
            grad_z[rows] = 2 * ((v[:, rows].permute(1, 0, 2) * l_powers).sum(1) / z[rows]).conj_physical()
    return grad_v, grad_z
