"""vandermonde: the blocked backend (custom backward) against the materializing oracle."""

import pytest
import torch

from seqlayers.ops import vandermonde
from seqlayers.ops.vandermonde import blocked
from seqlayers.ops.vandermonde import naive_vandermonde


def _vz(shape_v, shape_z, dtype=torch.complex128, requires_grad=True):
    v = torch.randn(*shape_v, dtype=dtype)
    z = torch.exp(torch.complex(-torch.rand(*shape_z) * 0.2, torch.randn(*shape_z))).to(dtype)
    return v.requires_grad_(requires_grad), z.requires_grad_(requires_grad)


def test_direct_formula():
    v, z = _vz((3, 4), (3, 4), requires_grad=False)
    L = 7
    expected = torch.stack([2 * (v * z**l).sum(-1).real for l in range(L)], -1)
    torch.testing.assert_close(vandermonde(v, z, L, backend="naive"), expected)
    torch.testing.assert_close(vandermonde(v, z, L, backend="torch"), expected)


@pytest.mark.parametrize("L", [1, 2, 3, 15, 16, 17, 101, 257])
@pytest.mark.parametrize("lead", [(), (2,)])
@pytest.mark.parametrize("row_block", [1, 1 << 22])
def test_blocked_matches_naive_with_grads(L, lead, row_block, monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK_ELEMENTS", row_block)  # 1: one row per block
    v, z = _vz((*lead, 3, 5), (3, 5))
    dK = torch.randn(*lead, 3, L, dtype=torch.float64)
    out = {}
    for backend in ("naive", "torch"):
        K = vandermonde(v, z, L, backend=backend)
        (K * dK).sum().backward()
        out[backend] = (K.detach(), v.grad.clone(), z.grad.clone())
        v.grad = z.grad = None
    for got, want in zip(out["torch"], out["naive"]):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("L", [1, 2, 9, 10])
def test_gradcheck_complex128(L):
    v, z = _vz((2, 3), (2, 3))
    assert torch.autograd.gradcheck(lambda v, z: vandermonde(v, z, L, backend="torch"), (v, z))


def test_complex64_output_is_float32():
    v, z = _vz((2, 3), (2, 3), dtype=torch.complex64, requires_grad=False)
    K = vandermonde(v, z, 50)
    assert K.dtype == torch.float32
    torch.testing.assert_close(K, naive_vandermonde(v, z, 50), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "v,z,L,err,match",
    [
        (torch.randn(3, 4), torch.randn(3, 4, dtype=torch.cfloat), 5, TypeError, "v must be complex"),
        (torch.randn(3, 4, dtype=torch.cfloat), torch.randn(3, 5, dtype=torch.cfloat), 5, ValueError, "trailing dims"),
        (torch.randn(3, 4, dtype=torch.cfloat), torch.randn(3, 4, dtype=torch.cdouble), 5, TypeError, "share a dtype"),
        (torch.randn(3, 4, dtype=torch.cfloat), torch.randn(3, 4, dtype=torch.cfloat), 0, ValueError, "positive int"),
    ],
)
def test_bad_input(v, z, L, err, match):
    with pytest.raises(err, match=match):
        vandermonde(v, z, L)
