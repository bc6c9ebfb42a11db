"""The ``"butterfly"`` backend compiled on a CUDA GPU at real sizes (skipped without one).

Run with the interpreter off: ``TRITON_INTERPRET=0 pytest -m gpu tests/ops``. Oracles: the naive
direct convolution in float64 for the small shapes, float64 ``torch.fft`` (exact to about
1e-15) at the benchmark's B=16, H=768. Accuracy targets: float32 relative RMS error <= 1e-5
with the default ``"ieee"`` dots; bfloat16 2e-2 and float16 4e-3 with the default ``"tf32"``
dots (TF32 rounding adds about 5e-4, emulated on the CPU in test_conv_butterfly.py).
"""

from __future__ import annotations

import os

import pytest
import torch

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)
if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("GPU tests run compiled: set TRITON_INTERPRET=0", allow_module_level=True)
pytest.importorskip("triton")

from seqlayers.ops import long_conv  # noqa: E402
from seqlayers.ops.conv import butterfly, fft_long_conv, naive_long_conv  # noqa: E402
from seqlayers.ops.dispatch import select  # noqa: E402

from ..helpers import REL_RMS_TOL, rel_rms  # noqa: E402

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32():
    """Keep the oracles' float32 matmuls and convolutions exact."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def make_inputs(B, H, L, Lk, dtype=torch.float32, seed=0):
    g = torch.Generator(device=CUDA).manual_seed(seed)
    u = torch.randn(B, H, L, device=CUDA, generator=g).to(dtype)
    k = torch.randn(H, Lk, device=CUDA, generator=g) / Lk**0.5
    D = torch.randn(H, device=CUDA, generator=g)
    dy = torch.randn(B, H, L, device=CUDA, generator=g).to(dtype)
    return u, k, D, dy


def forward_and_grads(fn, u, k, D, dy):
    inputs = [t.detach().clone().requires_grad_() for t in (u, k, D)]
    y = fn(*inputs)
    return (y.detach(), *torch.autograd.grad(y, inputs, dy))


def compare(u, k, D, dy, oracle):
    got = forward_and_grads(butterfly.butterfly_long_conv, u, k, D, dy)
    want = forward_and_grads(oracle, *(t.double() for t in (u, k, D, dy)))
    for name, a, b in zip(("y", "du", "dk", "dD"), got, want):
        err, tol = rel_rms(a, b), REL_RMS_TOL[a.dtype]
        assert err <= tol, f"{name}: relative RMS error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("L, Lk", [(1, 1), (257, 100), (512, 512), (1000, 1000), (997, 997),
                                   (2048, 2048), (3001, 1096)])
@pytest.mark.parametrize("B", [1, 3])
def test_matches_naive(B, L, Lk):
    compare(*make_inputs(B, 20, L, Lk), naive_long_conv)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("L", [1024, 2048])
def test_half_precision_with_tf32_dots(dtype, L):
    compare(*make_inputs(16, 768, L, L, dtype=dtype), fft_long_conv)


@pytest.mark.parametrize("L", [256, 1024, 2048])
def test_target_accuracy_at_benchmark_shape(L):
    """fp32 forward and gradients within 1e-5 relative RMS at the benchmark's B=16, H=768."""
    compare(*make_inputs(16, 768, L, L), fft_long_conv)


@pytest.mark.parametrize("precision, tol", [("ieee", 1e-5), ("tf32x3", 1e-5), ("tf32", 3e-3)])
def test_input_precisions(precision, tol):
    u, k, D, _ = make_inputs(4, 64, 2048, 2048)
    y = butterfly.butterfly_long_conv(u, k, D, input_precision=precision)
    assert rel_rms(y, fft_long_conv(u.double(), k.double(), D.double())) <= tol


def test_auto_prefers_butterfly_within_its_limit_then_fft():
    u, k, D, _ = make_inputs(2, 4, 2048, 2048)
    assert select("long_conv", "auto", u, k, D).name == "butterfly"
    y = long_conv(u, k, D)
    assert rel_rms(y, naive_long_conv(u.double(), k.double(), D.double())) <= 1e-5
    u, k, D, _ = make_inputs(2, 4, 2049, 2049)
    assert select("long_conv", "auto", u, k, D).name == "fft"
