"""The ``"fft"`` backend compiled on a CUDA GPU at real sizes (skipped without one).

Run with the interpreter off: ``TRITON_INTERPRET=0 pytest -m gpu tests/ops``. Oracles: the naive
direct convolution in float64 where it is affordable, float64 ``torch.fft`` (exact to about
1e-15) for the long sequences. The accuracy target of the backend: float32 relative RMS error
<= 1e-5 at B=16, H=768 (the benchmark's shapes; fewer features at L=64K to bound memory).
"""

from __future__ import annotations

import functools

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("no_tf32")]  # exact float32 oracles

from . import conv_checks  # noqa: E402

conv_checks.require_compiled_gpu()

from seqlayers.ops import long_conv  # noqa: E402
from seqlayers.ops.conv import fft, fft_long_conv, naive_long_conv  # noqa: E402
from seqlayers.ops.dispatch import registered_backends, resolve  # noqa: E402

from ..helpers import rel_rms  # noqa: E402
from .conv_checks import no_tf32  # noqa: E402,F401

CUDA = torch.device("cuda")
make_inputs = functools.partial(conv_checks.make_inputs, device=CUDA)
compare = functools.partial(conv_checks.compare_in_float64, fft.triton_fft_long_conv)


@pytest.mark.parametrize("L, Lk", [(1, 1), (257, 100), (1000, 1000), (997, 997), (4096, 4096),
                                   (4097, 2000)])
@pytest.mark.parametrize("B", [1, 3])
def test_matches_naive(B, L, Lk):
    compare(*make_inputs(B, 20, L, Lk), naive_long_conv)


@pytest.mark.parametrize("L", [16384, 65536, 100_003])
def test_long_matches_float64_fft(L):
    compare(*make_inputs(3, 6, L, L), fft_long_conv)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("L", [1024, 16384])
def test_half_precision(dtype, L):
    compare(*make_inputs(4, 24, L, L, dtype=dtype), fft_long_conv)


@pytest.mark.parametrize("L", [1024, 4096, 16384, 65536])
def test_target_accuracy_at_benchmark_shape(L):
    """fp32 forward within 1e-5 relative RMS at the benchmark's B=16, H=768."""
    H = 768 if L <= 16384 else 64
    u, k, D, _ = make_inputs(16, H, L, L)
    y = fft.triton_fft_long_conv(u, k, D)
    y_ref = fft_long_conv(u.double(), k.double(), D.double())
    assert rel_rms(y, y_ref) <= 1e-5


def test_auto_prefers_fft_to_torch_on_cuda():
    u, k, D, _ = make_inputs(2, 4, 100, 100)
    priority = {b.name: b.priority for b in registered_backends("long_conv")}
    assert priority[resolve("long_conv", "auto", u, k, D)[0].name] >= priority["fft"]
    y = long_conv(u, k, D)
    assert rel_rms(y, naive_long_conv(u.double(), k.double(), D.double())) <= 1e-5
