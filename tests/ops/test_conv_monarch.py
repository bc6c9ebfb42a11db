"""monarch_long_conv with the exact DFT blocks against the naive oracle; gradients of the blocks;
dft_blocks and monarch_size; bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlayers.ops.conv import naive_long_conv
from seqlayers.ops.conv.monarch import dft_blocks, monarch_long_conv, monarch_size
from tests.helpers import REL_RMS_TOL, rel_rms

from .conv_checks import check_against_oracle, make_inputs

LENGTHS = [1, 15, 100, 257, 1000, 1009]  # 1009 is prime


def exact_blocks(L, Lk, dtype=torch.complex64):
    """Forward and inverse DFT blocks of the smallest power-of-two size >= L + Lk - 1."""
    _, _, f1, f2 = dft_blocks(1 << (L + Lk - 2).bit_length(), dtype=dtype)
    return (f1, f2), (f1.conj(), f2.conj())


def _grads(fn, u, k, D, dy):
    y = fn(u, k, D)
    (y * dy).sum().backward()
    grads = [t.grad.clone() for t in (u, k, D)]
    for t in (u, k, D):
        t.grad = None
    return y.detach(), grads


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("B", [1, 3])
def test_exact_blocks_match_naive_fp32(L, B):
    H = 5
    for Lk in sorted({1, max(1, L // 3), L}):
        u = torch.randn(B, H, L, requires_grad=True)
        k = torch.randn(H, Lk, requires_grad=True)
        D = torch.randn(H, requires_grad=True)
        dy = torch.randn(B, H, L)
        fwd, inv = exact_blocks(L, Lk)
        y_ref, g_ref = _grads(naive_long_conv, u, k, D, dy)
        y, g = _grads(lambda *a: monarch_long_conv(*a, fwd, inv), u, k, D, dy)
        assert y.dtype == torch.float32
        assert rel_rms(y, y_ref) < REL_RMS_TOL[torch.float32], (L, Lk)
        for got, want, name in zip(g, g_ref, "ukD"):
            assert rel_rms(got, want) < REL_RMS_TOL[torch.float32], (L, Lk, name)


def test_any_block_sizes_and_not_circular():
    """N1, N2 need not be powers of two (15 = 3 x 5); a tap at lag L-1 does not wrap around."""
    L = 8
    f1, f2 = torch.fft.fft(torch.eye(3, dtype=torch.cfloat)), torch.fft.fft(torch.eye(5, dtype=torch.cfloat))
    u = torch.zeros(1, 1, L)
    u[..., -1] = 1.0
    k = torch.zeros(1, L)
    k[0, 1] = 1.0
    y = monarch_long_conv(u, k, None, (f1, f2), (f1.conj(), f2.conj()))
    assert y.abs().max() < 1e-6  # a circular convolution would put 1.0 at t = 0
    u, k = torch.randn(2, 3, L), torch.randn(3, L)
    y = monarch_long_conv(u, k, None, (f1, f2), (f1.conj(), f2.conj()))
    assert rel_rms(y, naive_long_conv(u, k)) < REL_RMS_TOL[torch.float32]


@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 3),
    H=st.integers(1, 5),
    L=st.integers(1, 200),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes_fp64(B, H, L, frac, seed):
    Lk = max(1, round(frac * L))
    u, k, D, _ = make_inputs(B, H, L, Lk, torch.float64, torch.float64, seed=seed)
    D = D.double()
    y = monarch_long_conv(u, k, D, *exact_blocks(L, Lk, torch.complex128))
    assert y.dtype == torch.float64
    assert rel_rms(y, naive_long_conv(u, k, D)) < REL_RMS_TOL[torch.float64]


def test_gradcheck_fp64_including_blocks():
    """Every input, the four blocks included (as real views), in double precision."""
    (f1, f2), (g1, g2) = exact_blocks(5, 3, torch.complex128)
    blocks = [torch.view_as_real(b.resolve_conj()).clone().requires_grad_() for b in (f1, f2, g1, g2)]
    u = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    D = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def fn(u, k, D, f1, f2, g1, g2):
        f1, f2, g1, g2 = map(torch.view_as_complex, (f1, f2, g1, g2))
        return monarch_long_conv(u, k, D, (f1, f2), (g1, g2))

    assert torch.autograd.gradcheck(fn, (u, k, D, *blocks))


def test_blocks_get_gradients_and_change_the_result():
    (f1, f2), (g1, g2) = exact_blocks(100, 100)
    blocks = [b.resolve_conj().clone().requires_grad_() for b in (f1, f2, g1, g2)]
    u, k = torch.randn(2, 4, 100), torch.randn(4, 100)
    y = monarch_long_conv(u, k, None, blocks[:2], blocks[2:])
    y.square().sum().backward()
    for name, b in zip(("F1", "F2", "G1", "G2"), blocks):
        assert b.grad is not None and b.grad.abs().sum() > 0, name
    with torch.no_grad():
        blocks[0][1, 2] += 0.1
        assert rel_rms(monarch_long_conv(u, k, None, blocks[:2], blocks[2:]), y) > 1e-3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_returns_its_dtype(dtype):
    u, k, D = torch.randn(2, 4, 300).to(dtype), torch.randn(4, 300), torch.randn(4)
    y = monarch_long_conv(u, k, D, *exact_blocks(300, 300))
    assert y.dtype == dtype
    assert rel_rms(y, naive_long_conv(u.float(), k, D)) < REL_RMS_TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("B, L, Lk", [(1, 257, 257), (3, 1000, 301)])
def test_forward_and_every_gradient_match_the_oracle(dtype, B, L, Lk):
    """y, du, dk, dD against the float32 naive oracle, each within its dtype's tolerance."""
    blocks = exact_blocks(L, Lk)
    check_against_oracle(lambda u, k, D: monarch_long_conv(u, k, D, *blocks), "cpu",
                         *make_inputs(B, 3, L, Lk, dtype=dtype))


