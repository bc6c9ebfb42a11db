"""linear_scan: the "native" (C++) backend against the sequential oracle, and its loader.

The backend tests skip, with the reason, when the extension cannot be built here (no ninja, no
compiler, no sources); the loader tests run everywhere.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from seqlayers import _native
from seqlayers.ops import linear_scan
from seqlayers.ops.dispatch import BackendUnavailableError, resolve
from seqlayers.ops.scan import naive_linear_scan
from seqlayers.ops import dispatch

from .test_scan import TOL, assert_close, forward_and_grads, make_inputs

DTYPES = list(TOL)


def native(a, b, h0=None):
    return linear_scan(a, b, h0, backend="native")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L", [1, 2, 15, 257, 1009])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "zeros"])
def test_native_matches_naive_forward_and_grads(built, dtype, L, B, with_h0):
    a, b, h0 = make_inputs(B, L, 7, dtype, with_h0)
    dh = torch.randn_like(b)
    got = forward_and_grads(native, a, b, h0, dh)
    want = forward_and_grads(naive_linear_scan, a, b, h0, dh)
    for x, y in zip(got, want):
        assert_close(x, y, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=str)
@pytest.mark.parametrize("L", [1, 2, 17])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "zeros"])
def test_gradcheck(built, dtype, L, with_h0):
    a, b, h0 = (None if t is None else t.requires_grad_() for t in make_inputs(2, L, 3, dtype, with_h0))
    assert torch.autograd.gradcheck(native, (a, b, h0))


def test_states_split_across_threads(built):
    """One batch row and more threads than rows: the states are scanned in parallel blocks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        a, b, h0 = make_inputs(1, 300, 100, torch.complex64)
        dh = torch.randn_like(b)
        got = forward_and_grads(native, a, b, h0, dh)
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(got, forward_and_grads(naive_linear_scan, a, b, h0, dh)):
        assert_close(x, y, torch.complex64)


def test_non_contiguous_expanded_and_conjugated_inputs(built):
    B, L, P = 2, 200, 5
    a = torch.rand(P, dtype=torch.complex128).conj().expand(B, L, P)  # lazy conj, stride 0
    b = torch.randn(B, P, L, dtype=torch.complex128).transpose(1, 2)  # strided states
    h0 = torch.randn(P, B, dtype=torch.complex128).t()
    b_every_other = torch.randn(B, L, 2 * P, dtype=torch.complex128)[..., ::2]
    for bb in (b, b_every_other):
        assert not bb.is_contiguous()
        dh = torch.randn(B, L, P, dtype=torch.complex128)
        got = forward_and_grads(native, a, bb, h0, dh)
        want = forward_and_grads(naive_linear_scan, a.contiguous(), bb.contiguous(), h0.contiguous(), dh)
        for x, y in zip(got, want):
            assert_close(x, y, torch.complex128)


def test_expanded_upstream_gradient(built):
    """``h.sum().backward()`` hands the backward an expanded (stride 0) gradient."""
    a, b, h0 = (t.requires_grad_() for t in make_inputs(2, 40, 3, torch.float64))
    native(a, b, h0).sum().backward()
    grads = [t.grad for t in (a, b, h0)]
    for t in (a, b, h0):
        t.grad = None
    naive_linear_scan(a, b, h0).sum().backward()
    for got, t in zip(grads, (a, b, h0)):
        assert_close(got, t.grad, torch.float64)


def test_grads_only_for_inputs_that_need_them(built):
    a, b, h0 = make_inputs(2, 50, 3, torch.float64)
    b.requires_grad_()
    native(a, b, h0).sum().backward()
    assert b.grad is not None and a.grad is None and h0.grad is None


