"""The ops as torch.library custom ops: torch's own op checks, symbolic shapes, and every op run
through its custom op under the Triton interpreter."""

from __future__ import annotations

import os

import pytest
import torch

from seqlayers.ops import dispatch, linear_scan, long_conv, vandermonde
from seqlayers.ops.conv import dft_blocks, monarch_long_conv, naive_long_conv

from ..helpers import rel_rms

OPS = torch.ops.seqlayers


def _conv_args(B=2, H=3, L=17, Lk=11):
    return torch.randn(B, H, L), torch.randn(H, Lk), torch.randn(H)


def _scan_args(dtype=torch.complex64):
    return (0.9 * torch.randn(2, 13, 4, dtype=dtype), torch.randn(2, 13, 4, dtype=dtype),
            torch.randn(2, 4, dtype=dtype))


def _vandermonde_args():
    z = torch.exp(torch.complex(-0.1 * torch.rand(3, 5), torch.randn(3, 5)))
    return torch.randn(2, 3, 5, dtype=torch.cfloat), z


@pytest.mark.parametrize("backend", ["torch", "naive"])
def test_opcheck_every_op(backend):
    """Schemas, fake kernels (strides, dtypes), and the ops under AOT dispatch, as torch checks them."""
    u, k, D = _conv_args()
    torch.library.opcheck(OPS.long_conv.default, (u, k, D, backend))
    torch.library.opcheck(OPS.long_conv_backward.default, (torch.randn_like(u), u, k, D, backend,
                                                           [True, True, True]))
    a, b, h0 = _scan_args()
    h = linear_scan(a, b, h0)
    torch.library.opcheck(OPS.linear_scan.default, (a, b, h0, backend))
    torch.library.opcheck(OPS.linear_scan_backward.default, (torch.randn_like(b), a, b, h0, h, backend,
                                                             [True, False, True]))
    v, z = _vandermonde_args()
    torch.library.opcheck(OPS.vandermonde.default, (v, z, 9, backend))
    torch.library.opcheck(OPS.vandermonde_backward.default, (torch.randn(2, 3, 9), v, z, 9, backend,
                                                             [True, True]))


def test_opcheck_monarch():
    u, k, D = _conv_args(L=20, Lk=20)
    _, _, f1, f2 = dft_blocks(64)
    blocks = (f1, f2, f1.conj().resolve_conj(), f2.conj().resolve_conj())
    torch.library.opcheck(OPS.monarch_long_conv.default, (u, k, D, *blocks))


def test_complex_ops_compiled_equal_eager():
    """Compiled code enters custom ops with the Conjugate key excluded (torch 2.13): the
    implementations must still conjugate (see ops.autograd.kernel)."""
    a, b, h0 = (t.requires_grad_() for t in _scan_args())
    v, z = (t.requires_grad_() for t in _vandermonde_args())

    def f(a, b, h0, v, z):
        return linear_scan(a, b, h0).abs().sum() + vandermonde(v, z, 9).square().sum()

    eager = torch.autograd.grad(f(a, b, h0, v, z), (a, b, h0, v, z))
    compiled = torch.autograd.grad(torch.compile(f, fullgraph=True, backend="aot_eager")(a, b, h0, v, z),
                                   (a, b, h0, v, z))
    for x, y in zip(compiled, eager):
        assert rel_rms(x, y) <= 1e-6


def test_fake_kernels_take_a_symbolic_length():
    """export traces the fake kernels with L symbolic; the program then runs at any length."""

    class Model(torch.nn.Module):
        def forward(self, u, v, z):
            L = u.shape[-1]
            k = vandermonde(v, z, L)                       # (3, L)
            a = torch.full((1, L, 3), 0.5) + 0 * u.transpose(1, 2)[:1]
            return long_conv(u, k, None) + linear_scan(a, u.transpose(1, 2)[:1]).transpose(1, 2)

    _, z = _vandermonde_args()
    v = torch.randn(3, 5, dtype=torch.cfloat)
    length = torch.export.Dim("L", min=2, max=200)
    program = torch.export.export(Model(), (torch.randn(2, 3, 40), v, z), dynamic_shapes={"u": {2: length},
                                                                                          "v": None, "z": None})
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"seqlayers.long_conv.default", "seqlayers.vandermonde.default",
            "seqlayers.linear_scan.default"} <= targets
    for L in (7, 101):
        u = torch.randn(2, 3, L)
        torch.testing.assert_close(program.module()(u, v, z), Model()(u, v, z))


def test_empty_batch_on_every_op():
    u, k, D = _conv_args(B=0)
    for backend in ("torch", "naive"):
        u.requires_grad_()
        y = long_conv(u, k, D, backend=backend)
        assert y.shape == (0, 3, 17)
        (du,) = torch.autograd.grad(y.sum(), u)
        assert du.shape == u.shape
    a, b, _ = (t[:0] for t in _scan_args())
    assert linear_scan(a, b).shape == (0, 13, 4)