def test_non_contiguous_inputs():
    u = torch.randn(3, 40, 6).transpose(1, 2)
    k = torch.randn(40, 6).t()[:, :5]
    y = monarch_long_conv(u, k, None, *exact_blocks(40, 5))
    assert rel_rms(y, naive_long_conv(u.contiguous(), k.contiguous())) < REL_RMS_TOL[torch.float32]


@pytest.mark.parametrize("n_fft", [1, 2, 8, 256, 2048])
def test_dft_blocks_are_the_dft(n_fft):
    n1, n2, f1, f2 = dft_blocks(n_fft, dtype=torch.complex128)
    assert n1 * n2 == n_fft and n1 <= n2 <= 2 * n1
    for n, block in ((n1, f1), (n2, f2)):
        torch.testing.assert_close(block, torch.fft.fft(torch.eye(n, dtype=torch.complex128)))


def test_monarch_size():
    assert [monarch_size(n) for n in (1, 2, 3, 255, 256, 257, 2047, 32767)] == [
        (1, 1), (1, 2), (2, 2), (16, 16), (16, 16), (16, 32), (32, 64), (128, 256)
    ]
    for n in range(1, 300):
        n1, n2 = monarch_size(n)
        assert n1 * n2 >= n > n1 * n2 // 2 and n1 <= n2 == 2 ** round(math.log2(n2))


@pytest.mark.parametrize("bad", [0, 3, 12, True, 2.0])
def test_dft_blocks_bad_size(bad):
    with pytest.raises(ValueError, match=rf"n_fft must be a power of two >= 1, got {bad!r}"):
        dft_blocks(bad)
    with pytest.raises(ValueError, match="dtype must be complex"):
        dft_blocks(8, dtype=torch.float32)


F4, F8 = torch.fft.fft(torch.eye(4, dtype=torch.cfloat)), torch.fft.fft(torch.eye(8, dtype=torch.cfloat))


@pytest.mark.parametrize(
    "u,k,fwd,inv,err,match",
    [
        # the checks shared with long_conv
        (torch.randn(2, 3), torch.randn(3, 2), (F4, F8), (F4, F8), ValueError, r"\(B, H, L\)"),
        (torch.randn(2, 3, 10), torch.randn(4, 5), (F4, F8), (F4, F8), ValueError, r"\(H, Lk\) = \(3, Lk\)"),
        (torch.randn(2, 3, 10), torch.randn(3, 11), (F4, F8), (F4, F8), ValueError, "Lk <= L = 10"),
        # the blocks
        (torch.randn(2, 3, 10), torch.randn(3, 5), F4, (F4, F8), TypeError, "fwd_blocks must be a pair"),
        (torch.randn(2, 3, 10), torch.randn(3, 5), (F4.real, F8), (F4, F8), TypeError,
         r"fwd_blocks\[0\] must be a complex tensor, got torch.float32"),
        (torch.randn(2, 3, 10), torch.randn(3, 5), (F4, F8[:4]), (F4, F8), ValueError,
         r"fwd_blocks\[1\] must be a square block \(N2, N2\), got \(4, 8\)"),
        (torch.randn(2, 3, 10), torch.randn(3, 5), (F4, F8), (F8, F4), ValueError,
         r"inv_blocks must have the shapes of fwd_blocks \(\(4, 4\), \(8, 8\)\), got \(\(8, 8\), \(4, 4\)\)"),
        (torch.randn(2, 3, 30), torch.randn(3, 5), (F4, F8), (F4, F8), ValueError,
         r"N = N1 \* N2 = 4 \* 8 = 32 must be >= L \+ Lk - 1 = 34"),
    ],
)
def test_bad_input(u, k, fwd, inv, err, match):
    with pytest.raises(err, match=match):
        monarch_long_conv(u, k, None, fwd, inv)
