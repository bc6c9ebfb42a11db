"""long_conv: the "torch" backend against the naive oracle, properties, and bad input."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from seqlayers.ops import long_conv
from seqlayers.ops.conv import naive_long_conv, next_fast_len
from tests.helpers import REL_RMS_TOL, rel_rms

from .conv_checks import make_inputs

LENGTHS = [1, 2, 15, 63, 64, 257, 1000, 1009]  # 1009 is prime


def _inputs(B, H, L, Lk, dtype=torch.float32, requires_grad=True):
    u = torch.randn(B, H, L, dtype=dtype, requires_grad=requires_grad)
    k = torch.randn(H, Lk, dtype=dtype, requires_grad=requires_grad)
    D = torch.randn(H, dtype=dtype, requires_grad=requires_grad)
    return u, k, D


def _grads(fn, u, k, D, dy):
    y = fn(u, k, D)
    (y * dy).sum().backward()
    grads = [t.grad.clone() for t in (u, k, D)]
    for t in (u, k, D):
        t.grad = None
    return y.detach(), grads


def test_direct_formula_tiny():
    u = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    k = torch.tensor([[1.0, 10.0]])
    D = torch.tensor([100.0])
    expected = torch.tensor([[[1.0 + 100, 2 + 10 + 200, 3 + 20 + 300, 4 + 30 + 400]]])
    for backend in ("naive", "torch"):
        torch.testing.assert_close(long_conv(u, k, D, backend=backend), expected)


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("B", [1, 3])
def test_torch_matches_naive_fp32(L, B):
    H = 5
    for Lk in sorted({1, max(1, L // 3), L}):
        u, k, D = _inputs(B, H, L, Lk)
        dy = torch.randn(B, H, L)
        y_ref, g_ref = _grads(naive_long_conv, u, k, D, dy)
        y, g = _grads(lambda *a: long_conv(*a, backend="torch"), u, k, D, dy)
        assert y.dtype == torch.float32
        assert rel_rms(y, y_ref) < REL_RMS_TOL[torch.float32]
        for got, want, name in zip(g, g_ref, "ukD"):
            assert rel_rms(got, want) < REL_RMS_TOL[torch.float32], name


@pytest.mark.parametrize("L,Lk", [(1, 1), (7, 3), (16, 16), (31, 10)])
def test_gradcheck_fp64(L, Lk):
    u, k, D = _inputs(2, 3, L, Lk, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *a: long_conv(*a, backend="torch"), (u, k, D))
    assert torch.autograd.gradcheck(lambda *a: long_conv(*a, backend="naive"), (u, k, D))


def test_fp64_tight():
    u, k, D = _inputs(2, 3, 257, 100, dtype=torch.float64, requires_grad=False)
    y = long_conv(u, k, D, backend="torch")
    assert y.dtype == torch.float64
    assert rel_rms(y, naive_long_conv(u, k, D)) < REL_RMS_TOL[torch.float64]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input(dtype):
    u, k, D = _inputs(2, 4, 300, 300, requires_grad=False)
    y = long_conv(u.to(dtype), k, D, backend="torch")
    assert y.dtype == dtype
    # the error is the rounding of the input and output, not of the accumulation
    assert rel_rms(y, naive_long_conv(u.to(dtype).float(), k, D)) < REL_RMS_TOL[dtype]


def test_no_skip_term_and_non_contiguous():
    u = torch.randn(3, 40, 6).transpose(1, 2)  # (B, H, L) view with strides
    k = torch.randn(40, 6).t()[:, :5]
    assert not u.is_contiguous() and not k.is_contiguous()
    torch.testing.assert_close(long_conv(u, k), naive_long_conv(u.contiguous(), k.contiguous()))


def test_not_circular():
    """A kernel tap at lag L-1 must not wrap the end of u onto its start."""
    L = 8
    u = torch.zeros(1, 1, L)
    u[..., -1] = 1.0
    k = torch.zeros(1, L)
    k[0, 1] = 1.0
    y = long_conv(u, k, backend="torch")
    assert y.abs().max() < 1e-6  # a circular convolution would put 1.0 at t = 0


@given(
    B=st.integers(1, 3),
    H=st.integers(1, 5),
    L=st.integers(1, 200),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes(B, H, L, frac, seed):
    u, k, _, _ = make_inputs(B, H, L, max(1, round(frac * L)), torch.float64, torch.float64, seed=seed)
    torch.testing.assert_close(long_conv(u, k, backend="torch"), naive_long_conv(u, k))


@given(L=st.integers(2, 120), t=st.integers(0, 119), seed=st.integers(0, 2**16))
def test_causality(L, t, seed):
    t = t % L
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(2, 3, L, generator=g)
    k = torch.randn(3, L, generator=g)
    v = u.clone()
    v[..., t:] += torch.randn(2, 3, L - t, generator=g)
    y_u, y_v = long_conv(u, k), long_conv(v, k)
    torch.testing.assert_close(y_u[..., :t], y_v[..., :t])


@given(L=st.integers(2, 100), shift=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_linearity_and_shift_equivariance(L, shift, seed):
    shift = shift % L
    g = torch.Generator().manual_seed(seed)
    u1, u2 = torch.randn(2, 1, 2, L, generator=g, dtype=torch.float64)
    k = torch.randn(2, L, generator=g, dtype=torch.float64)
    torch.testing.assert_close(long_conv(2 * u1 - 3 * u2, k), 2 * long_conv(u1, k) - 3 * long_conv(u2, k))
    shifted = torch.nn.functional.pad(u1, (shift, 0))[..., :L]
    torch.testing.assert_close(long_conv(shifted, k)[..., shift:], long_conv(u1, k)[..., : L - shift])


def test_next_fast_len():
    assert [next_fast_len(n) for n in (1, 2, 11, 13, 17, 97, 1025)] == [1, 2, 12, 14, 18, 98, 1029]
    for n in range(1, 300):
        m = next_fast_len(n)
        assert m >= n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        assert m == 1


@pytest.mark.parametrize(
    "u,k,D,err,match",
    [
        (torch.randn(2, 3), torch.randn(3, 2), None, ValueError, r"\(B, H, L\)"),
        (torch.randn(2, 3, 10), torch.randn(4, 5), None, ValueError, r"\(H, Lk\) = \(3, Lk\)"),
        (torch.randn(2, 3, 10), torch.randn(3), None, ValueError, r"\(H, Lk\)"),
        (torch.randn(2, 3, 10), torch.randn(3, 11), None, ValueError, "Lk <= L = 10"),
        (torch.randn(2, 3, 10), torch.randn(3, 0), None, ValueError, "1 <= Lk"),
        (torch.randn(2, 3, 0), torch.randn(3, 1), None, ValueError, "L >= 1"),
        (torch.randn(2, 3, 10), torch.randn(3, 5), torch.randn(4), ValueError, r"D must have shape \(H,\) = \(3,\)"),
        (torch.randn(2, 3, 10), torch.randn(3, 5), torch.randn(3, 1), ValueError, "D must have shape"),
        (torch.randint(0, 5, (2, 3, 10)), torch.randn(3, 5), None, TypeError, "u must be a real floating"),
        (torch.randn(2, 3, 10, dtype=torch.cfloat), torch.randn(3, 5), None, TypeError, "complex64"),
        (torch.randn(2, 3, 10), torch.randn(3, 5, dtype=torch.cfloat), None, TypeError, "k must be"),
        ([1.0], torch.randn(3, 5), None, TypeError, "u must be a torch.Tensor"),
    ],
)
def test_bad_input(u, k, D, err, match):
    with pytest.raises(err, match=match):
        long_conv(u, k, D)
