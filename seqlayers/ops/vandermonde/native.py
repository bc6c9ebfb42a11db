"""Native (C++ and CUDA) backend of ``vandermonde``: one pass over the output, forward and backward.

The kernels live in ``csrc/vandermonde.cpp`` and are built by :mod:`seqlayers._native`. Positions
are split as ``l = q*T + r`` (``T = 128``); per row the kernels keep the fine powers ``z^r`` and the
block anchors ``z^(qT)`` in small tables computed in double precision (repeated multiplication,
re-anchored from ``exp(l log z)`` every 32 steps, so accuracy does not drift with ``L``), and sum
over modes in vectorized register tiles. Nothing of size ``(N, L)`` exists at any time: the extra
memory is a few tables of ``N * T`` numbers per thread, and the backward recomputes the tables
instead of saving anything but ``v`` and ``z``.

``z`` may contain zeros (``0^0 = 1``). Planning never builds; the first run builds the extension
if it is not built yet.

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
from ...errors import Unsupported
from .call import VandermondeCall

SUPPORTED_DTYPES = (torch.complex64, torch.complex128)


def is_available() -> tuple[bool, str]:
    """Loaded, built, or buildable (sources, ninja and a compiler present); never builds."""
    return _native.LIBRARY.status()


def plan(call: VandermondeCall, auto: bool) -> bool:
    """CPU complex tensors (or CUDA, asked by name); never builds. The plan: whether it is CUDA."""
    if call.device.type != "cuda":
        _native.check_cpu_call(call.device, call.dtype, SUPPORTED_DTYPES, auto=auto)
        return False
    if call.dtype not in SUPPORTED_DTYPES:
        raise Unsupported(f"dtype {call.dtype} is not one of {[str(d) for d in SUPPORTED_DTYPES]}")
    if auto:
        raise Unsupported("the CUDA kernel is used only when asked for (backend='native') until it has "
                          "been measured against 'torch' on a GPU")
    ok, reason = _native.LIBRARY.status()
    if not ok:
        raise Unsupported(reason)
    return True


def prepare(plan: bool | None) -> None:
    """Build (or load) the extension before its first run; a CUDA call (``plan``) needs a CUDA build."""
    _native.prepare()
    if plan and not _native.LIBRARY.has_kernel("native_vandermonde_forward", "CUDA"):
        raise Unsupported("the native extension was built without CUDA (no GPU or no CUDA toolkit when "
                          "it was built); rebuild it on a machine with both")


def forward(plan: bool, v: Tensor, z: Tensor, L: int) -> Tensor:
    return torch.ops.seqlayers.native_vandermonde_forward(v.resolve_conj().contiguous(), z.resolve_conj().contiguous(), L)


def backward(plan: bool, grad: Tensor, v: Tensor, z: Tensor, L: int,
             needs: list[bool]) -> tuple[Tensor, Tensor]:
    return torch.ops.seqlayers.native_vandermonde_backward(
        v.resolve_conj().contiguous(), z.resolve_conj().contiguous(), grad.contiguous(), needs[0], needs[1])
