"""S4D kernel: the functional builder against a direct evaluation of its formulas, and the generator."""

import math

import pytest
import torch

import seqlayers
from seqlayers.kernels import KernelGenerator, S4DKernel, s4d_kernel
from seqlayers.kernels.s4d import s4d_init_A


def _direct(A, C, log_dt, L, disc):
    """K[h, l] = 2 Re(sum_n C dB dA^l) with explicit powers, float64/complex128, formula by formula."""
    dt = torch.exp(log_dt.double())[:, None]
    A = A.to(torch.complex128)
    if disc == "zoh":
        dA = torch.exp(dt * A)
        dB = (dA - 1) / A
    else:
        dA = (1 + dt * A / 2) / (1 - dt * A / 2)
        dB = dt / (1 - dt * A / 2)
    K = torch.zeros(C.shape[:-1] + (L,), dtype=torch.float64)
    power = torch.ones_like(dA)
    for l in range(L):
        K[..., l] = 2 * (C.to(torch.complex128) * dB * power).sum(-1).real
        power = power * dA
    return K


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "inv", "legs", "real"])
def test_s4d_kernel_matches_formula(disc, init):
    H, N, L = 3, 8, 37
    A0, _ = s4d_init_A(N, init)
    A = A0.expand(H, N // 2) * (1 + 0.1 * torch.rand(H, N // 2))
    C = torch.randn(2, H, N // 2, dtype=torch.complex128)
    log_dt = torch.log(torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64))
    K = s4d_kernel(A, C, log_dt, L, disc)
    assert K.shape == (2, H, L) and K.dtype == torch.float64
    torch.testing.assert_close(K, _direct(A, C, log_dt, L, disc), rtol=1e-9, atol=1e-9)


def test_complex64_gives_float32():
    gen = S4DKernel(4, 8)
    K = gen(20)
    assert K.dtype == torch.float32 and K.shape == (1, 4, 20)


def test_inits():
    N = 8
    n = torch.arange(N // 2, dtype=torch.float64)
    A, B = s4d_init_A(N, "lin")
    torch.testing.assert_close(A.imag, math.pi * n)
    A, _ = s4d_init_A(N, "inv")
    torch.testing.assert_close(A.imag, N / math.pi * (N / (2 * n + 1) - 1))
    A, _ = s4d_init_A(N, "real")
    torch.testing.assert_close(A.real, -(n + 1))
    A, B = s4d_init_A(N, "legs")
    assert torch.all(A.imag < 0) and torch.allclose(A.real, torch.full_like(A.real, -0.5))
    assert B.abs().min() > 0


@pytest.mark.parametrize("init", ["lin", "inv", "legs", "real"])
def test_real_part_stays_negative(init):
    gen = S4DKernel(4, 8, init=init)
    with torch.no_grad():
        gen.log_A_real.add_(torch.randn_like(gen.log_A_real) * 10)
    assert torch.all(gen.A.real < 0)


def test_dt_range_and_hints():
    gen = S4DKernel(1000, 4, dt_min=1e-3, dt_max=1e-1, lr=2e-3)
    dt = gen.log_dt.exp()
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    for p in (gen.log_dt, gen.log_A_real, gen.A_imag):
        assert p._optim == {"lr": 2e-3, "weight_decay": 0.0}
    assert not hasattr(gen.C, "_optim")
    assert not hasattr(S4DKernel(4, 4, lr=None).log_dt, "_optim")


def test_generator_interface():
    gen = S4DKernel(6, 16, channels=3)
    assert isinstance(gen, KernelGenerator) and gen.recurrent
    assert (gen.d_model, gen.channels) == (6, 3)
    assert gen(1).shape == (3, 6, 1)
    assert gen.default_state(2).shape == (2, 6, 8)


def test_kernel_goes_through_the_vandermonde_op(monkeypatch):
    """The generator calls the vandermonde op with backend "auto" (which never picks the naive one)."""
    from seqlayers.kernels import s4d
    from seqlayers.ops.dispatch import resolve

    calls = []
    original = s4d.vandermonde
    monkeypatch.setattr(s4d, "vandermonde", lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    S4DKernel(4, 8)(100).sum().backward()
    assert len(calls) == 1 and calls[0][1] == {}
    assert resolve("vandermonde", "auto", *calls[0][0])[0].name in ("torch", "native")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"init": "hippo"}, "unknown S4D init 'hippo'"),
        ({"disc": "euler"}, "unknown discretization disc='euler'"),
        ({"d_state": 7}, "even int"),
        ({"d_state": 0}, "even int"),
        ({"dt_min": 0.1, "dt_max": 0.01}, "dt_min <= dt_max"),
        ({"channels": 0}, "channels must be a positive int"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4DKernel(4, **{"d_state": 8, **kwargs})


def test_bad_length_and_arguments():
    gen = S4DKernel(4, 8)
    for L in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            gen(L)
    A = torch.randn(4, 3, dtype=torch.cfloat)
    with pytest.raises(ValueError, match="A must be a complex"):
        s4d_kernel(A.real, A, torch.zeros(4), 5)
    with pytest.raises(ValueError, match=r"C must be a complex \(\.\.\., H, N2\) = \(\.\.\., 4, 3\)"):
        s4d_kernel(A, torch.randn(4, 2, dtype=torch.cfloat), torch.zeros(4), 5)
    with pytest.raises(ValueError, match=r"log_dt must be a real \(H,\)"):
        s4d_kernel(A, A, torch.zeros(3), 5)
    with pytest.raises(ValueError, match="disc"):
        s4d_kernel(A, A, torch.zeros(4), 5, disc="foh")


def test_public_exports():
    assert seqlayers.kernels.s4d_kernel is s4d_kernel
    A, B = seqlayers.init.hippo_legs(3)
    assert A.dtype == torch.float64 and A.shape == (3, 3) and B.shape == (3,)
