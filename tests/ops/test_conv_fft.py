"""The Triton ``"fft"`` long_conv backend against the naive oracle, forward and every gradient.

Runs under ``TRITON_INTERPRET=1`` on the CPU (small shapes); with ``TRITON_INTERPRET=0`` on a
CUDA machine the same tests run compiled. The four-step (long-sequence) path is exercised at
small sizes by lowering ``fft._MAX_ONE_PASS``.

Tolerances (relative RMS error against the oracle run in float64 on the same inputs): float32 1e-5
(measured about 5e-7 here), bfloat16 2e-2, float16 4e-3 (the output's rounding dominates).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytest.importorskip("triton")
pytestmark = pytest.mark.triton

from seqlayers.ops import BackendUnavailableError, long_conv  # noqa: E402
from seqlayers.ops.conv import fft, naive_long_conv  # noqa: E402
from seqlayers.ops import dispatch  # noqa: E402
from seqlayers.ops import triton_utils  # noqa: E402
from seqlayers.ops.dispatch import resolve  # noqa: E402

from ..helpers import REL_RMS_TOL, rel_rms  # noqa: E402
from .conv_checks import check_against_oracle, make_inputs  # noqa: E402

INTERPRET = os.environ["TRITON_INTERPRET"] == "1"
if not INTERPRET and not torch.cuda.is_available():
    pytest.skip("needs a CUDA device or TRITON_INTERPRET=1", allow_module_level=True)
DEVICE = "cpu" if INTERPRET else "cuda"

LENGTHS = [1, 2, 15, 64, 257, 1000, 997]  # 997 is prime


@pytest.fixture
def four_step(monkeypatch):
    """Force the decomposed path: FFT sizes above 16 go through the three-pass four-step."""
    monkeypatch.setattr(fft, "_MAX_ONE_PASS", 16)


def fft_conv(u, k, D=None):
    return long_conv(u, k, D, backend="fft")


def check(u, k, D, dy):
    """Compare the backend on DEVICE with the float64 oracle on the CPU, output by output."""
    check_against_oracle(fft_conv, DEVICE, u, k, D, dy)


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("kernel", ["short", "full"])
@pytest.mark.parametrize("B", [1, 3])
def test_fp32_matches_oracle(B, L, kernel):
    Lk = L if kernel == "full" else max(1, L // 3)
    check(*make_inputs(B, 5, L, Lk))


@pytest.mark.parametrize("L, Lk", [(15, 15), (64, 20), (257, 257), (997, 500)])
@pytest.mark.parametrize("B", [1, 3])
def test_four_step_fp32_matches_oracle(four_step, B, L, Lk):
    check(*make_inputs(B, 3, L, Lk))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("L", [15, 257, 1000])
def test_half_precision_matches_oracle(dtype, L):
    check(*make_inputs(3, 5, L, L, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_four_step_half_precision(four_step, dtype):
    check(*make_inputs(3, 3, 300, 300, dtype=dtype))


def test_mixed_dtypes_and_no_skip_term():
    check(*make_inputs(2, 3, 100, 40, dtype=torch.bfloat16, k_dtype=torch.float16, with_d=False))
    check(*make_inputs(2, 3, 100, 100, dtype=torch.float32, k_dtype=torch.bfloat16))


def test_four_step_without_skip_term(four_step):
    check(*make_inputs(3, 2, 100, 70, with_d=False))


def test_batch_split_across_programs(monkeypatch):
    """Several programs per feature: partial dk and dD sums are reduced correctly."""
    monkeypatch.setattr(triton_utils, "target_programs", lambda device: 10**6)
    check(*make_inputs(7, 3, 200, 200))
    monkeypatch.setattr(fft, "_MAX_ONE_PASS", 16)
    check(*make_inputs(7, 2, 100, 100))


def test_non_contiguous_inputs():
    u, k, D, dy = make_inputs(3, 4, 50, 30)
    u_strided = u.transpose(1, 2).contiguous().transpose(1, 2)  # (B, H, L) view with stride 1 on H
    k_strided = torch.cat([k, k], dim=1)[:, ::2]
    k_strided.copy_(k)
    assert not u_strided.is_contiguous() and not k_strided.is_contiguous()
    check(u_strided, k_strided, D, dy)


def test_registry_explicit_and_auto():
    u, k, D, _ = make_inputs(2, 3, 40, 40)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    assert resolve("long_conv", "fft", u, k, D)[0].name == "fft"
    y = long_conv(u, k, D, backend="fft")
    y_ref = naive_long_conv(u.cpu(), k.cpu(), D.cpu())
    assert rel_rms(y.cpu(), y_ref) <= REL_RMS_TOL[torch.float32]
    expected_auto = "torch" if DEVICE == "cpu" else "fft"
    assert resolve("long_conv", "auto", u, k, D)[0].name == expected_auto


def test_unsupported_calls_say_why():
    u, k, D, _ = make_inputs(2, 3, 40, 40)
    ok, reason = dispatch.supports("long_conv", "fft", u.double().to(DEVICE), k.double().to(DEVICE), None)
    assert not ok and "float64" in reason and "backend='torch'" in reason
    with pytest.raises(BackendUnavailableError, match="float64"):
        long_conv(u.double().to(DEVICE), k.double().to(DEVICE), backend="fft")
    if DEVICE == "cpu":
        assert "backend='fft' explicitly" in dispatch.explain("long_conv", u, k, D).skipped["fft"]
    with pytest.raises(ValueError, match="Lk"):
        fft_conv(u.to(DEVICE), torch.randn(3, 41, device=DEVICE))


def test_causality():
    """Changing the input after time t never changes the output up to t."""
    u, k, D, _ = make_inputs(1, 2, 64, 64)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    u2 = u.clone()
    u2[..., 40:] += 1.0
    y, y2 = fft_conv(u, k, D), fft_conv(u2, k, D)
    torch.testing.assert_close(y[..., :40], y2[..., :40], rtol=0, atol=1e-5)
    assert (y[..., 40:] - y2[..., 40:]).abs().max() > 1e-3


@settings(max_examples=8, deadline=None)
@given(
    B=st.integers(1, 4),
    H=st.integers(1, 5),
    L=st.integers(1, 300),
    frac=st.floats(0.0, 1.0),
    decomposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes(B, H, L, frac, decomposed, seed):
    Lk = max(1, round(frac * L))
    old = fft._MAX_ONE_PASS
    fft._MAX_ONE_PASS = 16 if decomposed else old
    dispatch.clear_plans()
    try:
        check(*make_inputs(B, H, L, Lk, seed=seed))
    finally:
        fft._MAX_ONE_PASS = old
        dispatch.clear_plans()


def test_twiddle_tables_are_built_once_per_size_and_device():
    """Every launch reads a twiddle table; it is made once per (size, device), not per call."""
    cpu = torch.device("cpu")
    first, again = fft._twiddles(64, cpu), fft._twiddles(64, cpu)
    assert first[0] is again[0] and first[1] is again[1]
    assert fft._twiddles(128, cpu)[0].shape == (128,)
