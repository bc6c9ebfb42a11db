"""Comparison helpers shared by the tests of the long_conv backends against the naive oracle."""

import os

import pytest
import torch

from seqlayers.ops.conv import naive_long_conv

from ..helpers import REL_RMS_TOL, rel_rms


def make_inputs(B, H, L, Lk, dtype=torch.float32, k_dtype=torch.float32, with_d=True, seed=0, device="cpu"):
    """``u (B, H, L)``, ``k (H, Lk)`` (scaled by ``1/sqrt(Lk)``), ``D (H,)`` or None, ``dy``.

    Drawn on ``device`` from a generator of that device.
    """
    g = torch.Generator(device=device).manual_seed(seed)
    u = torch.randn(B, H, L, generator=g, device=device).to(dtype)
    k = (torch.randn(H, Lk, generator=g, device=device) / Lk**0.5).to(k_dtype)
    D = torch.randn(H, generator=g, device=device) if with_d else None
    dy = torch.randn(B, H, L, generator=g, device=device).to(dtype)
    return u, k, D, dy


def forward_and_grads(fn, u, k, D, dy):
    """``fn(u, k, D)`` and the gradients of ``(y * dy).sum()`` wrt every input given."""
    inputs = [t.detach().clone().requires_grad_() for t in (u, k, D) if t is not None]
    y = fn(*inputs, None) if D is None else fn(*inputs)
    grads = torch.autograd.grad(y, inputs, dy)
    return (y.detach(), *grads)


def check_against_oracle(fn, device, u, k, D, dy):
    """Run ``fn`` on ``device`` and compare with the oracle run in float64 on the CPU, output by
    output (a float32 oracle has errors of its own: its ``dD``, a sum with cancellation, can be
    off by more than 1e-5).

    Each output is held to the tolerance of its own dtype (``dk`` has ``k``'s dtype).
    """
    on_dev = [t.to(device) if t is not None else None for t in (u, k, D, dy)]
    got = forward_and_grads(fn, *on_dev)
    want = forward_and_grads(naive_long_conv, *(t.double() if t is not None else None for t in (u, k, D, dy)))
    assert got[0].dtype == u.dtype and got[0].shape == u.shape
    assert got[1].dtype == u.dtype and got[2].dtype == k.dtype
    assert_outputs_close(got, want)


def assert_outputs_close(got, want):
    """``(y, du, dk, dD)`` against the oracle's, each within the tolerance of its own dtype."""
    for name, a, b in zip(("y", "du", "dk", "dD"), got, want):
        err, tol = rel_rms(a, b.to(a.device)), REL_RMS_TOL[a.dtype]
        assert err <= tol, f"{name}: relative RMS error {err:.2e} > {tol:.0e}"


@pytest.fixture
def no_tf32():
    """Keep float32 matmuls and convolutions of the oracles exact on a GPU."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def require_compiled_gpu() -> None:
    """Skip the calling test module unless a CUDA device is present and Triton runs compiled."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device", allow_module_level=True)
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("GPU tests run compiled: set TRITON_INTERPRET=0", allow_module_level=True)
    pytest.importorskip("triton")


def compare_in_float64(fn, u, k, D, dy, oracle):
    """``fn`` against ``oracle`` run in float64 on the same inputs, output by output."""
    got = forward_and_grads(fn, u, k, D, dy)
    want = forward_and_grads(oracle, *(t.double() for t in (u, k, D, dy)))
    assert_outputs_close(got, want)
