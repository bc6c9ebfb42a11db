"""The Triton ``"butterfly"`` long_conv backend against the naive oracle, forward and gradients.

Runs under ``TRITON_INTERPRET=1`` on the CPU (small shapes); with ``TRITON_INTERPRET=0`` on a
CUDA machine the same tests run compiled. Every FFT size of the one-pass range is exercised
(256 = 16x16 up to 4096 = 64x64).

Tolerances (relative RMS error against the float32 oracle fed the same inputs), from
``tests.helpers.REL_RMS_TOL``: float32 1e-5 (measured 1e-7 to 5e-7 with ``"ieee"`` dots),
bfloat16 2e-2 (measured 3.4e-3, the output's rounding), float16 4e-3 (measured 2e-4 to 5e-4).
The interpreter computes every dot in float32; :func:`test_tf32_dots_within_half_tolerance`
emulates TF32 rounding of the dot inputs to check the default of half-precision inputs.
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
from seqlayers.ops.conv import butterfly, fft, naive_long_conv  # noqa: E402
from seqlayers.ops.dispatch import select  # noqa: E402

from ..helpers import REL_RMS_TOL, rel_rms  # noqa: E402
from .conv_checks import check_against_oracle, make_inputs  # noqa: E402

INTERPRET = os.environ["TRITON_INTERPRET"] == "1"
if not INTERPRET and not torch.cuda.is_available():
    pytest.skip("needs a CUDA device or TRITON_INTERPRET=1", allow_module_level=True)
DEVICE = "cpu" if INTERPRET else "cuda"

LENGTHS = [1, 2, 15, 64, 257, 1000, 997]  # 997 is prime


def check(u, k, D, dy, **kwargs):
    """Compare the backend on DEVICE with the float32 oracle on the CPU, output by output."""
    check_against_oracle(lambda *args: butterfly.butterfly_long_conv(*args, **kwargs), DEVICE, u, k, D, dy)


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("kernel", ["short", "full"])
@pytest.mark.parametrize("B", [1, 3])
def test_fp32_matches_oracle(B, L, kernel):
    Lk = L if kernel == "full" else max(1, L // 3)
    check(*make_inputs(B, 5, L, Lk))


@pytest.mark.parametrize("L, Lk", [(300, 212), (2048, 2048), (3001, 1096)])
def test_every_factorization_up_to_the_limit(L, Lk):
    """FFT sizes 512 (16x32), 4096 (64x64, twice: full kernel and L + Lk - 1 = 4096 exactly)."""
    check(*make_inputs(3, 2, L, Lk))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("L", [15, 257, 1000])
def test_half_precision_matches_oracle(dtype, L):
    check(*make_inputs(3, 5, L, L, dtype=dtype))


@pytest.mark.parametrize("precision", butterfly.PRECISIONS)
def test_every_input_precision_runs(precision):
    u, k, D, dy = make_inputs(2, 3, 100, 100, dtype=torch.bfloat16, k_dtype=torch.bfloat16)
    check(u, k, D, dy, input_precision=precision)


@pytest.mark.skipif(not INTERPRET, reason="emulates TF32 inside the CPU interpreter")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_tf32_dots_within_half_tolerance(monkeypatch, dtype):
    """The default for half-precision inputs, ``"tf32"`` dots, with their inputs rounded to TF32."""
    from triton.runtime import interpreter

    builder = getattr(interpreter, "InterpreterBuilder", None)
    round_tf32 = getattr(interpreter, "_round_f32_to_tf32", None)
    if builder is None or round_tf32 is None or not hasattr(builder, "create_dot"):
        pytest.skip("this Triton's interpreter has no TF32 rounding helper")
    create_dot = builder.create_dot

    precisions = set()

    def tf32_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        name = str(input_precision).rsplit(".", 1)[-1].lower()
        precisions.add(name)
        if name == "tf32":
            a = interpreter.TensorHandle(round_tf32(a.data), a.dtype.scalar)
            b = interpreter.TensorHandle(round_tf32(b.data), b.dtype.scalar)
        return create_dot(self, a, b, d, input_precision, max_num_imprecise_acc)

    monkeypatch.setattr(builder, "create_dot", tf32_dot)
    check(*make_inputs(3, 4, 2048, 2048, dtype=dtype))  # float32 k: dk keeps "ieee" dots
    assert precisions == {"tf32", "ieee"}


def test_mixed_dtypes_and_no_skip_term():
    check(*make_inputs(2, 3, 100, 40, dtype=torch.bfloat16, k_dtype=torch.float16, with_d=False))
    check(*make_inputs(2, 3, 100, 100, dtype=torch.float32, k_dtype=torch.bfloat16))
    check(*make_inputs(3, 17, 64, 64, with_d=False))  # H not a multiple of 16


def test_batch_split_across_programs(monkeypatch):
    """Several programs per feature: partial dk and dD sums are reduced correctly."""
    monkeypatch.setattr(fft, "_target_programs", lambda device: 10**6)
    check(*make_inputs(7, 3, 200, 200))


def test_only_some_gradients():
    u, k, D, dy = (t.to(DEVICE) for t in make_inputs(2, 3, 50, 20))
    u.requires_grad_()
    y = butterfly.butterfly_long_conv(u, k, D)
    (du,) = torch.autograd.grad(y, u, dy)
    du_ref = torch.autograd.grad(naive_long_conv(u.cpu(), k.cpu(), D.cpu()), u, dy.cpu())[0]
    assert rel_rms(du.cpu(), du_ref) <= REL_RMS_TOL[torch.float32]


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
    assert select("long_conv", "butterfly", u, k, D).name == "butterfly"
    y = long_conv(u, k, D, backend="butterfly")
    y_ref = naive_long_conv(u.cpu(), k.cpu(), D.cpu())
    assert rel_rms(y.cpu(), y_ref) <= REL_RMS_TOL[torch.float32]
    expected_auto = "torch" if DEVICE == "cpu" else "butterfly"
    assert select("long_conv", "auto", u, k, D).name == expected_auto
    long_u, long_k = torch.zeros(1, 1, 3000, device=DEVICE), torch.zeros(1, 3000, device=DEVICE)
    expected_long = "torch" if DEVICE == "cpu" else "fft"
    assert select("long_conv", "auto", long_u, long_k, None).name == expected_long


def test_unsupported_calls_say_why():
    u, k, D, _ = make_inputs(2, 3, 40, 40)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    ok, reason = butterfly.supports(u.double(), k.double(), None)
    assert not ok and "float64" in reason and "backend='torch'" in reason
    with pytest.raises(BackendUnavailableError, match="float64"):
        long_conv(u.double(), k.double(), backend="butterfly")
    long_u, long_k = torch.zeros(1, 1, 3000, device=DEVICE), torch.zeros(1, 1098, device=DEVICE)
    ok, reason = butterfly.supports(long_u, long_k)  # L + Lk - 1 = 4097
    assert not ok and "4096" in reason and "backend='fft'" in reason
    with pytest.raises(BackendUnavailableError, match="one-pass limit"):
        long_conv(long_u, long_k, backend="butterfly")
    assert butterfly.supports(long_u, long_k[:, :1097])[0]
    if DEVICE == "cpu":
        ok, reason = butterfly.auto_supports(u, k, D)
        assert not ok and "backend='butterfly' explicitly" in reason
    with pytest.raises(ValueError, match="Lk"):
        butterfly.butterfly_long_conv(u, torch.randn(3, 41, device=DEVICE))
    with pytest.raises(ValueError, match="input_precision"):
        butterfly.butterfly_long_conv(u, k, D, input_precision="bf16")


def test_default_precision_follows_each_results_dtype():
    assert butterfly._precision(None, torch.float32) == "ieee"
    assert butterfly._precision(None, torch.bfloat16) == "tf32"
    assert butterfly._precision(None, torch.float16) == "tf32"
    assert butterfly._precision("tf32x3", torch.float32) == "tf32x3"


def test_causality():
    """Changing the input after time t never changes the output up to t."""
    u, k, D, _ = make_inputs(1, 2, 64, 64)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    u2 = u.clone()
    u2[..., 40:] += 1.0
    y = butterfly.butterfly_long_conv(u, k, D)
    y2 = butterfly.butterfly_long_conv(u2, k, D)
    torch.testing.assert_close(y[..., :40], y2[..., :40], rtol=0, atol=1e-5)
    assert (y[..., 40:] - y2[..., 40:]).abs().max() > 1e-3


@settings(max_examples=8, deadline=None)
@given(
    B=st.integers(1, 4),
    H=st.integers(1, 5),
    L=st.integers(1, 600),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_random_shapes(B, H, L, frac, seed):
    Lk = max(1, round(frac * L))
    check(*make_inputs(B, H, L, Lk, seed=seed))


@settings(max_examples=5, deadline=None)
@given(L=st.integers(2, 300), shift=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_time_shift_equivariance(L, shift, seed):
    """Delaying the input by ``shift`` steps delays the output by the same amount."""
    u, k, D, _ = make_inputs(2, 3, L, max(1, L // 2), seed=seed)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    u_late = torch.nn.functional.pad(u, (shift, 0))
    y = butterfly.butterfly_long_conv(u, k, D)
    y_late = butterfly.butterfly_long_conv(u_late, k, D)
    assert rel_rms(y_late[..., shift:].cpu(), y.cpu()) <= REL_RMS_TOL[torch.float32]
    assert y_late[..., :shift].abs().max() <= 1e-5 * y.abs().max()
