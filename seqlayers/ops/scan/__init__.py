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

    ``a`` has ``b``'s shape, or is one time-invariant decay ``(1, 1, P)`` shared by every row
    and step (no other broadcasting). A shared decay is what a linear time-invariant system such
    as S5 has; it is the one case the ``"conv"`` backend serves: the states are then the causal
    convolution of ``b`` with the powers ``a ** t`` (:mod:`.conv`).

    Args:
        a: ``(B, L, P)`` or ``(1, 1, P)`` decay, float32/float64/complex64/complex128, or
            bfloat16/float16 (computed in float32).
        b: ``(B, L, P)`` input, same dtype and device as ``a``; ``B = 0`` gives an empty result.
        h0: ``(B, P)`` initial state in ``a``'s dtype, or None for zeros.
        backend: ``"auto"`` (default), ``"torch"``, ``"triton"`` (CUDA), ``"native"`` (the
            C++ CPU kernel of ``csrc/``, built on first use), ``"conv"`` (shared decays only)
            or ``"naive"``; see :mod:`seqlayers.ops.dispatch` (env ``SEQLAYERS_SCAN_BACKEND``).

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
    if b.shape[0] == 0:
        return b.new_empty(b.shape)
    chosen, plan = resolve("linear_scan", backend, a, b, h0)
    return chosen.module.forward(plan, _decay_for(chosen, a, b), b, h0).contiguous()


def _decay_for(chosen, a: Tensor, b: Tensor) -> Tensor:
    """``a`` as ``chosen`` takes it: a shared ``(1, 1, P)`` decay expanded to ``b``'s shape (no
    copy) for the backends that scan one decay per position (all but ``"conv"``)."""
    return a if getattr(chosen.module, "SHARED_DECAY", False) else a.expand(b.shape)


@_linear_scan.register_fake
def _(a, b, h0, backend):
    return b.new_empty(b.shape)


@torch.library.custom_op("seqlayers::linear_scan_backward", mutates_args=())
@autograd.kernel
def _linear_scan_backward(grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor, backend: str,
                          needs: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    if b.shape[0] == 0:
        grads = (torch.zeros_like(a), torch.zeros_like(b), None if h0 is None else torch.zeros_like(h0))
    else:
        chosen, plan = resolve("linear_scan", backend, a, b, h0)
        grad_a, *grads = chosen.module.backward(plan, grad, _decay_for(chosen, a, b), b, h0, h, needs)
        if needs[0] and grad_a.shape != a.shape:  # a shared decay: the sum over rows and steps
            grad_a = grad_a.sum((0, 1), keepdim=True)
        grads = (grad_a, *grads)
    return autograd.finish_grads(grads, (a, b, h0), needs, b)


@_linear_scan_backward.register_fake
def _(grad, a, b, h0, h, backend, needs):
    return autograd.fake_grads((a, b, h0), needs, b)


def _fold(tensors):
    """The vmapped dim (first) folded into the batch: ``(V, B, ...)`` -> ``(V * B, ...)``."""
    return [None if t is None else t.reshape(-1, *t.shape[2:]) for t in tensors]


def _shared(a: Tensor, dim: int | None) -> bool:
    """Whether each vmapped entry of ``a`` is one shared ``(1, 1, P)`` decay."""
    return (a.shape if dim is None else a.movedim(dim, 0).shape[1:])[:2] == (1, 1)


def _linear_scan_vmap(info, in_dims, a, b, h0, backend):
    if _shared(a, in_dims[0]):  # a shared decay stays shared: one call per entry
        return _scan_by_loop(info, in_dims, a, b, h0, backend)
    a, b, h0 = autograd.batch_first(info, in_dims[:3], (a, b, h0))
    return _linear_scan(*_fold((a, b, h0)), backend).view(b.shape), 0


def _linear_scan_backward_vmap(info, in_dims, grad, a, b, h0, h, backend, needs):
    if _shared(a, in_dims[1]):  # per-entry gradients of a shared decay: one call per entry
        return _scan_backward_by_loop(info, in_dims, grad, a, b, h0, h, backend, needs)
    tensors = autograd.batch_first(info, in_dims[:5], (grad, a, b, h0, h))
    grads = _linear_scan_backward(*_fold(tensors), backend, needs)
    shapes = (tensors[1].shape, tensors[2].shape, None if h0 is None else tensors[3].shape)
    return (tuple(g.view(shape) if need else g for g, shape, need in zip(grads, shapes, needs)),
            tuple(0 if need else None for need in needs))


_scan_by_loop = autograd.vmap_by_loop(_linear_scan)
_scan_backward_by_loop = autograd.vmap_by_loop(_linear_scan_backward)
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
register(Backend("linear_scan", "conv", "seqlayers.ops.scan.conv", priority=30,
                 description="a shared time-invariant decay (1, 1, P) only: the states as a causal "
                 "long_conv of b with the decay's powers, modes in groups of bounded memory; 'auto' "
                 "picks it on CUDA only"))
