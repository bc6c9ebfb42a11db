"""PTD keeps the spectrum: no unstable mode, a nearly rank-one E, the released eps per N."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlayers.init import hippo_legs, hippo_legs_nplr, ptd, ptd_eps
from seqlayers.init.ptd import RELEASED_EPS

# cond(V) of the perturbations released with Yu et al. 2024
RELEASED_COND = {8: 5.11, 16: 6.56, 32: 8.31, 64: 9.17}


def _perturbation(A, Lambda, V):
    return V @ torch.diag(Lambda) @ torch.linalg.inv(V) - A


@pytest.mark.parametrize("N", [8, 16, 32, 64, 128, 256])
def test_no_unstable_mode_and_frobenius_close_to_spectral(N):
    """For every N: Re(lambda) < 0 for all modes of A + E (nothing to reflect), ||E||_2 <= eps ||A||,
    and ||E||_F / ||A|| within 1.5x of ||E||_2 / ||A|| (E has rank 2: at most sqrt(2)). Both hold for
    every admissible iterate, so N >= 128 run a few steps only (the full runs are in ptd_cond.md)."""
    A, _ = hippo_legs(N)
    _, p, _ = hippo_legs_nplr(N)
    kwargs = {"iters": 15, "restarts": 1} if N >= 128 else {}
    eps = ptd_eps(N)
    Lambda, V = ptd(A, eps, start=p, pairs=True, **kwargs)
    assert (Lambda.real < 0).all()
    assert (Lambda.imag != 0).all()  # pairs: no real eigenvalue
    E = _perturbation(A, Lambda, V)
    norm_A = torch.linalg.matrix_norm(A, 2)
    e2, ef = torch.linalg.matrix_norm(E, 2) / norm_A, torch.linalg.matrix_norm(E) / norm_A
    assert e2 <= eps * (1 + 1e-9)
    assert ef <= 1.5 * e2
    torch.testing.assert_close(ef, torch.tensor(eps, dtype=torch.float64), rtol=1e-6, atol=0)
    assert torch.isreal(E).all() or E.imag.abs().max() < 1e-8 * norm_A  # a real perturbation


@pytest.mark.parametrize("N", [8, 16, 32])
def test_cond_at_or_below_the_release(N):
    A, _ = hippo_legs(N)
    _, p, _ = hippo_legs_nplr(N)
    _, V = ptd(A, start=p, pairs=True)
    assert torch.linalg.cond(V) <= RELEASED_COND[N]


def test_ptd_eps_is_the_released_size():
    for N, eps in RELEASED_EPS.items():
        assert ptd_eps(N) == eps
    assert ptd_eps(2) == ptd_eps(4) == 0.098 and ptd_eps(256) == 0.032
    sizes = [2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 512]
    values = [ptd_eps(n) for n in sizes]
    assert all(a >= b for a, b in zip(values, values[1:]))  # non-increasing in N
    assert ptd_eps(24) == pytest.approx(0.051 + (math.log2(24) - 4) * (0.038 - 0.051), abs=1e-4)


@pytest.mark.parametrize("N", [2, 4, 6])
def test_pairs_for_small_blocks(N):
    """Small LegS blocks (S5's ListOps block size is 2) get conjugate pairs: the real eigenvalues
    -1, ..., -N of LegS meet and leave the real axis."""
    A, _ = hippo_legs(N)
    _, p, _ = hippo_legs_nplr(N)
    Lambda, _ = ptd(A, start=p, pairs=True)
    assert (Lambda.imag != 0).all() and (Lambda.real < 0).all()
    torch.testing.assert_close(torch.sort(Lambda.imag).values, torch.sort(-Lambda.imag).values)


@settings(max_examples=6, deadline=None)
@given(N=st.integers(3, 10), eps=st.floats(0.03, 0.3), seed=st.integers(0, 3))
def test_random_sizes_stay_stable_and_small(N, eps, seed):
    A, _ = hippo_legs(N)
    Lambda, V = ptd(A, eps, seed=seed, iters=40)
    assert (Lambda.real < 0).all()
    E = _perturbation(A, Lambda, V)
    norm_A = torch.linalg.matrix_norm(A, 2)
    assert torch.linalg.matrix_norm(E, 2) <= eps * norm_A * (1 + 1e-9)
    assert torch.linalg.matrix_norm(E) <= 1.5 * torch.linalg.matrix_norm(E, 2)


def test_start_is_checked():
    A, _ = hippo_legs(4)
    with pytest.raises(ValueError, match="start"):
        ptd(A, 0.1, start=torch.ones(3))
