"""The ``"butterfly"`` backend compiled on a CUDA GPU at real sizes (skipped without one).

Run with the interpreter off: ``TRITON_INTERPRET=0 pytest -m gpu tests/ops``. Oracles: the naive
direct convolution in float64 for the small shapes, float64 ``torch.fft`` (exact to about
1e-15) at the benchmark's B=16, H=768. Accuracy targets: float32 relative RMS error <= 1e-5
with the default ``"ieee"`` dots; bfloat16 2e-2 and float16 4e-3 with the default ``"tf32"``
dots (TF32 rounding adds about 5e-4, emulated on the CPU in test_conv_butterfly.py). Lengths
beyond the one-pass limit (L = 8192 ... 65536, and the largest size) take the outer pass through
global memory; a ~100 KB-per-block GPU's configuration is forced by faking its shared memory.
"""

from __future__ import annotations

import functools

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("no_tf32")]  # exact float32 oracles

from . import conv_checks  # noqa: E402

conv_checks.require_compiled_gpu()

from seqlayers.ops import long_conv  # noqa: E402
from seqlayers.ops.conv import butterfly, fft_long_conv, naive_long_conv  # noqa: E402
from seqlayers.ops.dispatch import resolve  # noqa: E402

from ..helpers import rel_rms  # noqa: E402
from .conv_checks import no_tf32  # noqa: E402,F401

CUDA = torch.device("cuda")
make_inputs = functools.partial(conv_checks.make_inputs, device=CUDA)
compare = functools.partial(conv_checks.compare_in_float64, butterfly.butterfly_long_conv)


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
    assert resolve("long_conv", "auto", u, k, D)[0].name == "butterfly"
    y = long_conv(u, k, D)
    assert rel_rms(y, naive_long_conv(u.double(), k.double(), D.double())) <= 1e-5
    u, k, D, _ = make_inputs(2, 4, 2049, 2049)  # the outer pass
    assert resolve("long_conv", "auto", u, k, D)[0].name == "butterfly"
    largest = butterfly.max_size(butterfly._smem_per_block(CUDA))
    u, k = torch.zeros(1, 1, largest, device=CUDA), torch.zeros(1, 2, device=CUDA)
    assert resolve("long_conv", "auto", u, k, None)[0].name == "fft"


def test_one_pass_limit_of_this_device():
    """Read from the device's opt-in shared memory: 4096 on A100/H100 (163/227 KB per block)."""
    smem = butterfly._smem_per_block(CUDA)
    limit = butterfly.one_pass_limit(smem)
    assert smem is not None and limit >= 1024 and butterfly._smem_need(limit) <= smem
    if torch.cuda.get_device_capability(CUDA) in ((8, 0), (9, 0)):
        assert limit == 4096


@pytest.mark.parametrize("L", [8192, 16384, 65536])
def test_outer_pass_matches_fft_oracle(L):
    """Beyond the one-pass limit (4096 on A100/H100): N = 16 x 1024, 16 x 2048, 32 x 4096."""
    compare(*make_inputs(2, 8, L, L), fft_long_conv)
    compare(*make_inputs(3, 8, L, L // 3 + 1), fft_long_conv)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_outer_pass_half_precision(dtype):
    compare(*make_inputs(2, 8, 16384, 16384, dtype=dtype), fft_long_conv)


def test_outer_pass_at_the_largest_size():
    """L + Lk - 1 = 64 * one-pass limit (262144 on >= 128 KB GPUs): 64 x 4096."""
    largest = butterfly.max_size(butterfly._smem_per_block(CUDA))
    compare(*make_inputs(1, 2, largest // 2, largest // 2), fft_long_conv)


@pytest.mark.parametrize("L", [2048, 4096, 30000])
def test_a_100kb_device_configuration_launches(monkeypatch, L):
    """The block choice of a GPU with 99 KB per block (limit 2048, then the outer pass)."""
    monkeypatch.setattr(butterfly, "_smem_per_block", lambda device: 99 * 1024)
    compare(*make_inputs(2, 8, L, L), fft_long_conv)


def test_outer_pass_input_precisions():
    u, k, D, _ = make_inputs(2, 16, 16384, 16384)
    want = fft_long_conv(u.double(), k.double(), D.double())
    for precision, tol in [("ieee", 1e-5), ("tf32x3", 1e-5), ("tf32", 3e-3)]:
        y = butterfly.butterfly_long_conv(u, k, D, input_precision=precision)
        assert rel_rms(y, want) <= tol, precision
