"""linear_scan's "conv" backend (a shared time-invariant decay as a causal convolution) against the
naive scan: forward and every gradient, real and complex, odd and prime lengths, batch 1 and > 1."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from seqlayers.ops import linear_scan
from seqlayers.ops.dispatch import explain, resolve
from seqlayers.errors import BackendUnavailableError
from seqlayers.ops.scan import conv as scan_conv

from ..helpers import REL_RMS_TOL, rel_rms


def _decay(P, dtype):
    z = 0.2 + 0.79 * torch.rand(1, 1, P, dtype=torch.float64)
    if dtype.is_complex:
        z = z * torch.exp(1j * torch.pi * torch.rand(1, 1, P, dtype=torch.float64))
    return z.to(dtype)


def _run(z, b, h0, backend, grad):
    """States and the gradients of ``<h, grad>`` w.r.t. ``(z, b, h0)``; the naive scan takes the
    decay expanded to every position, as a time-varying one."""
    inputs = [t.clone().requires_grad_() for t in (z, b) + (() if h0 is None else (h0,))]
    a = inputs[0] if backend == "conv" else inputs[0].expand(b.shape)
    h = linear_scan(a, inputs[1], inputs[2] if h0 is not None else None, backend=backend)
    (h * grad.conj()).real.sum().backward()
    return [h] + [t.grad for t in inputs]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("B, L", [(1, 1), (1, 2), (3, 15), (2, 257), (1, 1000), (2, 97)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_forward_and_every_gradient_match_the_naive_scan(dtype, B, L, with_h0):
    P = 5
    z, b = _decay(P, dtype), torch.randn(B, L, P, dtype=dtype)
    h0 = torch.randn(B, P, dtype=dtype) if with_h0 else None
    grad = torch.randn(B, L, P, dtype=dtype)
    tol = REL_RMS_TOL[torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32]
    for got, want in zip(_run(z, b, h0, "conv", grad), _run(z, b, h0, "naive", grad)):
        assert got.shape == want.shape
        assert rel_rms(got, want) <= 10 * tol


def test_groups_of_modes_give_the_same_states(monkeypatch):
    z, b = _decay(7, torch.complex64), torch.randn(2, 33, 7, dtype=torch.complex64)
    grad = torch.randn_like(b)
    whole = _run(z, b, None, "conv", grad)
    monkeypatch.setattr(scan_conv, "GROUP_BYTES", 1)  # one mode at a time
    assert resolve("linear_scan", "conv", z, b, None)[1] == 1
    for got, want in zip(_run(z, b, None, "conv", grad), whole):
        assert rel_rms(got, want) <= 1e-6


def test_group_size_bounds_the_working_memory():
    """S5 at L = 2^20: the plan must not hold the (P, L) kernel and its convolution at once."""
    z, b = _decay(32, torch.complex64), torch.empty(1, 1 << 20, 32, dtype=torch.complex64)
    modes = resolve("linear_scan", "conv", z, b, None)[1]
    assert 1 <= modes < 32


def test_half_precision_computes_in_fp32():
    z, b = _decay(4, torch.float32), torch.randn(2, 50, 4)
    want = linear_scan(z.expand(b.shape), b, backend="naive")
    got = linear_scan(z.bfloat16(), b.bfloat16(), backend="conv")
    assert got.dtype == torch.bfloat16 and rel_rms(got, want) <= REL_RMS_TOL[torch.bfloat16]


def test_only_shared_decays_and_auto_never_on_the_cpu():
    z, b = _decay(4, torch.complex64), torch.randn(2, 30, 4, dtype=torch.complex64)
    with pytest.raises(BackendUnavailableError, match=r"time-invariant decay: a of shape \(1, 1, P\)"):
        linear_scan(z.expand(b.shape), b, backend="conv")
    decision = explain("linear_scan", z, b, None)
    assert decision.backend != "conv" and "faster" in decision.skipped["conv"]
    # every other backend scans the shared decay as if expanded
    assert rel_rms(linear_scan(z, b), linear_scan(z.expand(b.shape), b, backend="naive")) <= 1e-6


def test_empty_batch():
    z, b = _decay(3, torch.complex64), torch.randn(0, 9, 3, dtype=torch.complex64, requires_grad=True)
    h = linear_scan(z, b, backend="conv")
    assert h.shape == (0, 9, 3)
    (g,) = torch.autograd.grad(h.abs().sum(), b)
    assert g.shape == b.shape


@given(L=st.integers(1, 60), t=st.integers(0, 59))
def test_causal(L, t):
    """Changing b at step t leaves the states before t unchanged."""
    t = min(t, L - 1)
    z, b = _decay(3, torch.complex128), torch.randn(2, L, 3, dtype=torch.complex128)
    other = b.clone()
    other[:, t] += 1.0
    h, h_other = linear_scan(z, b, backend="conv"), linear_scan(z, other, backend="conv")
    assert torch.equal(h[:, :t], h_other[:, :t]) or rel_rms(h_other[:, :t], h[:, :t]) <= 1e-12


def test_vmap_over_a_shared_decay():
    zs = torch.cat([_decay(3, torch.complex64) for _ in range(4)])  # (4, 1, 3): one decay per entry
    b = torch.randn(4, 2, 20, 3, dtype=torch.complex64)
    got = torch.func.vmap(lambda z, b: linear_scan(z.unsqueeze(0), b))(zs, b)
    want = torch.stack([linear_scan(z.expand(2, 20, 3), x, backend="naive") for z, x in zip(zs, b)])
    assert rel_rms(got, want) <= 1e-6
