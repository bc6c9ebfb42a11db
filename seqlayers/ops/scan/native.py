"""Native (C++, CPU) backend of ``linear_scan``: one pass over memory forward and backward.

The kernels live in ``csrc/linear_scan.cpp`` and are built by :mod:`seqlayers._native`. Each task
(a batch row, a block of states) walks the sequence once, updating contiguous states in a
vectorized inner loop; tasks run in parallel over the batch and state blocks. The backward is
one reverse pass too: the adjoint ``lam_t = G_t + conj(a_{t+1}) lam_{t+1}`` (the forward
recurrence from the end on the shifted, conjugated decays), writing ``grad_b = lam``,
``grad_a_t = lam_t conj(h_{t-1})`` and ``grad_h0 = conj(a_0) lam_0`` as it goes. It is
differentiable once (like the Triton backend); the ``"torch"`` backend also supports double
backward.

Inputs need contiguous states (stride 1 over P) only: expanded decays such as
``a.expand(B, L, P)`` are read in place, anything else is copied first.

When it is built: asking for ``backend="native"`` builds it on first use (about 10 s, cached on
disk); ``"auto"`` picks it only once it is built, or may build it when ``SEQLAYERS_NATIVE=1``;
``SEQLAYERS_NATIVE=0`` turns it off. See :mod:`seqlayers._native`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import _native

SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def is_available() -> tuple[bool, str]:
    """Loaded, built, or buildable (sources, ninja and a compiler present); never builds."""
    return _native.LIBRARY.status()


def supports(a: Tensor, b: Tensor, h0: Tensor | None) -> tuple[bool, str]:
    """CPU tensors of a supported dtype; builds the extension on first use if needed."""
    return _native.check_cpu_call(a, SUPPORTED_DTYPES, auto=False)


def auto_supports(a: Tensor, b: Tensor, h0: Tensor | None) -> tuple[bool, str]:
    """The check ``"auto"`` uses: as :func:`supports`, but builds only if ``SEQLAYERS_NATIVE=1``."""
    return _native.check_cpu_call(a, SUPPORTED_DTYPES, auto=True)


def _states_contiguous(x: Tensor) -> Tensor:
    """``x`` with a materialized conj/neg bit and stride 1 over its last dim (copied only if not)."""
    x = x.resolve_conj().resolve_neg()
    return x if x.stride(-1) == 1 or x.shape[-1] == 1 else x.contiguous()


class LinearScanFunction(torch.autograd.Function):
    """Autograd Function of :func:`native_linear_scan`; ``h0`` may be None."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        a = _states_contiguous(a)
        h0 = None if h0 is None else h0.resolve_conj().resolve_neg().contiguous()
        h = torch.ops.seqlayers.linear_scan_forward(a, _states_contiguous(b), h0)
        ctx.save_for_backward(a, h0, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):
        a, h0, h = ctx.saved_tensors
        need_a, need_b, need_h0 = ctx.needs_input_grad
        grad_a, grad_b, grad_h0 = torch.ops.seqlayers.linear_scan_backward(
            a, h, h0, _states_contiguous(grad_h), need_a
        )
        return (
            grad_a if need_a else None,
            grad_b if need_b else None,
            grad_h0 if need_h0 and h0 is not None else None,
        )


def native_linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` by the C++ kernels; differentiable (once) in a, b, h0.

    Args:
        a: ``(B, L, P)`` decay, float32/float64/complex64/complex128, on the CPU.
        b: ``(B, L, P)`` input, same dtype as ``a``.
        h0: ``(B, P)`` initial state, or None for zeros.

    Returns:
        ``(B, L, P)`` states in ``a``'s dtype, contiguous.

    Example:
        >>> a, b = torch.rand(2, 5000, 8), torch.randn(2, 5000, 8)
        >>> native_linear_scan(a, b).shape  # doctest: +SKIP
        torch.Size([2, 5000, 8])

    Raises:
        BackendUnavailableError: the extension cannot be built or loaded (the reason says why).
    """
    _native.require("linear_scan")
    return LinearScanFunction.apply(a, b, h0)
