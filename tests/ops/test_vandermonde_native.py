"""vandermonde: the "native" (C++) backend against the float64 materializing oracle.

Skips, with the reason, when the extension cannot be built here. float64 is compared tightly;
complex64 inputs are compared with the float64 oracle evaluated on the same (rounded) inputs,
at a stated relative RMS tolerance.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlayers
from seqlayers import _native
from seqlayers.ops import vandermonde
from seqlayers.ops.dispatch import BackendUnavailableError, resolve
from seqlayers.ops.vandermonde import naive_vandermonde

from ..helpers import rel_rms

FP32_TOL = 1e-5  # relative RMS error of complex64 inputs vs float64, forward and gradients


def _vz(shape_v, shape_z, dtype=torch.complex128, decay=0.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(*shape_v, dtype=torch.complex128, generator=gen)
    log_z = torch.complex(-torch.rand(*shape_z, generator=gen, dtype=torch.float64) * decay,
                          torch.randn(*shape_z, generator=gen, dtype=torch.float64))
    return v.to(dtype), torch.exp(log_z).to(dtype)


def _forward_and_grads(v, z, L, backend, dK):
    v = v.detach().requires_grad_()
    z = z.detach().requires_grad_()
    K = vandermonde(v, z, L, backend=backend)
    (K * dK.to(K.dtype)).sum().backward()
    return K.detach(), v.grad, z.grad


def _oracle(v, z, L, dK):
    """Float64 forward and gradients on exactly the inputs given (rounded or not)."""
    return _forward_and_grads(v.to(torch.complex128), z.to(torch.complex128), L, "naive", dK)


@pytest.mark.parametrize("L", [1, 2, 15, 127, 128, 129, 257, 1000, 1009])
@pytest.mark.parametrize("lead", [(), (2,)], ids=["no-channels", "channels"])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=str)
def test_matches_oracle_with_grads(built, L, lead, dtype):
    v, z = _vz((*lead, 3, 5), (3, 5), dtype)
    dK = torch.randn(*lead, 3, L, dtype=torch.float64)
    got = _forward_and_grads(v, z, L, "native", dK)
    want = _oracle(v, z, L, dK)
    for name, g, w in zip(("K", "grad_v", "grad_z"), got, want):
        assert g.dtype == w.to(g.dtype).dtype
        if dtype == torch.complex128:
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10, msg=name)
        elif w.abs().max() > 0:
            assert rel_rms(g, w) <= FP32_TOL, name


@pytest.mark.parametrize("L", [1, 2, 9, 130])
def test_gradcheck_complex128(built, L):
    v, z = _vz((2, 3), (2, 3))
    v.requires_grad_()
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda v, z: vandermonde(v, z, L, backend="native"), (v, z))


def test_float32_accuracy_does_not_drift_up_to_64k(built):
    """S4D-like modes (slow decay, up to 16 rad/step of phase): fp32 stays within 1e-5 of fp64."""
    M, N, L = 2, 8, 65536
    dt = torch.tensor([[1e-3], [1e-1]], dtype=torch.float64)
    A = torch.complex(-0.5 * torch.ones(M, N, dtype=torch.float64),
                      torch.pi * torch.arange(N, dtype=torch.float64).expand(M, N))
    z = torch.exp(dt * A).to(torch.complex64)
    v = _vz((M, N), (M, N), torch.complex64)[0]
    dK = torch.randn(M, L, dtype=torch.float64)
    got = _forward_and_grads(v, z, L, "native", dK)
    want = _oracle(v, z, L, dK)
    for name, g, w in zip(("K", "grad_v", "grad_z"), got, want):
        assert rel_rms(g, w) <= FP32_TOL, name


def test_zero_modes_and_unit_modes(built):
    """z = 0 contributes only at l = 0 (0^0 = 1); |z| = 1 does not decay."""
    v = torch.tensor([[1 + 2j, 0.5 - 1j]], dtype=torch.complex128)
    z = torch.tensor([[0j, torch.exp(torch.tensor(0.3j)).item()]], dtype=torch.complex128)
    K = vandermonde(v, z, 300, backend="native")
    expected = torch.stack([2 * (v * z**l).sum(-1).real for l in range(300)], -1)
    torch.testing.assert_close(K, expected)


def test_only_requested_grads_and_views(built):
    v, z = _vz((4, 6), (4, 6))
    dK = torch.randn(4, 50, dtype=torch.float64)
    z_t = z.t().contiguous().t()  # non-contiguous
    v_c = v.conj()  # lazy conjugate view
    z_req = z_t.detach().requires_grad_()
    (vandermonde(v_c, z_req, 50, backend="native") * dK).sum().backward()
    z_ref = z.detach().requires_grad_()
    (naive_vandermonde(v.conj(), z_ref, 50) * dK).sum().backward()
    torch.testing.assert_close(z_req.grad, z_ref.grad)


@settings(max_examples=25, deadline=None)
@given(
    M=st.integers(1, 4),
    N=st.integers(1, 40),
    L=st.integers(1, 600),
    channels=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_property_any_shape_matches_oracle(M, N, L, channels, seed):
    if not _native.LIBRARY.load(build=True)[0]:
        pytest.skip("native extension unavailable")
    lead = (channels,) if channels else ()
    v, z = _vz((*lead, M, N), (M, N), seed=seed)
    dK = torch.randn(*lead, M, L, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    for g, w in zip(_forward_and_grads(v, z, L, "native", dK), _oracle(v, z, L, dK)):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)


def test_auto_picks_native_once_built_and_env_turns_it_off(built, monkeypatch):
    v, z = _vz((2, 3), (2, 3), torch.complex64)
    monkeypatch.delenv("SEQLAYERS_VANDERMONDE_BACKEND", raising=False)
    assert resolve("vandermonde", "auto", v, z, 10)[0].name == "native"
    monkeypatch.setenv(_native.ENV_VAR, "0")
    assert resolve("vandermonde", "auto", v, z, 10)[0].name == "torch"
    with pytest.raises(BackendUnavailableError, match="SEQLAYERS_NATIVE=0"):
        vandermonde(v, z, 10, backend="native")


def test_s4d_and_s5_unchanged_by_the_backend(built):
    """S4D's kernel goes through vandermonde; S5 convolves per mode (no sum over modes, so no
    Vandermonde product) and runs its scan mode through linear_scan's native backend."""
    torch.manual_seed(0)
    cases = [
        (seqlayers.S4D(8, d_state=16), "vandermonde"),
        (seqlayers.S5(8, d_state=8, blocks=2, mode="scan"), "linear_scan"),
    ]
    x = torch.randn(2, 300, 8)
    for layer, op in cases:
        outs = []
        for backend in ("torch", "native"):
            with seqlayers.ops.use_backend(backend, op=op):
                layer.zero_grad()
                y = layer(x)
                y.square().sum().backward()
                outs.append((y.detach(), [p.grad.clone() for p in layer.parameters() if p.grad is not None]))
        assert rel_rms(outs[1][0], outs[0][0]) < 1e-5
        assert len(outs[1][1]) == len(outs[0][1]) > 0
        for g1, g0 in zip(outs[1][1], outs[0][1]):
            assert rel_rms(g1, g0) < 1e-4


