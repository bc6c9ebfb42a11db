"""``linear_scan``: the diagonal linear recurrence ``h_t = a_t * h_{t-1} + b_t``, with selectable backends.

The op is the custom op ``seqlayers::linear_scan`` and its backward (see
:mod:`seqlayers.ops.autograd`); the backends are ``torch`` (:mod:`.chunked`), ``naive``
(:mod:`.naive`), ``triton`` (:mod:`.triton`) and ``native`` (:mod:`.native`, C++).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import autograd
from ..dispatch import Backend, Op, check_name, define_op, register, resolve
from .call import COMPUTE_DTYPES, HALF_DTYPES, ScanCall, check_linear_scan_args
from .chunked import chunked_linear_scan
from .naive import naive_linear_scan

__all__ = ["linear_scan", "naive_linear_scan", "chunked_linear_scan", "check_linear_scan_args",
           "COMPUTE_DTYPES", "HALF_DTYPES"]


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, backend: str = "auto") -> Tensor:
    """States of the elementwise linear recurrence ``h_t = a_t * h_{t-1} + b_t``, ``h_{-1} = h0``.

    No broadcasting: ``a`` and ``b`` have the same shape. For a time-invariant decay, expand it
    (``a.expand(B, L, P)`` costs no memory).

    Args:
        a: ``(B, L, P)`` decay, float32/float64/complex64/complex128, or bfloat16/float16
            (computed in float32); ``B = 0`` gives an empty result.
        b: ``(B, L, P)`` input, same dtype and device as ``a``.
        h0: ``(B, P)`` initial state in ``a``'s dtype, or None for zeros.
        backend: ``"auto"`` (default), ``"torch"``, ``"triton"`` (CUDA), ``"native"`` (the
            C++ CPU kernel of ``csrc/``, built on first use) or ``"naive"``; see
            :mod:`seqlayers.ops.dispatch` (env ``SEQLAYERS_SCAN_BACKEND``).

    Returns:
        ``(B, L, P)`` states ``h_0 .. h_{L-1}`` in ``a``'s dtype. Differentiable once in ``a``,
        ``b`` and ``h0`` (complex gradients follow PyTorch's convention); works under
        ``torch.compile``, ``torch.export`` and ``torch.func`` transforms.

    Example:
        >>> a, b = torch.full((2, 1000, 8), 0.9), torch.randn(2, 1000, 8)
        >>> h = seqlayers.ops.linear_scan(a, b)
        >>> torch.allclose(h[:, 1], 0.9 * h[:, 0] + b[:, 1])
        True
    """
    check_linear_scan_args(a, b, h0)
    check_name("linear_scan", backend)
    dtype = a.dtype
    if dtype in HALF_DTYPES:
        a, b = a.float(), b.float()
        h0 = None if h0 is None else h0.float()
    elif dtype.is_complex:
        a, b = a.resolve_conj(), b.resolve_conj()
        h0 = None if h0 is None else h0.resolve_conj()
    return LinearScanFunction.apply(a, b, h0, backend).to(dtype)


@torch.library.custom_op("seqlayers::linear_scan", mutates_args=())
@autograd.kernel
def _linear_scan(a: Tensor, b: Tensor, h0: Tensor | None, backend: str) -> Tensor:
    if a.shape[0] == 0:
        return b.new_empty(b.shape)
    chosen, plan = resolve("linear_scan", backend, a, b, h0)
    return chosen.module.forward(plan, a, b, h0).contiguous()


@_linear_scan.register_fake
def _(a, b, h0, backend):
    return b.new_empty(b.shape)


@torch.library.custom_op("seqlayers::linear_scan_backward", mutates_args=())
@autograd.kernel
def _linear_scan_backward(grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor, backend: str,
                          needs: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    if a.shape[0] == 0:
        grads = (torch.zeros_like(a), torch.zeros_like(b), None if h0 is None else torch.zeros_like(h0))
    else:
        chosen, plan = resolve("linear_scan", backend, a, b, h0)
        grads = chosen.module.backward(plan, grad, a, b, h0, h, needs)
    return autograd.finish_grads(grads, (a, b, h0), needs, b)


@_linear_scan_backward.register_fake
def _(grad, a, b, h0, h, backend, needs):
    return autograd.fake_grads((a, b, h0), needs, b)


def _fold(tensors):
    """The vmapped dim (first) folded into the batch: ``(V, B, ...)`` -> ``(V * B, ...)``."""
    return [None if t is None else t.reshape(-1, *t.shape[2:]) for t in tensors]


def _linear_scan_vmap(info, in_dims, a, b, h0, backend):
    a, b, h0 = autograd.batch_first(info, in_dims[:3], (a, b, h0))
    return _linear_scan(*_fold((a, b, h0)), backend).view(b.shape), 0


def _linear_scan_backward_vmap(info, in_dims, grad, a, b, h0, h, backend, needs):
    tensors = autograd.batch_first(info, in_dims[:5], (grad, a, b, h0, h))
    grads = _linear_scan_backward(*_fold(tensors), backend, needs)
    shapes = (tensors[1].shape, tensors[2].shape, None if h0 is None else tensors[3].shape)
    return (tuple(g.view(shape) if need else g for g, shape, need in zip(grads, shapes, needs)),
            tuple(0 if need else None for need in needs))


_linear_scan.register_vmap(_linear_scan_vmap)
_linear_scan_backward.register_vmap(_linear_scan_backward_vmap)
LinearScanFunction = autograd.bind("LinearScanFunction", "linear_scan", inputs=3, save_output=True)

define_op(Op("linear_scan", "SEQLAYERS_SCAN_BACKEND", ScanCall.of))
register(Backend("linear_scan", "torch", "seqlayers.ops.scan.chunked", priority=0,
                 description="blocks of ~sqrt(L), vectorized over blocks; adjoint reverse scan as backward"))
register(Backend("linear_scan", "naive", "seqlayers.ops.scan.naive", priority=-100, auto=False,
                 description="one Python step per position; the test oracle"))
register(Backend("linear_scan", "triton", "seqlayers.ops.scan.triton", priority=20,
                 description="Triton tl.associative_scan over blocks of L with a carried state, forward "
                 "and backward"))
register(Backend("linear_scan", "native", "seqlayers.ops.scan.native", priority=10,
                 description="C++ CPU kernels, one pass over memory forward and backward; built on first "
                 "request"))
