"""``linear_scan``: the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t``, with selectable backends."""

from __future__ import annotations

import torch
from torch import Tensor

from ..dispatch import Backend, register, register_lazy, select
from .chunked import chunked_linear_scan
from .naive import naive_linear_scan

__all__ = ["linear_scan", "naive_linear_scan", "chunked_linear_scan", "check_linear_scan_args"]

COMPUTE_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
HALF_DTYPES = (torch.bfloat16, torch.float16)


def check_linear_scan_args(a: Tensor, b: Tensor, h0: Tensor | None) -> None:
    """Validate the arguments of :func:`linear_scan`; raise ValueError/TypeError naming the problem."""
    for name, t in (("a", a), ("b", b), ("h0", h0)):
        if t is None and name == "h0":
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"linear_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in COMPUTE_DTYPES + HALF_DTYPES:
            raise TypeError(
                f"linear_scan: {name} must be float32/float64/complex64/complex128/bfloat16/float16, "
                f"got dtype {t.dtype}"
            )
    if a.dim() != 3 or any(n == 0 for n in a.shape):
        raise ValueError(f"linear_scan: a must have shape (B, L, P) with B, L, P >= 1, got {tuple(a.shape)}")
    if b.shape != a.shape:
        raise ValueError(
            f"linear_scan: b must have a's shape (B, L, P) = {tuple(a.shape)}, got {tuple(b.shape)}"
        )
    if h0 is not None and h0.shape != (a.shape[0], a.shape[2]):
        raise ValueError(
            f"linear_scan: h0 must have shape (B, P) = {(a.shape[0], a.shape[2])} or be None, "
            f"got {tuple(h0.shape)}"
        )
    for name, t in (("b", b), ("h0", h0)):
        if t is None:
            continue
        if t.dtype != a.dtype:
            raise TypeError(f"linear_scan: {name} must have a's dtype {a.dtype}, got {t.dtype}")
        if t.device != a.device:
            raise ValueError(f"linear_scan: {name} is on {t.device} but a is on {a.device}")


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, backend: str = "auto") -> Tensor:
    """States of the elementwise linear recurrence ``h_t = a_t * h_{t-1} + b_t``, ``h_{-1} = h0``.

    No broadcasting: ``a`` and ``b`` have the same shape. For a time-invariant decay, expand it
    (``a.expand(B, L, P)`` costs no memory).

    Args:
        a: ``(B, L, P)`` decay, float32/float64/complex64/complex128, or bfloat16/float16
            (computed in float32).
        b: ``(B, L, P)`` input, same dtype and device as ``a``.
        h0: ``(B, P)`` initial state in ``a``'s dtype, or None for zeros.
        backend: ``"auto"`` (default), ``"torch"``, ``"triton"`` (CUDA), ``"native"`` (the
            C++ CPU kernel of ``csrc/``, once built) or ``"naive"``; see
            :mod:`seqlayers.ops.dispatch` (env ``SEQLAYERS_SCAN_BACKEND``).

    Returns:
        ``(B, L, P)`` states ``h_0 .. h_{L-1}`` in ``a``'s dtype. Differentiable in ``a``, ``b``
        and ``h0`` (complex gradients follow PyTorch's convention).

    Example:
        >>> a, b = torch.full((2, 1000, 8), 0.9), torch.randn(2, 1000, 8)
        >>> h = seqlayers.ops.linear_scan(a, b)
        >>> torch.allclose(h[:, 1], 0.9 * h[:, 0] + b[:, 1])
        True
    """
    check_linear_scan_args(a, b, h0)
    dtype = a.dtype
    if dtype in HALF_DTYPES:
        a, b = a.float(), b.float()
        h0 = None if h0 is None else h0.float()
    return select("linear_scan", backend, a, b, h0).fn(a, b, h0).to(dtype)


register(
    Backend(
        "linear_scan",
        "torch",
        chunked_linear_scan,
        priority=0,
        description="blocks of ~sqrt(L), vectorized over blocks; adjoint reverse scan as backward",
    )
)
register(
    Backend(
        "linear_scan",
        "naive",
        naive_linear_scan,
        auto=False,
        priority=-100,
        description="one Python step per position; the test oracle",
    )
)
register_lazy(
    "linear_scan",
    "triton",
    "seqlayers.ops.scan.triton",
    "triton_linear_scan",
    priority=20,
    description="Triton tl.associative_scan over blocks of L with a carried state, forward and backward",
)
register_lazy(
    "linear_scan",
    "native",
    "seqlayers.ops.scan.native",
    "native_linear_scan",
    priority=10,
    description="C++ CPU kernels, one pass over memory forward and backward; built on first request",
)
