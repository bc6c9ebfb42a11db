"""Perturb-then-diagonalize: an exact eigendecomposition of a small perturbation of A."""

import pytest
import torch

from seqlayers.init import hippo_legs, ptd, s5_block_init

N_TEST = 16
EPS = 0.05


@pytest.fixture(scope="module")
def legs_ptd():
    A, _ = hippo_legs(N_TEST)
    return A, *ptd(A, EPS)


def test_exact_eigendecomposition_of_small_perturbation(legs_ptd):
    A, Lambda, V = legs_ptd
    assert Lambda.dtype == V.dtype == torch.complex128 and V.shape == (N_TEST, N_TEST)
    torch.testing.assert_close(torch.linalg.vector_norm(V, dim=0), torch.ones(N_TEST, dtype=torch.float64))
    E = V @ torch.diag(Lambda) @ torch.linalg.inv(V) - A
    residual = (A + E) @ V - V @ torch.diag(Lambda)
    assert residual.abs().max() < 1e-9 * torch.linalg.matrix_norm(A, 2)
    assert torch.linalg.matrix_norm(E, 2) <= EPS * torch.linalg.matrix_norm(A, 2) * (1 + 1e-9)


def test_condition_far_below_unperturbed(legs_ptd):
    A, _, V = legs_ptd
    _, V0 = torch.linalg.eig(A.to(torch.complex128))
    cond0 = torch.linalg.cond(V0 / torch.linalg.vector_norm(V0, dim=0))
    cond = torch.linalg.cond(V)
    assert cond0 > 1e9
    assert cond < 20


def test_default_meets_the_release_at_n64():
    """HiPPO-LegS N = 64 as the S5 initialization calls ptd (default eps = 0.034, the released size;
    start along the rank-one part; conjugate pairs): cond(V) at or below the released
    perturbation's 9.17, no unstable mode, and E nearly rank one."""
    from seqlayers.init import hippo_legs_nplr

    A, _ = hippo_legs(64)
    _, p, _ = hippo_legs_nplr(64)
    Lambda, V = ptd(A, start=p, pairs=True)
    assert torch.linalg.cond(V) <= 9.17
    assert (Lambda.real < 0).all()
    E = V @ torch.diag(Lambda) @ torch.linalg.inv(V) - A
    norm_A = torch.linalg.matrix_norm(A, 2)
    assert torch.linalg.matrix_norm(E, 2) <= 0.034 * norm_A * (1 + 1e-9)
    assert torch.linalg.matrix_norm(E) <= 1.5 * torch.linalg.matrix_norm(E, 2)


def test_deterministic_and_cached(legs_ptd):
    A, Lambda, V = legs_ptd
    from seqlayers.init.ptd import _ptd_cached

    _ptd_cached.cache_clear()
    Lambda2, V2 = ptd(A.clone(), EPS)
    assert torch.equal(Lambda2, Lambda) and torch.equal(V2, V)  # recomputed: deterministic
    assert _ptd_cached.cache_info().currsize == 1
    V2.zero_()  # callers get copies: the cache is not corrupted
    assert torch.equal(ptd(A, EPS)[1], V)
    assert _ptd_cached.cache_info().hits >= 1


def test_objective_option():
    A, _ = hippo_legs(6)
    Lambda, V = ptd(A, 0.1, iters=20, objective="cond2")
    assert torch.linalg.cond(V) < 50 and not torch.equal(Lambda, ptd(A, 0.1, iters=20)[0])
    with pytest.raises(ValueError, match="objective"):
        ptd(A, 0.1, objective="frobenius")


def test_seed_changes_result():
    A, _ = hippo_legs(6)
    assert not torch.equal(ptd(A, 0.1, seed=0)[0], ptd(A, 0.1, seed=1)[0])


def test_restarts_keep_the_best():
    A, _ = hippo_legs(6)
    cond1 = torch.linalg.cond(ptd(A, 0.05, iters=20)[1])
    cond3 = torch.linalg.cond(ptd(A, 0.05, iters=20, restarts=3)[1])
    assert cond3 <= cond1 * (1 + 1e-9)
    with pytest.raises(ValueError, match="restarts"):
        ptd(A, 0.05, restarts=0)


def test_complex_input_and_inference_mode():
    A, _ = hippo_legs(6)
    with torch.inference_mode():
        Lambda, V = ptd(A.to(torch.complex64), 0.1)
    assert torch.linalg.cond(V) < 50


@pytest.mark.parametrize("eps", [0, -0.1, 1, 1.5, float("nan"), True, "0.1"])
def test_bad_eps(eps):
    A, _ = hippo_legs(4)
    with pytest.raises(ValueError, match="eps"):
        ptd(A, eps)


@pytest.mark.parametrize("A", [torch.zeros(3, 4), torch.zeros(4), torch.zeros(2, 3, 3), torch.zeros(0, 0)])
def test_bad_shape(A):
    with pytest.raises(ValueError, match="square"):
        ptd(A, 0.1)


def test_bad_dtype_and_values():
    with pytest.raises(ValueError, match="floating"):
        ptd(torch.zeros(3, 3, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="finite"):
        ptd(torch.full((3, 3), float("inf")), 0.1)


@pytest.mark.parametrize("init", ["legs", "ptd", "lin", "inv"])
def test_s5_block_init(init):
    Lambda, V, Vinv = s5_block_init(12, 3, init, eps=0.1)
    assert Lambda.shape == (12,) and V.shape == Vinv.shape == (12, 12)
    torch.testing.assert_close(V @ Vinv, torch.eye(12, dtype=torch.complex128), rtol=0, atol=1e-9)
    assert (Lambda.real < 0).all()
    torch.testing.assert_close(Lambda[:4], Lambda[4:8])
    assert (V[:4, 4:] == 0).all()  # block-diagonal
    # closed under conjugation (ptd: the perturbation is real)
    torch.testing.assert_close(torch.sort(Lambda.imag).values, torch.sort(-Lambda.imag).values)


def test_s5_block_init_legs_is_normal_part_and_ptd_is_stable_as_is():
    from seqlayers.init import hippo_legs_nplr, legs_normal_diagonal

    Lambda, V, _ = s5_block_init(8, 1, "legs")
    L0, V0 = legs_normal_diagonal(8)
    assert torch.equal(Lambda, L0) and torch.equal(V, V0)
    A, _ = hippo_legs(8)
    _, p, _ = hippo_legs_nplr(8)
    raw, _ = ptd(A, 0.1, start=p)
    Lp, _, _ = s5_block_init(8, 1, "ptd", eps=0.1)
    assert (raw.real < 0).all()  # nothing to reflect: PTD creates no unstable mode
    torch.testing.assert_close(Lp, raw)


def test_s5_block_init_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        s5_block_init(10, 3)
    with pytest.raises(ValueError, match="unknown init"):
        s5_block_init(8, 2, "hippo")
    with pytest.raises(ValueError, match="positive int"):
        s5_block_init(8, 0)