@pytest.mark.triton
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs the Triton kernels interpreted")
@pytest.mark.parametrize("backend", ["fft", "butterfly"])
def test_triton_conv_through_the_custom_op(backend):
    pytest.importorskip("triton")
    u, k, D = _conv_args(B=3, L=40, Lk=40)
    y = OPS.long_conv.default(u, k, D, backend)
    assert rel_rms(y, naive_long_conv(u, k, D)) <= 1e-5
    assert long_conv(u[:0], k, D, backend=backend).shape == (0, 3, 40)  # empty batch, no launch
    program = torch.export.export(_Conv(backend), (u,), dynamic_shapes={"u": {2: torch.export.Dim("L", max=64)}})
    for L in (17, 64):
        x = torch.randn(3, 3, L)
        assert rel_rms(program.module()(x), naive_long_conv(x, torch.ones(3, L), None)) <= 1e-5


@pytest.mark.triton
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs the Triton kernels interpreted")
def test_triton_scan_through_the_custom_op():
    pytest.importorskip("triton")
    a, b, h0 = _scan_args()
    assert rel_rms(OPS.linear_scan.default(a, b, h0, "triton"), linear_scan(a, b, h0, backend="naive")) <= 1e-5


class _Conv(torch.nn.Module):
    def __init__(self, backend):
        super().__init__()
        self.backend = backend

    def forward(self, u):
        k = torch.ones(u.shape[1], 1).expand(u.shape[1], u.shape[-1]).contiguous()
        return long_conv(u, k, None, backend=self.backend)


@pytest.mark.triton
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs the Triton kernels interpreted")
@pytest.mark.parametrize("backend", ["fft", "butterfly"])
def test_one_call_is_validated_once_and_planned_once(backend, monkeypatch):
    """Forward and backward of one call: the arguments are checked at the entry only, and the
    backend plans the call once (the backward reuses the plan)."""
    import importlib

    conv = importlib.import_module("seqlayers.ops.conv")
    module = importlib.import_module(f"seqlayers.ops.conv.{backend}")
    checks = []
    original = conv.check_long_conv_args
    monkeypatch.setattr(conv, "check_long_conv_args", lambda *args: checks.append(1) or original(*args))
    dispatch.clear_plans()
    u, k, D = (t.requires_grad_() for t in _conv_args(L=30, Lk=30))
    long_conv(u, k, D, backend=backend).square().sum().backward()
    assert len(checks) == 1
    assert module.plan.cache_info().misses == 1 and module.plan.cache_info().hits >= 1
    assert u.grad is not None and k.grad is not None and D.grad is not None


def test_monarch_backward_equals_autograd_with_any_blocks():
    """The written-out backward of the learned butterfly against autograd through its reference,
    with random (trained-like) blocks, in float64."""
    from seqlayers.ops.conv import monarch

    u, k, D = (t.double().requires_grad_() for t in _conv_args(L=20, Lk=13))
    blocks = [torch.randn(n, n, dtype=torch.complex128, requires_grad=True) for n in (4, 8, 4, 8)]
    y = monarch.monarch_long_conv(u, k, D, blocks[:2], blocks[2:])
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [u, k, D, *blocks], g)
    want = torch.autograd.grad(monarch._monarch_reference(u, k, D, *blocks), [u, k, D, *blocks], g)
    for a, b in zip(got, want):
        assert rel_rms(a, b) <= 1e-12


def test_ops_under_a_dispatch_mode():
    """FlopCounterMode (a TorchDispatchMode) around forward and backward of every op and backend."""
    from torch.utils.flop_counter import FlopCounterMode

    u, k, D = (t.requires_grad_() for t in _conv_args(L=20, Lk=20))
    a, b, h0 = (t.requires_grad_() for t in _scan_args())
    v, z = (t.requires_grad_() for t in _vandermonde_args())
    _, _, f1, f2 = dft_blocks(64)
    for backend in ("torch", "naive"):
        with FlopCounterMode(display=False):
            loss = (long_conv(u, k, D, backend=backend).sum() + linear_scan(a, b, h0, backend=backend).abs().sum()
                    + vandermonde(v, z, 9, backend=backend).sum()
                    + monarch_long_conv(u, k, D, (f1, f2), (f1.conj(), f2.conj())).sum())
            loss.backward()


def test_monarch_grads_through_the_custom_op():
    u, k, D = (t.requires_grad_() for t in _conv_args(L=20, Lk=20))
    n1, n2, f1, f2 = dft_blocks(64)
    blocks = [b.clone().requires_grad_() for b in (f1, f2, f1.conj().resolve_conj(), f2.conj().resolve_conj())]
    y = monarch_long_conv(u, k, D, blocks[:2], blocks[2:])
    assert rel_rms(y, naive_long_conv(u, k, D)) <= 1e-5
    grads = torch.autograd.grad(y.square().sum(), [u, k, D, *blocks])
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
