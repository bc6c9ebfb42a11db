"""HiPPO-LegS, its normal-plus-low-rank split and the exact diagonalization of its normal part."""

import math

import pytest
import torch

from seqlayers.init import hippo_legs, hippo_legs_nplr, legs_half_modes, legs_normal_diagonal


@pytest.mark.parametrize("N", [1, 2, 5, 16])
def test_hippo_legs_formula(N):
    A, B = hippo_legs(N)
    assert A.dtype == B.dtype == torch.float64 and A.shape == (N, N) and B.shape == (N,)
    for n in range(N):
        assert B[n].item() == pytest.approx(math.sqrt(2 * n + 1))
        for k in range(N):
            if n > k:
                expected = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1)
            elif n == k:
                expected = -(n + 1)
            else:
                expected = 0.0
            assert A[n, k].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("N", [3, 8, 33])
def test_nplr_reconstructs_A(N):
    A, B = hippo_legs(N)
    S, P, B2 = hippo_legs_nplr(N)
    torch.testing.assert_close(S - torch.outer(P, P), A, rtol=0, atol=1e-12)
    torch.testing.assert_close(B2, B)
    torch.testing.assert_close(P, torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5))
    skew = S + 0.5 * torch.eye(N, dtype=torch.float64)
    torch.testing.assert_close(skew, -skew.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("N", [4, 9, 64])
def test_normal_diagonalization_exact_and_unitary(N):
    S, _, _ = hippo_legs_nplr(N)
    Lambda, V = legs_normal_diagonal(N)
    eye = torch.eye(N, dtype=torch.complex128)
    torch.testing.assert_close(V.conj().T @ V, eye, rtol=0, atol=1e-10)
    torch.testing.assert_close(V @ torch.diag(Lambda) @ V.conj().T, S.to(torch.complex128), rtol=0, atol=1e-10)
    torch.testing.assert_close(Lambda.real, torch.full((N,), -0.5, dtype=torch.float64))


def test_half_modes_are_the_negative_imaginary_half():
    Lambda, V = legs_normal_diagonal(8)
    A, B_tilde = legs_half_modes(8)
    assert A.shape == B_tilde.shape == (4,)
    assert (A.imag < 0).all()
    torch.testing.assert_close(torch.sort(A.imag).values, torch.sort(Lambda.imag[Lambda.imag < 0]).values)
    with pytest.raises(ValueError, match="even"):
        legs_half_modes(7)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "4"])
def test_bad_size(bad):
    with pytest.raises(ValueError, match="positive int"):
        hippo_legs(bad)
