"""Triton backend of ``linear_scan``: forward and backward kernels over blocks of L.

One program owns ``BLOCK_P`` states of one batch row and walks the sequence in blocks of
``BLOCK_L`` positions. Inside a block, ``tl.associative_scan`` applies the operator
``(a_1, b_1) o (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2)``; the state carried from the previous block
is folded into the block's first input (``b_0 += a_0 * carry``), so the scanned ``b`` are the
states themselves. Complex tensors are read as interleaved (real, imag) pairs of their
``torch.view_as_real`` view and multiplied as pairs; all arithmetic is in the input's precision
(float32 for float32/complex64, float64 for float64/complex128).

The backward kernel runs the adjoint scan ``lam_t = G_t + conj(a_{t+1}) lam_{t+1}`` from the end
and writes ``grad_b = lam``, ``grad_a_t = lam_t conj(h_{t-1})`` and ``grad_h0 = conj(a_0) lam_0``
in the same pass.
"""

from __future__ import annotations

import functools
import torch
from torch import Tensor

from ..triton_utils import check_call, is_available, tl, triton
from .call import ScanCall

__all__ = ["is_available", "plan", "forward", "backward"]

SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
BLOCK_L = 64
MAX_BLOCK_P = 32
"""States per program; 16 for float64 and complex64 and 8 for complex128, whose wider blocks took
255 registers and spilled (``tests/aot``: float64 at 32 on sm_80-90, complex128 at 16 on sm_80,
complex64's backward at 32 with Triton 3.6 on sm_80 and sm_90, 88 B)."""