def test_half_precision_is_upcast_at_the_entry(built):
    a, b, h0 = (t.to(torch.bfloat16) for t in make_inputs(2, 100, 6, torch.float32))
    h = native(a, b, h0)
    assert h.dtype == torch.bfloat16
    want = naive_linear_scan(a.double(), b.double(), h0.double())
    assert (h.double() - want).pow(2).mean().sqrt() < 2e-2 * want.pow(2).mean().sqrt()
    dh = torch.randn(h.shape).to(torch.bfloat16)
    got = forward_and_grads(native, a, b, h0, dh)
    ref = forward_and_grads(naive_linear_scan, a.double(), b.double(), h0.double(), dh.double())
    for name, x, y in zip(("h", "grad_a", "grad_b", "grad_h0"), got, ref):
        assert x.dtype == torch.bfloat16, name
        assert (x.double() - y).pow(2).mean().sqrt() < 2e-2 * y.pow(2).mean().sqrt(), name


def test_registry_explicit_and_auto(built, monkeypatch):
    a, b, h0 = make_inputs(1, 10, 2, torch.float32)
    assert resolve("linear_scan", "native", a, b, h0)[0].name == "native"
    monkeypatch.delenv("SEQLAYERS_SCAN_BACKEND", raising=False)
    assert resolve("linear_scan", "auto", a, b, h0)[0].name == "native"
    monkeypatch.setenv(_native.ENV_VAR, "0")
    assert resolve("linear_scan", "auto", a, b, h0)[0].name == "torch"
    with pytest.raises(BackendUnavailableError, match="SEQLAYERS_NATIVE=0"):
        native(a, b, h0)


def test_unsupported_calls_fall_back(built):
    a, b, _ = make_inputs(1, 10, 2, torch.float32)
    ok, reason = dispatch.supports("linear_scan", "native", a.to("meta"), b.to("meta"), None)
    assert not ok and "CPU" in reason


# ---- the loader, without the real build ----


def test_auto_never_builds_and_says_how(fresh_cache):
    lib = _native.NativeLibrary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok, reason = lib.load(build=False)
    assert not ok and "python -m seqlayers._native build" in reason
    assert not lib.is_built() and not fresh_cache.exists()


def test_failed_build_warns_once_and_reports_the_reason(fresh_cache, tmp_path):
    sources = tmp_path / "csrc"
    sources.mkdir()
    (sources / "broken.cpp").write_text("int broken( { return 0; }\n")
    lib = _native.NativeLibrary(sources)
    with pytest.warns(UserWarning, match="native extension unavailable") as record:
        ok, reason = lib.load()
    assert not ok and reason.startswith("build failed")
    assert len(record) == 1 and "broken" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: same answer, no warning
        assert lib.load() == (ok, reason)
        assert lib.status() == (ok, reason)


def test_missing_ninja_is_unavailable_with_the_fix(fresh_cache, monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    lib = _native.NativeLibrary()
    ok, reason = lib.status()
    assert not ok and "pip install ninja" in reason
    with pytest.warns(UserWarning, match="pip install ninja"):
        assert lib.load() == (False, reason)


def test_missing_sources_and_disabled(fresh_cache, tmp_path, monkeypatch):
    lib = _native.NativeLibrary(tmp_path / "nowhere")
    assert lib.status() == lib.load() == (False, lib.status()[1])
    assert "native sources not installed" in lib.status()[1]
    monkeypatch.setenv(_native.ENV_VAR, "0")
    assert _native.NativeLibrary().status() == (False, "disabled by SEQLAYERS_NATIVE=0")


def test_backend_with_a_broken_build_never_raises_on_auto(broken_library):
    """A broken extension: explicit requests raise the reason, "auto" falls back to torch."""
    a, b, h0 = make_inputs(1, 30, 2, torch.float64)
    with pytest.warns(UserWarning, match="deliberately broken"):
        h = linear_scan(a, b, h0)
    assert_close(h, naive_linear_scan(a, b, h0), torch.float64)
    with pytest.raises(BackendUnavailableError, match="build failed"):
        native(a, b, h0)