def test_failed_build_falls_back_on_auto_and_raises_when_asked(broken_library):
    v, z = _vz((2, 3), (2, 3))
    with pytest.warns(UserWarning, match="deliberately broken"):
        K = vandermonde(v, z, 20)
    torch.testing.assert_close(K, naive_vandermonde(v, z, 20))
    with pytest.raises(BackendUnavailableError, match="build failed") as error:
        vandermonde(v, z, 20, backend="native")
    log = str(error.value).split("full compiler output: ")[1].split(";")[0]
    assert "deliberately broken" in open(log).read()
    assert "SEQLAYERS_NATIVE=0" in str(error.value)


_ISA_CHECK = """
import torch
from seqlayers.ops import vandermonde
torch.manual_seed(0)
v = torch.randn(2, 3, 37, dtype=torch.complex64)
z = torch.exp(torch.complex(-0.01 * torch.rand(3, 37), torch.randn(3, 37)))
out = vandermonde(v, z, 1000, backend="native")
want = vandermonde(v.to(torch.complex128), z.to(torch.complex128), 1000, backend="naive")
err = float((out.double() - want).norm() / want.norm())
print(torch.ops.seqlayers.native_vector_unit(), err)
"""


@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
def test_every_vector_unit_version_matches_the_oracle(built, isa):
    """Each x86 version of the tile kernels (vector widths 16, 32, 64 bytes), chosen by
    $SEQLAYERS_NATIVE_ISA in a fresh process, capped at what the CPU has."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SEQLAYERS_NATIVE_ISA=isa)
    done = subprocess.run([sys.executable, "-c", _ISA_CHECK], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    unit, err = done.stdout.split()
    order = ["base", "avx2", "avx512"]
    assert order.index(unit) <= order.index(isa)
    assert float(err) <= FP32_TOL
