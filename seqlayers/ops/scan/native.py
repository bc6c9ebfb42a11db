"""Native (C++, CPU) backend of ``linear_scan``: one pass over memory forward and backward.

The kernels live in ``csrc/linear_scan.cpp`` and are built by :mod:`seqlayers._native`. Each task
(a batch row, a block of states) walks the sequence once, updating contiguous states in a
vectorized inner loop; tasks run in parallel over the batch and state blocks. The backward is
one reverse pass too: the adjoint ``lam_t = G_t + conj(a_{t+1}) lam_{t+1}`` (the forward
recurrence from the end on the shifted, conjugated decays), writing ``grad_b = lam``,
``grad_a_t = lam_t conj(h_{t-1})`` and ``grad_h0 = conj(a_0) lam_0`` as it goes.

Inputs need contiguous states (stride 1 over P) only: expanded decays such as
``a.expand(B, L, P)`` are read in place, anything else is copied first.

When it is built: the first run of ``backend="native"`` builds it (about 10 s, cached on disk);
``"auto"`` picks it only once it is built, or may build it when ``SEQLAYERS_NATIVE=1``;
``SEQLAYERS_NATIVE=0`` turns it off. Planning never builds. See :mod:`seqlayers._native`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import _native
from .call import ScanCall

SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def is_available() -> tuple[bool, str]:
    """Loaded, built, or buildable (sources, ninja and a compiler present); never builds."""
    return _native.LIBRARY.status()


def plan(call: ScanCall, auto: bool) -> None:
    """CPU tensors of a supported dtype and an extension that is (or, asked by name, can be) built."""
    _native.check_cpu_call(call.device, call.dtype, SUPPORTED_DTYPES, auto=auto)


def prepare(plan: None) -> None:
    """Build (or load) the extension before its first run."""
    _native.prepare()


def _states_contiguous(x: Tensor) -> Tensor:
    """``x`` with a materialized conj/neg bit and stride 1 over its last dim (copied only if not)."""
    x = x.resolve_conj().resolve_neg()
    return x if x.stride(-1) == 1 or x.shape[-1] == 1 else x.contiguous()


def forward(plan: None, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    h0 = None if h0 is None else h0.resolve_conj().resolve_neg().contiguous()
    return torch.ops.seqlayers.native_linear_scan_forward(_states_contiguous(a), _states_contiguous(b), h0)


def backward(plan: None, grad: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, h: Tensor,
             needs: list[bool]) -> tuple[Tensor, Tensor, Tensor | None]:
    h0 = None if h0 is None else h0.resolve_conj().resolve_neg().contiguous()
    grad_a, grad_b, grad_h0 = torch.ops.seqlayers.native_linear_scan_backward(
        _states_contiguous(a), h.contiguous(), h0, _states_contiguous(grad), needs[0])
    return grad_a, grad_b, grad_h0 if h0 is not None else None
