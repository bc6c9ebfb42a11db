"""S5 initialization: LegS(P/J) spectra with conjugate symmetry, B and C scales, bidirectional forms."""

import inspect

import pytest
import torch

import seqlayers
from seqlayers.init import hippo_legs, hippo_legs_nplr, legs_normal_diagonal, ptd
from seqlayers.kernels import S5Kernel


def _sorted(z):
    return z[torch.argsort(z.imag * 1e6 + z.real)]


@pytest.mark.parametrize("P, J", [(16, 8), (16, 2), (32, 4), (24, 3), (8, 1)])
def test_conj_sym_ptd_spectrum_is_legs_of_the_block(P, J):
    """conj_sym + ptd: each of the J blocks holds the modes with Im > 0 of PTD(LegS(P/J)) (a real
    perturbation, so they are one of each conjugate pair); P/2 modes in all."""
    n = P // J
    gen = S5Kernel(4, P, blocks=J, init="ptd")
    A, _ = hippo_legs(n)
    _, p, _ = hippo_legs_nplr(n)
    Lambda, _ = ptd(A, start=p, pairs=True)
    half = Lambda[Lambda.imag > 0]
    assert half.numel() == n // 2 and gen.n_modes == P // 2
    got = torch.complex(gen.Lambda_re.double(), gen.Lambda_im.double()).view(J, n // 2)
    for block in got:
        torch.testing.assert_close(_sorted(block), _sorted(half).to(block.dtype), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("P, J", [(16, 8), (16, 2), (32, 4)])
def test_conj_sym_legs_spectrum_is_legs_of_the_block(P, J):
    n = P // J
    gen = S5Kernel(4, P, blocks=J, init="legs")
    L0, _ = legs_normal_diagonal(n)
    half = L0[L0.imag > 0]
    got = torch.complex(gen.Lambda_re.double(), gen.Lambda_im.double()).view(J, n // 2)
    for block in got:
        torch.testing.assert_close(_sorted(block), _sorted(half), rtol=1e-6, atol=1e-6)


def test_listops_sizes_are_not_legs_of_one():
    """P = 16, J = 8 (ListOps): blocks of LegS(2), whose normal part has modes -1/2 +- i sqrt(3)/2;
    PTD moves them, but not to LegS(1)'s single real mode near -1 (the old behaviour)."""
    legs = S5Kernel(4, 16, blocks=8, init="legs")
    torch.testing.assert_close(legs.Lambda_im, torch.full((8,), 3 ** 0.5 / 2))
    ptd_gen = S5Kernel(4, 16, blocks=8, init="ptd")
    assert (ptd_gen.Lambda_im.abs() > 0.3).all()


def test_conj_sym_ptd_is_the_real_block_system():
    """The kept modes and their conjugates rebuild a real matrix close to LegS(n): A + E with E of the
    released relative size."""
    n = 8
    Lambda, V, Vinv = seqlayers.init.s5_block_init(n, 1, "ptd", pairs=True)
    M = V @ torch.diag(Lambda) @ Vinv
    A, _ = hippo_legs(n)
    assert M.imag.abs().max() < 1e-9
    rel = torch.linalg.matrix_norm(M.real - A, 2) / torch.linalg.matrix_norm(A, 2)
    assert rel <= seqlayers.init.ptd_eps(n) * (1 + 1e-9)


@pytest.mark.parametrize("C_init", ["lecun", "trunc_standard"])
def test_b_and_c_scales_follow_the_reference(C_init):
    """B ~ LeCun normal over (P, H), fan-in P: with the unitary LegS basis |B_tilde| has rms 1/sqrt(P);
    C complex with variance 1/fan-in per part (trunc_standard: P; lecun: P * H, as JAX's
    lecun_normal over (H, P, 2)): |C_tilde| has rms sqrt(2/fan-in)."""
    torch.manual_seed(0)
    H, P = 256, 32
    fan_in = P * H if C_init == "lecun" else P
    gen = S5Kernel(H, P, blocks=4, init="legs", C_init=C_init)
    B = torch.view_as_complex(gen.B).abs()
    C = torch.view_as_complex(gen.C).abs()
    assert B.pow(2).mean().sqrt().item() == pytest.approx(P ** -0.5, rel=0.05)
    assert C.pow(2).mean().sqrt().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)



def _rms(C):
    return torch.view_as_complex(C).abs().pow(2).mean().sqrt().item()


def test_c_parts_are_truncated_at_two_standard_deviations():
    """Both draws are truncated normals, as the reference's: with V = I (init='inv') C_tilde is C
    itself, and no part exceeds 2 / (0.8796 sqrt(fan-in))."""
    torch.manual_seed(0)
    H, P = 64, 32
    for C_init, fan_in in (("trunc_standard", P), ("lecun", P * H)):
        gen = S5Kernel(H, P, blocks=4, init="inv", C_init=C_init)
        assert gen.C.abs().max().item() <= 2 / (0.87962566103423978 * fan_in ** 0.5) * (1 + 1e-6)


def test_default_c_init_is_the_reference_default():
    H, P = 64, 32
    assert inspect.signature(S5Kernel).parameters["C_init"].default == "trunc_standard"
    torch.manual_seed(0)
    assert _rms(seqlayers.S5(H, P, blocks=4, init="legs").kernel.C) == pytest.approx((2 / P) ** 0.5, rel=0.05)


def test_concat_halves_are_drawn_as_one_direction():
    """The reference's bidirectional S5 draws C1 and C2 each with the one-direction shape
    (H, P, 2), so each half of the concatenated C has the one-direction scale (no 1/sqrt(2))."""
    H, P = 64, 32
    torch.manual_seed(0)
    layer = seqlayers.S5(H, P, blocks=4, init="legs", bidirectional=True, bidirectional_form="concat")
    for half in layer.kernel.C:
        assert _rms(half) == pytest.approx((2 / P) ** 0.5, rel=0.05)

def _reference_bidirectional(layer, x, include_present):
    """Forward and backward recurrences through the kernel's step; the backward one over the
    reversed sequence, with or without the present step."""
    gen = layer.kernel
    u = x.transpose(1, 2).double()
    dA, B_bar = gen.discrete()
    C = torch.view_as_complex(gen.C)
    Bsz, H, L = u.shape
    xf = torch.zeros(Bsz, gen.n_modes, dtype=dA.dtype)
    xb = torch.zeros_like(xf)
    fwd, bwd = [], [None] * L
    for t in range(L):
        xf = dA * xf + u[:, :, t].to(dA.dtype) @ B_bar.T
        fwd.append(gen.out_factor * torch.einsum("hp,bp->bh", C[0], xf).real)
    for t in reversed(range(L)):
        if include_present:
            xb = dA * xb + u[:, :, t].to(dA.dtype) @ B_bar.T
            bwd[t] = gen.out_factor * torch.einsum("hp,bp->bh", C[1], xb).real
        else:
            bwd[t] = gen.out_factor * torch.einsum("hp,bp->bh", C[1], xb).real
            xb = dA * xb + u[:, :, t].to(dA.dtype) @ B_bar.T
    y = torch.stack(fwd, -1) + torch.stack(bwd, -1) + layer.D[0, :, None].double() * u
    return y.transpose(1, 2)


@pytest.mark.parametrize("form", ["sum", "concat"])
def test_bidirectional_forms(form):
    torch.manual_seed(1)
    layer = seqlayers.S5(3, 8, blocks=2, init="legs", bidirectional=True, bidirectional_form=form,
                         mixing="none", activation="identity", mode="scan").double().eval()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    want = _reference_bidirectional(layer, x, include_present=(form == "concat"))
    torch.testing.assert_close(layer(x), want, rtol=1e-9, atol=1e-9)


def test_concat_form_draws_c_as_sum_and_is_checked():
    """The reference draws C1 and C2 with the one-direction shape: no rescaling for 'concat'."""
    torch.manual_seed(2)
    a = seqlayers.S5(4, 8, blocks=2, init="legs", bidirectional=True)
    torch.manual_seed(2)
    b = seqlayers.S5(4, 8, blocks=2, init="legs", bidirectional=True, bidirectional_form="concat")
    torch.testing.assert_close(b.kernel.C, a.kernel.C)
    assert "bidirectional_form='concat'" in repr(b)
    with pytest.raises(ValueError, match="bidirectional_form"):
        seqlayers.S5(4, 8, blocks=2, bidirectional=True, bidirectional_form="stack")
