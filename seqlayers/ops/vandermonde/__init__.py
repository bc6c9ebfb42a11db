"""``vandermonde``: the kernel of a diagonal state space model, ``2 Re(sum_n v_n z_n^l)``.

The op is the custom op ``seqlayers::vandermonde`` and its backward (see
:mod:`seqlayers.ops.autograd`); the backends are ``torch`` (:mod:`.blocked`), ``naive``
(:mod:`.naive`) and ``native`` (:mod:`.native`, C++ and CUDA).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._validation import is_size
from .. import autograd
from ..dispatch import Backend, Op, check_name, define_op, register, resolve
from .call import VandermondeCall
from .naive import naive_vandermonde

__all__ = ["vandermonde", "naive_vandermonde", "VandermondeCall"]


def vandermonde(v: Tensor, z: Tensor, L: int, *, backend: str = "auto") -> Tensor:
    """``K[..., l] = 2 * Re(sum_n v[..., n] * z[..., n] ** l)`` for ``l < L``.

    The ``"torch"`` backend is a blocked matmul over ``l = q*sqrt(L) + r`` with a hand-written
    backward, so memory is O(numel(v) * sqrt(L) + numel(K)) rather than O(numel(z) * L). The
    ``"native"`` backend (C++, CPU) sums in register tiles and needs no memory beyond the output.

    Args:
        v: complex ``(..., N)``; extra leading dims (channels) are allowed: its trailing dims
            must equal ``z.shape``.
        z: complex ``(..., N)``, e.g. the discretized eigenvalues ``exp(dt * A)``.
        L: number of output positions, ``>= 1`` (an int, or a symbolic size under ``torch.compile``
            and ``torch.export``).
        backend: ``"auto"``, ``"torch"``, ``"native"`` (C++ on the CPU, built on first use; see
            :mod:`seqlayers._native`) or ``"naive"``.

    Returns:
        real ``(*v.shape[:-1], L)``: float32 for complex64, float64 for complex128.
        Differentiable once in ``v`` and ``z``.

    Example:
        >>> z = torch.exp(torch.complex(-0.1 * torch.ones(3, 4), torch.randn(3, 4)))
        >>> seqlayers.ops.vandermonde(torch.randn(3, 4, dtype=torch.cfloat), z, 100).shape
        torch.Size([3, 100])
    """
    for name, t in (("v", v), ("z", z)):
        if not isinstance(t, Tensor):
            raise TypeError(f"vandermonde: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_complex():
            raise TypeError(f"vandermonde: {name} must be complex, got dtype {t.dtype}")
    if z.dim() < 1 or v.dim() < z.dim() or tuple(v.shape[v.dim() - z.dim():]) != tuple(z.shape):
        raise ValueError(
            f"vandermonde: v's trailing dims must equal z.shape = {tuple(z.shape)}, got v {tuple(v.shape)}"
        )
    if v.dtype != z.dtype:
        raise TypeError(f"vandermonde: v and z must share a dtype, got {v.dtype} and {z.dtype}")
    if v.device != z.device:
        raise ValueError(f"vandermonde: v is on {v.device} but z is on {z.device}")
    if not is_size(L) or L <= 0:
        raise ValueError(f"vandermonde: L must be a positive int, got {L!r}")
    check_name("vandermonde", backend)
    N = z.shape[-1]
    lead = v.shape[: v.dim() - z.dim()]
    v3 = v.resolve_conj().reshape(-1, z.numel() // N, N)
    out = VandermondeFunction.apply(v3, z.resolve_conj().reshape(-1, N), L, backend)
    return out.reshape(*lead, *z.shape[:-1], L)


@torch.library.custom_op("seqlayers::vandermonde", mutates_args=())
@autograd.kernel
def _vandermonde(v: Tensor, z: Tensor, L: int, backend: str) -> Tensor:
    if v.numel() == 0:
        return v.real.new_zeros(v.shape[0], v.shape[1], L)
    chosen, plan = resolve("vandermonde", backend, v, z, L)
    return chosen.module.forward(plan, v, z, L).contiguous()


@_vandermonde.register_fake
def _(v, z, L, backend):
    return v.real.new_empty(v.shape[0], v.shape[1], L)


@torch.library.custom_op("seqlayers::vandermonde_backward", mutates_args=())
@autograd.kernel
def _vandermonde_backward(grad: Tensor, v: Tensor, z: Tensor, L: int, backend: str,
                          needs: list[bool]) -> tuple[Tensor, Tensor]:
    if v.numel() == 0:
        grads = (torch.zeros_like(v), torch.zeros_like(z))
    else:
        chosen, plan = resolve("vandermonde", backend, v, z, L)
        grads = chosen.module.backward(plan, grad, v, z, L, needs)
    return autograd.finish_grads(grads, (v, z), needs, v)


@_vandermonde_backward.register_fake
def _(grad, v, z, L, backend, needs):
    return autograd.fake_grads((v, z), needs, v)


def _fold_rows(info, in_dims, grad, v, z):
    """The vmapped dim folded into the rows: ``grad (P, V * M, L)``, ``v (P, V * M, N)``, ``z (V * M, N)``."""
    grad, v, z = autograd.batch_first(info, in_dims, (grad, v, z))
    fold = lambda t: None if t is None else t.transpose(0, 1).reshape(t.shape[1], -1, t.shape[-1])  # noqa: E731
    return fold(grad), fold(v), z.reshape(-1, z.shape[-1])


def _vandermonde_vmap(info, in_dims, v, z, L, backend):
    _, v, z = _fold_rows(info, (None, *in_dims[:2]), None, v, z)
    return _vandermonde(v, z, L, backend).view(v.shape[0], info.batch_size, -1, L), 1


def _vandermonde_backward_vmap(info, in_dims, grad, v, z, L, backend, needs):
    grad, v, z = _fold_rows(info, in_dims[:3], grad, v, z)
    gv, gz = _vandermonde_backward(grad, v, z, L, backend, needs)
    V = info.batch_size
    return ((gv.view(v.shape[0], V, -1, v.shape[-1]) if needs[0] else gv,
             gz.view(V, -1, z.shape[-1]) if needs[1] else gz),
            (1 if needs[0] else None, 0 if needs[1] else None))


_vandermonde.register_vmap(_vandermonde_vmap)
_vandermonde_backward.register_vmap(_vandermonde_backward_vmap)
VandermondeFunction = autograd.bind("VandermondeFunction", "vandermonde", inputs=2)

define_op(Op("vandermonde", "SEQLAYERS_VANDERMONDE_BACKEND", VandermondeCall.of))
register(Backend("vandermonde", "torch", "seqlayers.ops.vandermonde.blocked", priority=0,
                 description="blocked matmul over l = q*sqrt(L) + r, recomputing backward; memory O(H*L)"))
register(Backend("vandermonde", "naive", "seqlayers.ops.vandermonde.naive", priority=-100, auto=False,
                 description="materializes all powers (..., N, L); the test oracle"))
register(Backend("vandermonde", "native", "seqlayers.ops.vandermonde.native", priority=10,
                 description="C++ CPU kernels, power tables re-anchored in double, no (N, L) memory; built "
                 "on first request"))