_WIDEST = {torch.float64: MAX_BLOCK_P // 2, torch.complex64: MAX_BLOCK_P // 2,
           torch.complex128: MAX_BLOCK_P // 4}


@functools.lru_cache(maxsize=1024)  # planned once per call shape (dispatch.clear_plans)
def plan(call: ScanCall, auto: bool) -> tuple[tuple[int, int], int]:
    """``(grid, BLOCK_P)``: one program per batch row and block of states; raises
    :class:`~seqlayers.errors.Unsupported` if the call cannot run here."""
    check_call("triton", call.device, {"a": call.dtype}, SUPPORTED_DTYPES, auto)
    block_p = min(_WIDEST.get(call.dtype, MAX_BLOCK_P), triton.next_power_of_2(call.states))
    return (call.batch, triton.cdiv(call.states, block_p)), block_p


@triton.jit
def _combine_real(a_1, b_1, a_2, b_2):
    return a_2 * a_1, a_2 * b_1 + b_2


@triton.jit
def _combine_complex(ar_1, ai_1, br_1, bi_1, ar_2, ai_2, br_2, bi_2):
    return (
        ar_2 * ar_1 - ai_2 * ai_1,
        ar_2 * ai_1 + ai_2 * ar_1,
        ar_2 * br_1 - ai_2 * bi_1 + br_2,
        ar_2 * bi_1 + ai_2 * br_1 + bi_2,
    )


@triton.jit
def _mul(xr, xi, yr, yi, IS_COMPLEX: tl.constexpr):
    """``x * y`` on (real, imag) pairs; for real data the imaginary parts are zeros."""
    if IS_COMPLEX:
        return xr * yr - xi * yi, xr * yi + xi * yr
    else:
        return xr * yr, xi


@triton.jit
def _load(ptr, offs, mask, other_re, IS_COMPLEX: tl.constexpr):
    """Load (real, imag); ``offs`` index complex elements, so they are doubled for complex data."""
    if IS_COMPLEX:
        re = tl.load(ptr + 2 * offs, mask=mask, other=other_re)
        im = tl.load(ptr + 2 * offs + 1, mask=mask, other=0.0)
    else:
        re = tl.load(ptr + offs, mask=mask, other=other_re)
        im = tl.zeros_like(re)
    return re, im


@triton.jit
def _store(ptr, offs, mask, re, im, IS_COMPLEX: tl.constexpr):
    if IS_COMPLEX:
        tl.store(ptr + 2 * offs, re, mask=mask)
        tl.store(ptr + 2 * offs + 1, im, mask=mask)
    else:
        tl.store(ptr + offs, re, mask=mask)


@triton.jit
def _scan_block(ar, ai, br, bi, carry_r, carry_i, IS_COMPLEX: tl.constexpr, BLOCK_L: tl.constexpr):
    """States of one ``(BLOCK_L, BLOCK_P)`` block entered with ``carry``, and the carry out."""
    first = (tl.arange(0, BLOCK_L) == 0)[:, None]
    in_r, in_i = _mul(ar, ai, carry_r[None, :], carry_i[None, :], IS_COMPLEX)
    br = tl.where(first, br + in_r, br)
    bi = tl.where(first, bi + in_i, bi)
    if IS_COMPLEX:
        ar, ai, br, bi = tl.associative_scan((ar, ai, br, bi), 0, _combine_complex)
    else:
        ar, br = tl.associative_scan((ar, br), 0, _combine_real)
    last = (tl.arange(0, BLOCK_L) == BLOCK_L - 1)[:, None]
    carry_r = tl.sum(tl.where(last, br, 0.0), axis=0)
    carry_i = tl.sum(tl.where(last, bi, 0.0), axis=0)
    return br, bi, carry_r, carry_i


@triton.jit
def _linear_scan_fwd_kernel(
    A, X, H0, H, L, P,
    HAS_H0: tl.constexpr, IS_COMPLEX: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_P: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < P
    if HAS_H0:
        carry_r, carry_i = _load(H0, pid_b * P + offs_p, mask_p, 0.0, IS_COMPLEX)
    else:
        carry_r = tl.zeros([BLOCK_P], dtype=H.dtype.element_ty)
        carry_i = tl.zeros([BLOCK_P], dtype=H.dtype.element_ty)
    for start in range(0, L, BLOCK_L):
        offs_l = start + tl.arange(0, BLOCK_L).to(tl.int64)
        mask = (offs_l < L)[:, None] & mask_p[None, :]
        offs = pid_b * L * P + offs_l[:, None] * P + offs_p[None, :]
        ar, ai = _load(A, offs, mask, 1.0, IS_COMPLEX)
        br, bi = _load(X, offs, mask, 0.0, IS_COMPLEX)
        hr, hi, carry_r, carry_i = _scan_block(ar, ai, br, bi, carry_r, carry_i, IS_COMPLEX, BLOCK_L)
        _store(H, offs, mask, hr, hi, IS_COMPLEX)


@triton.jit
def _linear_scan_bwd_kernel(
    A, H, H0, G, DA, DX, DH0, L, P,
    HAS_H0: tl.constexpr, IS_COMPLEX: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_P: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < P
    base = pid_b * L * P
    carry_r = tl.zeros([BLOCK_P], dtype=DX.dtype.element_ty)
    carry_i = tl.zeros([BLOCK_P], dtype=DX.dtype.element_ty)
    if HAS_H0:
        h0_r, h0_i = _load(H0, pid_b * P + offs_p, mask_p, 0.0, IS_COMPLEX)
    else:
        h0_r = carry_r
        h0_i = carry_i
    for start in range(0, L, BLOCK_L):
        # rows run backwards in time: t = L - 1 - start - row
        offs_t = L - 1 - start - tl.arange(0, BLOCK_L).to(tl.int64)
        valid = (offs_t >= 0)[:, None] & mask_p[None, :]
        offs = base + offs_t[:, None] * P + offs_p[None, :]
        # the coefficient of lam_{t+1} is conj(a_{t+1}); rows past either end are the identity
        has_next = (offs_t + 1 < L)[:, None] & valid
        cr, ci = _load(A, offs + P, has_next, 1.0, IS_COMPLEX)
        gr, gi = _load(G, offs, valid, 0.0, IS_COMPLEX)
        lr, li, carry_r, carry_i = _scan_block(cr, -ci, gr, gi, carry_r, carry_i, IS_COMPLEX, BLOCK_L)
        _store(DX, offs, valid, lr, li, IS_COMPLEX)
        is_first = (offs_t == 0)[:, None]
        pr, pi = _load(H, offs - P, valid & (offs_t > 0)[:, None], 0.0, IS_COMPLEX)
        pr = tl.where(is_first, h0_r[None, :], pr)
        pi = tl.where(is_first, h0_i[None, :], pi)
        dar, dai = _mul(lr, li, pr, -pi, IS_COMPLEX)
        _store(DA, offs, valid, dar, dai, IS_COMPLEX)
    if HAS_H0:
        a0_r, a0_i = _load(A, base + offs_p, mask_p, 0.0, IS_COMPLEX)
        dh0_r, dh0_i = _mul(carry_r, carry_i, a0_r, -a0_i, IS_COMPLEX)
        _store(DH0, pid_b * P + offs_p, mask_p, dh0_r, dh0_i, IS_COMPLEX)


def _flat(x: Tensor) -> Tensor:
    """The real storage the kernels index: ``view_as_real`` for complex tensors.

    A lazily conjugated input (``x.conj()``) is materialized first; fresh outputs never are.
    """
    return torch.view_as_real(x.resolve_conj()) if x.is_complex() else x


def forward(plan: tuple, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    """Launch the forward kernel on ``(B, L, P)`` tensors; returns ``h``."""
    a, b = a.contiguous(), b.contiguous()
    h0 = h0.contiguous() if h0 is not None else None
    (grid, block_p), (B, L, P) = plan, a.shape
    h = torch.empty_like(b)
    _linear_scan_fwd_kernel[grid](
        _flat(a), _flat(b), _flat(h0 if h0 is not None else a), _flat(h), L, P,
        HAS_H0=h0 is not None, IS_COMPLEX=a.is_complex(), BLOCK_L=BLOCK_L, BLOCK_P=block_p,
    )
    return h


def backward(plan: tuple, grad_h: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor,
             needs: list[bool]) -> tuple[Tensor, Tensor, Tensor | None]:
    """Launch the backward kernel; returns ``(grad_a, grad_b, grad_h0 or None)``."""
    a, h, grad_h = a.contiguous(), h.contiguous(), grad_h.contiguous()
    h0 = h0.contiguous() if h0 is not None else None
    (grid, block_p), (B, L, P) = plan, a.shape
    grad_a, grad_b = torch.empty_like(a), torch.empty_like(a)
    grad_h0 = torch.empty_like(h0) if h0 is not None else None
    _linear_scan_bwd_kernel[grid](
        _flat(a), _flat(h), _flat(h0 if h0 is not None else a), _flat(grad_h),
        _flat(grad_a), _flat(grad_b), _flat(grad_h0 if grad_h0 is not None else grad_a), L, P,
        HAS_H0=h0 is not None, IS_COMPLEX=a.is_complex(), BLOCK_L=BLOCK_L, BLOCK_P=block_p,
    )
    return grad_a, grad_b, grad_h0
