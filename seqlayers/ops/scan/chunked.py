"""Blocked linear scan in pure PyTorch, with the adjoint (reverse) scan as its backward.

Forward, for ``h_t = a_t * h_{t-1} + b_t`` over ``(B, L, P)``:

1. split L into ``C`` chunks of ``T ~ sqrt(L)`` positions, ``(B, C, T, P)``;
2. scan every chunk from a zero state, all chunks at once: ``T`` wide steps over ``(B, C, P)``,
   keeping alongside the running product of ``a`` inside each chunk (products only, never a
   division by ``a``, so small or zero decays just underflow to the right limit);
3. the state entering each chunk obeys the same recurrence over chunks, with the chunk's total
   decay and its local end state: a scan of length ``C``, done recursively;
4. fix up: ``h = h_local + running_product * carry_in``.

Work is O(B L P) in about ``2 sqrt(L)`` PyTorch calls instead of ``L``. A log-depth
(Hillis-Steele) scan inside the chunks would cost O(log T) passes over memory; on the CPU, which
is memory-bound here, the wide sequential steps are faster.

Backward: the adjoint scan of :mod:`.adjoint`, which is the same blocked scan run in reverse
(it runs either way, so nothing is flipped).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .adjoint import adjoint, shift

SEQUENTIAL_MAX = 16  # at or below this length, scan position by position


def _local_scan(a: Tensor, b: Tensor, reverse: bool, running_product: bool = True) -> tuple[Tensor, Tensor | None]:
    """Scan ``(N, T, P)`` along T from a zero state; also return the running products of ``a``
    (None without ``running_product``: a shared decay's are its powers, :func:`_chunk_powers`).

    ``mul(out=)`` then ``add_`` is used because ``addcmul(out=)`` into a strided slice is much
    slower on the CPU, and the running product is kept in the same loop because ``torch.cumprod``
    over the middle dim is several times slower than one pass over memory. A shared decay comes
    expanded (stride 0): that operand takes a faster path in the CPU kernels than a broadcast
    ``(P,)`` (2x on the whole local scan at N = P = 256).
    """
    h = torch.empty_like(b)
    decay = torch.empty_like(a) if running_product else None
    order = range(a.shape[1] - 1, -1, -1) if reverse else range(a.shape[1])
    prev = order[0]
    h[:, prev] = b[:, prev]
    if running_product:
        decay[:, prev] = a[:, prev]
    for t in order[1:]:
        torch.mul(a[:, t], h[:, prev], out=h[:, t])
        h[:, t].add_(b[:, t])
        if running_product:
            torch.mul(a[:, t], decay[:, prev], out=decay[:, t])
        prev = t
    return h, decay


def _chunk_size(L: int) -> int:
    return 1 << math.ceil(math.log2(math.sqrt(L)))


def _pad_length(x: Tensor, length: int, fill: float) -> Tensor:
    if x.shape[1] == length:
        return x
    out = x.new_full((x.shape[0], length, x.shape[2]), fill)
    out[:, : x.shape[1]] = x
    return out


def _chunk_powers(z: Tensor, T: int, reverse: bool) -> Tensor:
    """The running products of a shared decay inside a chunk, ``(1, T, P)``: ``z^(t + 1)``, or
    ``z^(T - t)`` scanning in reverse."""
    powers = torch.cumprod(z.expand(T, z.shape[0]), dim=0)
    return (powers.flip(0) if reverse else powers).unsqueeze(0)


def _blocked_scan(a: Tensor, b: Tensor, h0: Tensor | None, reverse: bool) -> Tensor:
    """The recurrence on ``(B, L, P)`` tensors of one dtype, from the end if ``reverse``; no autograd.

    ``a`` is ``(B, L, P)`` or one shared decay ``(1, 1, P)``. Padding at the end of time
    (``a = 1``, ``b = 0``) passes the state through in either direction; a shared decay pads
    with itself, which only a reverse scan from a given ``h0`` would see, so that one is expanded.
    """
    B, L, P = b.shape
    a, b = a.resolve_conj(), b.resolve_conj()  # once here, not in every step's kernel
    shared = a.shape[:2] == (1, 1) and (L, B) != (1, 1)
    if L <= SEQUENTIAL_MAX or (shared and reverse and h0 is not None):
        a, shared = a.expand(b.shape), False
    if L <= SEQUENTIAL_MAX:
        h, decay = _local_scan(a, b, reverse)
        if h0 is not None:
            h.addcmul_(decay, h0.unsqueeze(1))
        return h
    T = _chunk_size(L)
    C = -(-L // T)
    b3 = _pad_length(b, C * T, 0.0).reshape(B * C, T, P)
    last = 0 if reverse else -1  # the last position of each chunk in scan order
    if shared:
        h, _ = _local_scan(a.expand(B * C, T, P), b3, reverse, running_product=False)
        decay = _chunk_powers(a.reshape(P), T, reverse)
        chunk_decay = decay[:, last].reshape(1, 1, P)
    else:
        h, decay = _local_scan(_pad_length(a, C * T, 1.0).reshape(B * C, T, P), b3, reverse)
        chunk_decay = decay[:, last].reshape(B, C, P)
    ends = _blocked_scan(chunk_decay, h[:, last].reshape(B, C, P), h0, reverse)
    first = torch.zeros_like(ends[:, :1]) if h0 is None else h0.unsqueeze(1)
    h.addcmul_(decay, shift(ends, reverse, first).reshape(B * C, 1, P))
    return h.reshape(B, C * T, P)[:, :L]


class ChunkedScanFunction(torch.autograd.Function):
    """Autograd Function of :func:`chunked_linear_scan`; ``h0`` may be None.

    With ``reverse=True`` it computes ``h_t = a_t * h_{t+1} + b_t`` from ``h_L = h0`` instead: the
    backward of one direction is a scan in the other, through this Function, so double backward
    works too.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None, reverse: bool) -> Tensor:
        h = _blocked_scan(a, b, h0, reverse)
        ctx.save_for_backward(a, h0, h)
        ctx.reverse = reverse
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        a, h0, h = ctx.saved_tensors
        needs = list(ctx.needs_input_grad[:3])
        grad_a, grad_b, grad_h0 = adjoint(ChunkedScanFunction.apply, grad_h, a, h0, h, ctx.reverse, needs)
        return grad_a, grad_b if needs[1] else None, grad_h0, None


def chunked_linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` by blocks of ``~sqrt(L)``; differentiable (twice) in a, b, h0.

    The computation of the ``"torch"`` backend as a plain autograd Function (not a custom op).

    Args:
        a: ``(B, L, P)`` decay, float32/float64/complex64/complex128, any device.
        b: ``(B, L, P)`` input, same dtype as ``a``.
        h0: ``(B, P)`` initial state, or None for zeros.

    Returns:
        ``(B, L, P)`` states in ``a``'s dtype.

    Example:
        >>> a, b = torch.rand(2, 5000, 8), torch.randn(2, 5000, 8)
        >>> chunked_linear_scan(a, b).shape
        torch.Size([2, 5000, 8])
    """
    return ChunkedScanFunction.apply(a, b, h0, False)


SHARED_DECAY = True
"""The dispatcher hands this backend a shared ``(1, 1, P)`` decay unexpanded (see :func:`_blocked_scan`)."""


def plan(call, auto: bool) -> None:
    return None


def forward(plan: None, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    return _blocked_scan(a, b, h0, False)


def backward(plan: None, grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor, needs: list[bool]):
    return adjoint(_blocked_scan, grad, a, h0, h, False, needs)
