"""Native (C++ and CUDA) backend of ``vandermonde``: one pass over the output, forward and backward.

The kernels live in ``csrc/vandermonde.cpp`` and are built by :mod:`seqlayers._native`. Positions
are split as ``l = q*T + r`` (``T = 128``); per row the kernels keep the fine powers ``z^r`` and the
block anchors ``z^(qT)`` in small tables computed in double precision (repeated multiplication,
re-anchored from ``exp(l log z)`` every 32 steps, so accuracy does not drift with ``L``), and sum
over modes in vectorized register tiles. Nothing of size ``(N, L)`` exists at any time: the extra
memory is a few tables of ``N * T`` numbers per thread, and the backward recomputes the tables
instead of saving anything but ``v`` and ``z``.

Differentiable once; the ``"torch"`` backend also supports double backward. ``z`` may contain
zeros (``0^0 = 1``).

On CUDA (``csrc/cuda/vandermonde.cu``, compiled into the extension when it is built on a machine
with a GPU and the CUDA toolkit) each thread walks 16 positions strided by the block size from a
double-precision anchor ``exp(l log z)``; the backward reduces per-block partial sums in double.
``"auto"`` does not pick the CUDA kernel until it has been measured on a GPU: ask for
``backend="native"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import _native

SUPPORTED_DTYPES = (torch.complex64, torch.complex128)


def is_available() -> tuple[bool, str]:
    """Loaded, built, or buildable (sources, ninja and a compiler present); never builds."""
    return _native.LIBRARY.status()


def _check_cuda(z: Tensor, *, auto: bool) -> tuple[bool, str]:
    if z.dtype not in SUPPORTED_DTYPES:
        return False, f"dtype {z.dtype} is not one of {[str(d) for d in SUPPORTED_DTYPES]}"
    if auto:
        return False, ("the CUDA kernel is used only when asked for (backend='native') until it has "
                       "been measured against 'torch' on a GPU")
    ok, reason = _native.LIBRARY.load(build=True)
    if ok and not _native.LIBRARY.has_kernel("vandermonde_forward", "CUDA"):
        return False, ("the native extension was built without CUDA (no GPU or no CUDA toolkit "
                       "when it was built); rebuild it on a machine with both")
    return ok, reason


def supports(v: Tensor, z: Tensor, L: int) -> tuple[bool, str]:
    """CPU complex tensors (or CUDA with a CUDA build); builds the extension on first use if needed."""
    if z.device.type == "cuda":
        return _check_cuda(z, auto=False)
    return _native.check_cpu_call(z, SUPPORTED_DTYPES, auto=False)


def auto_supports(v: Tensor, z: Tensor, L: int) -> tuple[bool, str]:
    """The check ``"auto"`` uses: CPU only, and builds only if ``SEQLAYERS_NATIVE=1``."""
    if z.device.type == "cuda":
        return _check_cuda(z, auto=True)
    return _native.check_cpu_call(z, SUPPORTED_DTYPES, auto=True)


class VandermondeFunction(torch.autograd.Function):
    """Autograd Function of :func:`native_vandermonde` over ``v (P, M, N)``, ``z (M, N)``."""

    @staticmethod
    def forward(ctx, v: Tensor, z: Tensor, L: int) -> Tensor:
        v = v.resolve_conj().contiguous()
        z = z.resolve_conj().contiguous()
        ctx.save_for_backward(v, z)
        return torch.ops.seqlayers.vandermonde_forward(v, z, L)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        v, z = ctx.saved_tensors
        need_v, need_z, _ = ctx.needs_input_grad
        grad_v, grad_z = torch.ops.seqlayers.vandermonde_backward(
            v, z, grad_out.contiguous(), need_v, need_z
        )
        return (grad_v if need_v else None), (grad_z if need_z else None), None


def native_vandermonde(v: Tensor, z: Tensor, L: int) -> Tensor:
    """``K[..., l] = 2 Re(sum_n v_n z_n^l)`` by the C++ kernels; differentiable (once) in v and z.

    Args:
        v: complex ``(..., M..., N)`` on the CPU (or CUDA, see above) whose trailing dims equal
            ``z.shape``.
        z: complex ``(M..., N)``, same dtype.
        L: output length, ``>= 1``.

    Returns:
        real ``(*v.shape[:-1], L)`` (float32 for complex64, float64 for complex128).

    Example:
        >>> z = torch.exp(torch.complex(-0.1 * torch.ones(3, 4), torch.randn(3, 4)))
        >>> native_vandermonde(torch.randn(3, 4, dtype=torch.cfloat), z, 100).shape  # doctest: +SKIP
        torch.Size([3, 100])

    Raises:
        BackendUnavailableError: the extension cannot be built or loaded (the reason says why).
    """
    _native.require("vandermonde")
    N = z.shape[-1]
    lead = v.shape[: v.dim() - z.dim()]
    out = VandermondeFunction.apply(v.reshape(-1, z.numel() // N, N), z.reshape(-1, N), L)
    return out.reshape(*lead, *z.shape[:-1], L)
