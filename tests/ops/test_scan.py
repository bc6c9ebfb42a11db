"""linear_scan: the "torch" backend against the sequential oracle, plus properties and input checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlayers
from seqlayers.ops import linear_scan
from seqlayers.ops.dispatch import resolve
from seqlayers.ops.scan import chunked_linear_scan, naive_linear_scan

# (rtol, atol) per dtype, stated once; half precision is compared as relative RMS error
TOL = {
    torch.float32: (1e-4, 1e-4),
    torch.complex64: (1e-4, 1e-4),
    torch.float64: (1e-12, 1e-12),
    torch.complex128: (1e-12, 1e-12),
}
HALF_RMS = {torch.bfloat16: 2e-2, torch.float16: 4e-3}
DTYPES = list(TOL)


def make_inputs(B, L, P, dtype, with_h0=True, seed=0):
    """Stable decays (|a| < 1, some exactly 0 and some near 1) and unit-scale inputs."""
    g = torch.Generator().manual_seed(seed)
    real = torch.float64
    mag = torch.rand(B, L, P, generator=g, dtype=real)
    mag[..., 0] = 0.999  # slow decay: long memory across chunk boundaries
    mag[:, ::7, -1] = 0.0  # exact zeros: no division by a anywhere
    if dtype.is_complex:
        phase = torch.rand(B, L, P, generator=g, dtype=real) * 6.283
        a = torch.polar(mag, phase)
        b = torch.randn(B, L, P, 2, generator=g, dtype=real)
        b = torch.complex(b[..., 0], b[..., 1])
        h0 = torch.randn(B, P, 2, generator=g, dtype=real)
        h0 = torch.complex(h0[..., 0], h0[..., 1])
    else:
        a = mag * torch.where(torch.rand(B, L, P, generator=g) < 0.2, -1.0, 1.0).to(real)
        b = torch.randn(B, L, P, generator=g, dtype=real)
        h0 = torch.randn(B, P, generator=g, dtype=real)
    return a.to(dtype), b.to(dtype), (h0.to(dtype) if with_h0 else None)


def forward_and_grads(fn, a, b, h0, dh):
    leaves = [t.detach().clone().requires_grad_() for t in (a, b) + ((h0,) if h0 is not None else ())]
    h = fn(leaves[0], leaves[1], leaves[2] if h0 is not None else None)
    (h * dh).sum().real.backward()
    return [h.detach()] + [t.grad for t in leaves]


def assert_close(x, y, dtype):
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L", [1, 2, 15, 17, 63, 257, 1009])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "zeros"])
def test_torch_matches_naive_forward_and_grads(dtype, L, with_h0):
    a, b, h0 = make_inputs(3, L, 7, dtype, with_h0)
    dh = torch.randn_like(b)
    got = forward_and_grads(lambda *x: linear_scan(*x, backend="torch"), a, b, h0, dh)
    want = forward_and_grads(naive_linear_scan, a, b, h0, dh)
    for x, y in zip(got, want):
        assert_close(x, y, dtype)


@pytest.mark.parametrize("L", [1, 16, 300])
def test_batch_of_one(L):
    a, b, h0 = make_inputs(1, L, 5, torch.complex64)
    assert_close(linear_scan(a, b, h0), naive_linear_scan(a, b, h0), torch.complex64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=str)
@pytest.mark.parametrize("L", [1, 2, 17, 40])
def test_gradcheck(dtype, L):
    a, b, h0 = (t.requires_grad_() for t in make_inputs(2, L, 3, dtype))
    assert torch.autograd.gradcheck(chunked_linear_scan, (a, b, h0))


def test_gradgradcheck_complex():
    a, b, h0 = (t.requires_grad_() for t in make_inputs(1, 20, 2, torch.complex128))
    assert torch.autograd.gradgradcheck(chunked_linear_scan, (a, b, h0))


def test_grads_only_for_inputs_that_need_them():
    a, b, h0 = make_inputs(2, 50, 3, torch.float64)
    b.requires_grad_()
    linear_scan(a, b, h0).sum().backward()
    assert b.grad is not None and a.grad is None and h0.grad is None


@pytest.mark.parametrize("dtype", list(HALF_RMS), ids=str)
def test_half_precision_computes_in_fp32(dtype):
    a, b, h0 = make_inputs(2, 300, 6, torch.float32)
    a, b, h0 = a.to(dtype), b.to(dtype), h0.to(dtype)
    h = linear_scan(a, b, h0)
    assert h.dtype == dtype
    want = naive_linear_scan(a.double(), b.double(), h0.double())
    rms = (h.double() - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt()
    assert rms < HALF_RMS[dtype]
    a.requires_grad_()
    linear_scan(a, b, h0).sum().backward()
    assert a.grad.dtype == dtype


def test_non_contiguous_and_expanded_inputs():
    B, L, P = 2, 200, 5
    a_const = torch.rand(P, dtype=torch.complex128)
    a = a_const.expand(B, L, P)
    b = torch.randn(B, P, L, dtype=torch.complex128).transpose(1, 2)
    h0 = torch.randn(P, B, dtype=torch.complex128).t()
    assert not b.is_contiguous() and not h0.is_contiguous()
    want = naive_linear_scan(a.contiguous(), b.contiguous(), h0.contiguous())
    assert_close(linear_scan(a, b, h0), want, torch.complex128)


def test_long_sequence_with_unit_modulus_decay_stays_accurate():
    """|a| = 1 for 20K steps: a blocked scan must not drift from the sequential one."""
    B, L, P = 1, 20_000, 4
    angle = torch.full((B, L, P), 0.01, dtype=torch.float64)
    a = torch.polar(torch.ones_like(angle), angle)
    b = torch.randn(B, L, P, dtype=torch.complex128) * 1e-2
    assert_close(linear_scan(a, b), naive_linear_scan(a, b), torch.complex128)


def test_tiny_decays_do_not_blow_up():
    a = torch.full((2, 5000, 3), 1e-30, dtype=torch.float32)
    b = torch.randn(2, 5000, 3)
    h = linear_scan(a, b)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, b, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    B=st.integers(1, 3),
    L=st.integers(1, 300),
    P=st.integers(1, 9),
    complex_=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes(B, L, P, complex_, with_h0, seed):
    dtype = torch.complex128 if complex_ else torch.float64
    a, b, h0 = make_inputs(B, L, P, dtype, with_h0, seed)
    assert_close(linear_scan(a, b, h0), naive_linear_scan(a, b, h0), dtype)


@settings(max_examples=15, deadline=None)
@given(L=st.integers(2, 400), split=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_splitting_the_sequence_carries_the_state(L, split, seed):
    """Scanning [0, s) then [s, L) from the state at s - 1 equals scanning [0, L)."""
    s = min(L - 1, max(1, int(split * L)))
    a, b, h0 = make_inputs(2, L, 3, torch.complex128, seed=seed)
    whole = linear_scan(a, b, h0)
    first = linear_scan(a[:, :s], b[:, :s], h0)
    second = linear_scan(a[:, s:], b[:, s:], first[:, -1])
    assert_close(torch.cat([first, second], dim=1), whole, torch.complex128)


@settings(max_examples=15, deadline=None)
@given(L=st.integers(2, 300), t0=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_causality(L, t0, seed):
    """Changing b at t0 leaves every earlier state untouched."""
    t0 = min(L - 1, int(t0 * L))
    a, b, h0 = make_inputs(1, L, 4, torch.float64, seed=seed)
    b2 = b.clone()
    b2[:, t0] += 1.0
    assert torch.equal(linear_scan(a, b, h0)[:, :t0], linear_scan(a, b2, h0)[:, :t0])


def test_registry_and_selection():
    names = seqlayers.ops.available_backends("linear_scan")
    assert "torch" in names and "naive" in names
    a, b, _ = make_inputs(1, 10, 2, torch.float32)
    assert resolve("linear_scan", "torch", a, b, None)[0].name == "torch"
    with seqlayers.ops.use_backend("naive", op="linear_scan"):
        assert resolve("linear_scan", "auto", a, b, None)[0].name == "naive"


def test_env_var_selects_backend(monkeypatch):
    a, b, _ = make_inputs(1, 10, 2, torch.float32)
    monkeypatch.setenv("SEQLAYERS_SCAN_BACKEND", "naive")
    assert resolve("linear_scan", "auto", a, b, None)[0].name == "naive"


def test_unknown_backend_is_rejected():
    a, b, _ = make_inputs(1, 4, 2, torch.float32)
    with pytest.raises(ValueError, match="unknown backend"):
        linear_scan(a, b, backend="nope")


def _bad(shape=(2, 5, 3), dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    "args, match",
    [
        ((_bad((5, 3)), _bad((5, 3))), r"a must have shape \(B, L, P\).*got \(5, 3\)"),
        ((_bad((2, 0, 3)), _bad((2, 0, 3))), r"L, P >= 1, got \(2, 0, 3\)"),
        ((_bad(), _bad((2, 5, 4))), r"b must have a's shape \(B, L, P\) = \(2, 5, 3\), got \(2, 5, 4\)"),
        ((_bad(), _bad((1, 5, 3))), r"got \(1, 5, 3\)"),
        ((_bad((1, 5, 3)), _bad((2, 5, 3))), r"= \(1, 5, 3\), got \(2, 5, 3\)"),
        ((_bad(), _bad(), _bad((3, 2))), r"h0 must have shape \(B, P\) = \(2, 3\) or be None, got \(3, 2\)"),
        ((_bad(), _bad(), _bad((2, 1, 3))), r"got \(2, 1, 3\)"),
    ],
)
def test_bad_shapes_raise_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        linear_scan(*args)


@pytest.mark.parametrize(
    "args, match",
    [
        ((_bad(), _bad(dtype=torch.float64)), r"b must have a's dtype torch.float32, got torch.float64"),
        ((_bad(dtype=torch.complex64), _bad()), r"b must have a's dtype torch.complex64, got torch.float32"),
        ((_bad(), _bad(), _bad((2, 3), torch.complex64)), r"h0 must have a's dtype torch.float32"),
        ((_bad(dtype=torch.int64), _bad(dtype=torch.int64)), r"a must be float32/.*got dtype torch.int64"),
        ((_bad().numpy(), _bad()), r"a must be a torch.Tensor, got ndarray"),
        ((_bad(), _bad(), [0.0, 0.0]), r"h0 must be a torch.Tensor, got list"),
    ],
)
def test_bad_dtypes_raise_type_error(args, match):
    with pytest.raises(TypeError, match=match):
        linear_scan(*args)
