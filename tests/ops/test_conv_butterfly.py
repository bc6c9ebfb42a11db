"""The Triton ``"butterfly"`` long_conv backend against the naive oracle, forward and gradients.

Runs under ``TRITON_INTERPRET=1`` on the CPU (small shapes); with ``TRITON_INTERPRET=0`` on a
CUDA machine the same tests run compiled. Every FFT size of the one-pass range is exercised
(256 = 16x16 up to 4096 = 64x64). The outer pass through global memory is exercised at small
sizes by lowering the one-pass limit ``butterfly._MAX_ONE_PASS`` to 256 or 512 (``N = 4096`` is
then 16 x 256, 8192 is 32 x 256 or 16 x 512, 16384 is 64 x 256); the same tolerances hold there
(measured 1e-7 to 6e-7 in float32).

Tolerances (relative RMS error against the oracle run in float64 on the same inputs), from
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
from seqlayers.ops import dispatch  # noqa: E402
from seqlayers.ops.conv import butterfly, naive_long_conv  # noqa: E402
from seqlayers.ops import triton_utils  # noqa: E402
from seqlayers.ops.dispatch import resolve  # noqa: E402

from ..helpers import REL_RMS_TOL, rel_rms  # noqa: E402
from .conv_checks import check_against_oracle, make_inputs  # noqa: E402

INTERPRET = os.environ["TRITON_INTERPRET"] == "1"
if not INTERPRET and not torch.cuda.is_available():
    pytest.skip("needs a CUDA device or TRITON_INTERPRET=1", allow_module_level=True)
DEVICE = "cpu" if INTERPRET else "cuda"

LENGTHS = [1, 2, 15, 64, 257, 1000, 997]  # 997 is prime


def butterfly_conv(u, k, D=None):
    return long_conv(u, k, D, backend="butterfly")


def supports(u, k, D=None):
    return dispatch.supports("long_conv", "butterfly", u, k, D)


def check(u, k, D, dy):
    """Compare the backend on DEVICE with the float64 oracle on the CPU, output by output."""
    check_against_oracle(butterfly_conv, DEVICE, u, k, D, dy)


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("kernel", ["short", "full"])
@pytest.mark.parametrize("B", [1, 3])
def test_fp32_matches_oracle(B, L, kernel):
    Lk = L if kernel == "full" else max(1, L // 3)
    check(*make_inputs(B, 5, L, Lk))


@pytest.mark.parametrize("L", [16, 100, 257, 1024, 1500])
@pytest.mark.parametrize("dtype, B", [(torch.float32, 3), (torch.bfloat16, 1)], ids=["fp32-B3", "bf16-B1"])
def test_issue_lengths_with_a_shorter_kernel(L, dtype, B):
    """The lengths named by the backend's acceptance (powers of two and not), Lk < L."""
    check(*make_inputs(B, 3, L, max(1, L // 2 - 1), dtype=dtype))


@pytest.mark.parametrize("L, Lk", [(300, 212), (2048, 2048), (3001, 1096)])
def test_every_factorization_up_to_the_limit(L, Lk):
    """FFT sizes 512 (16x32), 4096 (64x64, twice: full kernel and L + Lk - 1 = 4096 exactly)."""
    check(*make_inputs(3, 2, L, Lk))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("L", [15, 257, 1000])
def test_half_precision_matches_oracle(dtype, L):
    check(*make_inputs(3, 5, L, L, dtype=dtype))


@pytest.mark.parametrize("precision", butterfly.PRECISIONS)
def test_every_input_precision_runs(precision, monkeypatch):
    monkeypatch.setenv(butterfly.PRECISION_ENV, precision)
    u, k, D, dy = make_inputs(2, 3, 100, 100, dtype=torch.bfloat16, k_dtype=torch.bfloat16)
    check(u, k, D, dy)


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
    monkeypatch.setattr(triton_utils, "target_programs", lambda device: 10**6)
    check(*make_inputs(7, 3, 200, 200))


def test_only_some_gradients():
    u, k, D, dy = (t.to(DEVICE) for t in make_inputs(2, 3, 50, 20))
    u.requires_grad_()
    y = butterfly_conv(u, k, D)
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
    assert resolve("long_conv", "butterfly", u, k, D)[0].name == "butterfly"
    y = long_conv(u, k, D, backend="butterfly")
    y_ref = naive_long_conv(u.cpu(), k.cpu(), D.cpu())
    assert rel_rms(y.cpu(), y_ref) <= REL_RMS_TOL[torch.float32]
    expected_auto = "torch" if DEVICE == "cpu" else "butterfly"
    assert resolve("long_conv", "auto", u, k, D)[0].name == expected_auto
    outer_u, outer_k = torch.zeros(1, 1, 3000, device=DEVICE), torch.zeros(1, 3000, device=DEVICE)
    expected_outer = "torch" if DEVICE == "cpu" else "butterfly"
    assert resolve("long_conv", "auto", outer_u, outer_k, None)[0].name == expected_outer
    limit = butterfly.one_pass_limit(butterfly._smem_per_block(torch.device(DEVICE)))
    long_u = torch.zeros(1, 1, 64 * limit, device=DEVICE)
    long_k = torch.zeros(1, 64 * limit, device=DEVICE)  # beyond the largest size
    expected_long = "torch" if DEVICE == "cpu" else "fft"
    assert resolve("long_conv", "auto", long_u, long_k, None)[0].name == expected_long


def test_unsupported_calls_say_why():
    u, k, D, _ = make_inputs(2, 3, 40, 40)
    u, k, D = u.to(DEVICE), k.to(DEVICE), D.to(DEVICE)
    ok, reason = supports(u.double(), k.double(), None)
    assert not ok and "float64" in reason and "backend='torch'" in reason
    with pytest.raises(BackendUnavailableError, match="float64"):
        long_conv(u.double(), k.double(), backend="butterfly")
    outer_u, outer_k = torch.zeros(1, 1, 3000, device=DEVICE), torch.zeros(1, 1098, device=DEVICE)
    assert supports(outer_u, outer_k)[0]  # N = 8192: the outer path
    if DEVICE == "cpu":
        assert "backend='butterfly' explicitly" in dispatch.explain("long_conv", u, k, D).skipped["butterfly"]
    with pytest.raises(ValueError, match="Lk"):
        butterfly_conv(u, torch.randn(3, 41, device=DEVICE))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(butterfly.PRECISION_ENV, "bf16")
        dispatch.clear_plans()
        with pytest.raises(BackendUnavailableError, match="SEQLAYERS_BUTTERFLY_PRECISION='bf16'"):
            butterfly_conv(u, k, D)


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
    y = butterfly_conv(u, k, D)
    y2 = butterfly_conv(u2, k, D)
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
    y = butterfly_conv(u, k, D)
    y_late = butterfly_conv(u_late, k, D)
    assert rel_rms(y_late[..., shift:].cpu(), y.cpu()) <= REL_RMS_TOL[torch.float32]
    assert y_late[..., :shift].abs().max() <= 1e-5 * y.abs().max()


# ----------------------------------------------------------------------------------------------
# the outer pass through global memory, exercised by lowering the one-pass limit


@pytest.fixture
def one_pass_256(monkeypatch):
    """One-pass limit 256: every FFT size from 512 on takes the outer pass (NO x 256)."""
    monkeypatch.setattr(butterfly, "_MAX_ONE_PASS", 256)


@pytest.mark.parametrize("B, L, Lk", [(1, 257, 257), (3, 1000, 300), (3, 1009, 1009),
                                      (1, 1500, 1500), (2, 300, 1)])  # 1009 is prime
def test_outer_pass_fp32_matches_oracle(one_pass_256, B, L, Lk):
    """N = 4096 = 16 x 256 (a size above the limit but below 4096 is padded up to it)."""
    assert butterfly._plan(L + Lk - 1, 256) == (16, 256)
    check(*make_inputs(B, 2, L, Lk))


@pytest.mark.parametrize("limit, L, Lk, plan", [(256, 2100, 2100, (32, 256)),
                                                (512, 2100, 2100, (16, 512)),
                                                (256, 4200, 4000, (64, 256))])
def test_outer_pass_every_outer_size(monkeypatch, limit, L, Lk, plan):
    """Outer sizes 16, 32, 64 and a rectangular inner size (512 = 16 x 32)."""
    monkeypatch.setattr(butterfly, "_MAX_ONE_PASS", limit)
    assert butterfly._plan(L + Lk - 1, limit) == plan
    check(*make_inputs(1, 1, L, Lk))


def test_outer_pass_bf16_matches_oracle(one_pass_256):
    """bfloat16 ``u`` and ``k``: tolerance 2e-2 (REL_RMS_TOL), the output's own rounding."""
    check(*make_inputs(3, 2, 1000, 1000, dtype=torch.bfloat16, k_dtype=torch.bfloat16))


def test_outer_pass_mixed_dtypes_and_no_skip_term(one_pass_256):
    """bf16 ``u`` with float32 ``k``: the shared transforms of the backward use "ieee", so
    ``dk`` keeps float32 accuracy; and no ``D``."""
    check(*make_inputs(2, 2, 700, 500, dtype=torch.bfloat16, with_d=False))


def test_outer_pass_batch_chunks_and_groups(one_pass_256, monkeypatch):
    """Scratch of one pair at a time (odd batch: the last chunk holds one row) and several
    programs per row: the partial ``dk`` spectra and ``dD`` sums add up."""
    monkeypatch.setattr(butterfly, "_SCRATCH_BYTES", 1)
    monkeypatch.setattr(triton_utils, "target_programs", lambda device: 10**6)
    assert butterfly._batch_chunks(5, 2, 4096) == [(0, 2), (2, 4), (4, 5)]
    check(*make_inputs(5, 2, 600, 600))


@pytest.mark.parametrize("wrt", ["u", "k"])
def test_outer_pass_only_some_gradients(one_pass_256, wrt):
    """``du`` alone runs the forward passes as a correlation; ``dk`` alone skips ``du``."""
    u, k, D, dy = (t.to(DEVICE) for t in make_inputs(3, 2, 600, 400))
    x = {"u": u, "k": k}[wrt].requires_grad_()
    (got,) = torch.autograd.grad(butterfly_conv(u, k, D), x, dy)
    ref = {"u": u, "k": k}[wrt].detach().cpu().requires_grad_()
    args = [ref if name == wrt else t.detach().cpu() for name, t in (("u", u), ("k", k))]
    (want,) = torch.autograd.grad(naive_long_conv(*args, D.cpu()), ref, dy.cpu())
    assert rel_rms(got.cpu(), want) <= REL_RMS_TOL[torch.float32]


def test_beyond_the_largest_size_is_refused(one_pass_256):
    """With a one-pass limit of 256 the largest FFT size is 64 x 256 = 16384."""
    assert butterfly.max_size(None) == 16384
    u, k = torch.zeros(1, 1, 9000, device=DEVICE), torch.zeros(1, 7385, device=DEVICE)
    assert supports(u, k[:, :7384])[0]  # L + Lk - 1 = 16383
    assert supports(u, k)[0]  # L + Lk - 1 = 16384 = 64 * 256
    u = torch.zeros(1, 1, 9000 + 1, device=DEVICE)
    ok, reason = supports(u, k)  # 16385 -> N = 32768
    assert not ok and "16384" in reason and "32768" in reason and "backend='fft'" in reason
    with pytest.raises(BackendUnavailableError, match="largest size 16384"):
        long_conv(u, k, backend="butterfly")


# ----------------------------------------------------------------------------------------------
# the one-pass limit from the device's shared memory (pure Python: fake device limits)


@pytest.mark.parametrize("smem_kb, limit", [(None, 4096), (227, 4096), (163, 4096), (129, 4096),
                                            (128, 2048), (99, 2048), (64, 1024), (32, 512),
                                            (16, 256), (4, 0)])
def test_one_pass_limit_from_shared_memory(smem_kb, limit):
    """H100 227 KB, A100 163 KB, consumer Ampere/Ada/Blackwell 99 KB, Turing 64 KB, ...; the
    one-pass ``dk`` kernel at 4096 needs 128.5 KB."""
    smem = None if smem_kb is None else smem_kb * 1024
    assert butterfly.one_pass_limit(smem) == limit
    assert butterfly.max_size(smem) == 64 * limit or smem < 68 * 1024
    if smem is not None and limit:  # every kernel fits at the limit, not at twice it
        assert butterfly._smem_need(limit) <= smem
        assert limit == 4096 or butterfly._smem_need(2 * limit) > smem


def test_one_pass_limit_follows_a_lowered_constant(monkeypatch):
    monkeypatch.setattr(butterfly, "_MAX_ONE_PASS", 512)
    assert butterfly.one_pass_limit(None) == butterfly.one_pass_limit(227 * 1024) == 512


def test_device_shared_memory_is_read_from_torch_or_triton(monkeypatch):
    """``shared_memory_per_block_optin`` from torch where present, else Triton's driver."""
    from types import SimpleNamespace

    import triton

    butterfly._cuda_smem.cache_clear()
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(shared_memory_per_block_optin=101376))
    assert butterfly._cuda_smem(0) == 101376
    butterfly._cuda_smem.cache_clear()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace())
    utils = SimpleNamespace(get_device_properties=lambda i: {"max_shared_mem": 232448})
    driver = SimpleNamespace(active=SimpleNamespace(utils=utils))
    monkeypatch.setattr(triton.runtime, "driver", driver)
    assert butterfly._cuda_smem(1) == 232448
    butterfly._cuda_smem.cache_clear()
    if INTERPRET:
        assert butterfly._smem_per_block(torch.device("cpu")) is None


def test_a_100kb_device_gets_the_outer_pass_not_a_launch_failure(monkeypatch):
    """With 99 KB per block, N = 4096 is 16 x 256 through global memory, not a 128 KB kernel."""
    monkeypatch.setattr(butterfly, "_SPILL_FREE", NO_SPILL_CAPS)  # shared memory alone
    monkeypatch.setattr(butterfly, "_smem_per_block", lambda device: 99 * 1024)
    assert butterfly._plan(4096, butterfly.one_pass_limit(99 * 1024)) == (16, 256)
    u, k = torch.zeros(1, 1, 70000, device=DEVICE), torch.zeros(1, 61074, device=DEVICE)
    assert supports(u, k[:, :61073])[0]  # L + Lk - 1 = 131072 = 64 * 2048
    ok, reason = supports(u, k)
    assert not ok and "largest size 131072" in reason and "one-pass limit 2048" in reason
    monkeypatch.setattr(butterfly, "_smem_per_block", lambda device: 4 * 1024)
    ok, reason = supports(u[..., :10], k[:, :10])
    assert not ok and "shared memory" in reason and "backend='fft'" in reason


def test_outer_size_limited_by_shared_memory(monkeypatch):
    """At 48 KB per block the outer passes of 64 (68 KB) do not fit: largest N is 32 x 1024."""
    assert butterfly._max_outer(None) == butterfly._max_outer(68 * 1024) == 64
    assert butterfly._max_outer(48 * 1024) == 32 and butterfly.max_size(48 * 1024) == 32768
    monkeypatch.setattr(butterfly, "_SPILL_FREE", NO_SPILL_CAPS)  # shared memory alone
    monkeypatch.setattr(butterfly, "_smem_per_block", lambda device: 48 * 1024)
    u, k = torch.zeros(1, 1, 20000, device=DEVICE), torch.zeros(1, 12770, device=DEVICE)
    assert butterfly._device_plan(u.device, 32768) == (32, 1024)
    assert supports(u, k[:, :12769])[0]  # L + Lk - 1 = 32768
    ok, reason = supports(u, k)
    assert not ok and "largest size 32768" in reason and "at most 32 times" in reason


NO_SPILL_CAPS = dict.fromkeys(butterfly.PRECISIONS, (butterfly._MAX_ONE_PASS, butterfly._MAX_OUTER))
"""``butterfly._SPILL_FREE`` with no cap, for the tests of the shared-memory limits alone."""


@pytest.mark.parametrize("dtype, env, total, sizes", [
    (torch.float32, None, 256, (1, 256)),
    (torch.float32, None, 257, (16, 256)),  # "ieee": one pass only up to 256, padded to 16 x 256
    (torch.float32, None, 4096, (16, 256)),
    (torch.float32, None, 4097, None),  # beyond 16 x 256: refused, "auto" takes "fft"
    (torch.bfloat16, None, 512, (1, 512)),  # "tf32"
    (torch.bfloat16, None, 2048, (16, 256)),
    (torch.bfloat16, None, 8192, (16, 512)),
    (torch.bfloat16, None, 8193, None),
    (torch.float32, "tf32x3", 512, (1, 512)),
    (torch.float32, "tf32x3", 16384, (32, 512)),
    (torch.float32, "tf32x3", 16385, None),
])
def test_on_a_gpu_the_planner_stays_where_kernels_do_not_spill(monkeypatch, dtype, env, total, sizes):
    """``_SPILL_FREE`` (measured by tests/aot with ptxas) caps the sizes per dot precision on a
    GPU, whatever its shared memory allows (227 KB here)."""
    from seqlayers.errors import Unsupported
    from seqlayers.ops.conv.call import ConvCall

    monkeypatch.setattr(butterfly, "_smem_per_block", lambda device: 227 * 1024)
    if env:
        monkeypatch.setenv(butterfly.PRECISION_ENV, env)
    call = ConvCall(2, 3, total, 1, dtype, dtype, None, torch.device(DEVICE))
    if sizes is None:
        with pytest.raises(Unsupported, match="do not spill"):
            butterfly.plan.__wrapped__(call, False)
        return
    p = butterfly.plan.__wrapped__(call, False)
    assert (p.n_outer, p.n_inner) == sizes
    assert p.n_inner <= butterfly._SPILL_FREE[p.precision_u][0]
    assert p.n_outer <= max(1, butterfly._SPILL_FREE[p.precision_u][1])
