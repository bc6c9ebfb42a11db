"""``vandermonde``: the kernel of a diagonal state space model, ``2 Re(sum_n v_n z_n^l)``."""

from __future__ import annotations

from torch import Tensor

from ..._validation import is_int
from ..dispatch import Backend, register, register_lazy, select
from .blocked import blocked_vandermonde
from .naive import naive_vandermonde

__all__ = ["vandermonde", "naive_vandermonde", "blocked_vandermonde"]


def vandermonde(v: Tensor, z: Tensor, L: int, *, backend: str = "auto") -> Tensor:
    """``K[..., l] = 2 * Re(sum_n v[..., n] * z[..., n] ** l)`` for ``l < L``.

    The ``"torch"`` backend is a blocked matmul over ``l = q*sqrt(L) + r`` with a hand-written
    backward, so memory is O(numel(v) * sqrt(L) + numel(K)) rather than O(numel(z) * L). The
    ``"native"`` backend (C++, CPU) sums in register tiles and needs no memory beyond the output.

    Args:
        v: complex ``(..., N)``; extra leading dims (channels) are allowed: its trailing dims
            must equal ``z.shape``.
        z: complex ``(..., N)``, e.g. the discretized eigenvalues ``exp(dt * A)``.
        L: number of output positions, ``>= 1``.
        backend: ``"auto"``, ``"torch"``, ``"native"`` (C++ on the CPU, built on first request; see
            :mod:`seqlayers._native`) or ``"naive"``.

    Returns:
        real ``(*v.shape[:-1], L)``: float32 for complex64, float64 for complex128.

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
    if not is_int(L) or L <= 0:
        raise ValueError(f"vandermonde: L must be a positive int, got {L!r}")
    return select("vandermonde", backend, v, z, L).fn(v, z, L)


register(
    Backend(
        "vandermonde",
        "torch",
        blocked_vandermonde,
        description="blocked matmul over l = q*sqrt(L) + r, recomputing backward; memory O(H*L)",
    )
)
register(
    Backend(
        "vandermonde",
        "naive",
        naive_vandermonde,
        auto=False,
        priority=-100,
        description="materializes all powers (..., N, L); the test oracle",
    )
)
register_lazy(
    "vandermonde",
    "native",
    "seqlayers.ops.vandermonde.native",
    "native_vandermonde",
    priority=10,
    description="C++ CPU kernels, power tables re-anchored in double, no (N, L) memory; built on first request",
)
