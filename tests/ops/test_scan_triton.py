"""The Triton linear_scan backend against the sequential oracle, run under TRITON_INTERPRET=1."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytest.importorskip("triton")
pytestmark = pytest.mark.triton

from seqlayers.ops import linear_scan  # noqa: E402
from seqlayers.ops import dispatch  # noqa: E402
from seqlayers.ops.dispatch import resolve  # noqa: E402
from seqlayers.ops.scan import naive_linear_scan  # noqa: E402

from .test_scan import HALF_RMS, TOL, assert_close, forward_and_grads, make_inputs  # noqa: E402

if os.environ["TRITON_INTERPRET"] != "1" and not torch.cuda.is_available():
    pytest.skip("needs a CUDA device or TRITON_INTERPRET=1", allow_module_level=True)
DEVICE = "cpu" if os.environ["TRITON_INTERPRET"] == "1" else "cuda"


def triton_scan(a, b, h0):
    return linear_scan(a, b, h0, backend="triton")


def on_device(*tensors):
    return tuple(t.to(DEVICE) if t is not None else None for t in tensors)


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("L", [1, 2, 63, 64, 65, 130])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "zeros"])
def test_triton_matches_naive_forward_and_grads(dtype, L, with_h0):
    a, b, h0 = on_device(*make_inputs(2, L, 5, dtype, with_h0))
    dh = torch.randn_like(b)
    got = forward_and_grads(triton_scan, a, b, h0, dh)
    want = forward_and_grads(naive_linear_scan, a, b, h0, dh)
    for x, y in zip(got, want):
        assert_close(x, y, dtype)


@pytest.mark.parametrize("P", [1, 33])
def test_several_state_blocks_and_batch_of_one(P):
    """P above the block width splits the states over programs, with a masked remainder."""
    a, b, h0 = on_device(*make_inputs(1, 20, P, torch.complex64))
    dh = torch.randn_like(b)
    got = forward_and_grads(triton_scan, a, b, h0, dh)
    want = forward_and_grads(naive_linear_scan, a, b, h0, dh)
    for x, y in zip(got, want):
        assert_close(x, y, torch.complex64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=str)
def test_gradcheck(dtype):
    a, b, h0 = (t.requires_grad_() for t in on_device(*make_inputs(1, 4, 2, dtype)))
    assert torch.autograd.gradcheck(triton_scan, (a, b, h0), fast_mode=True)


def test_non_contiguous_inputs():
    B, L, P = 2, 80, 6
    a = torch.rand(P, dtype=torch.complex64, device=DEVICE).expand(B, L, P)
    b = torch.randn(B, P, L, dtype=torch.complex64, device=DEVICE).transpose(1, 2)
    want = naive_linear_scan(a.contiguous(), b.contiguous())
    assert_close(triton_scan(a, b, None), want, torch.complex64)


def test_conjugated_views_and_gradients():
    """Lazily conjugated tensors (conj bit set) in the inputs and in the upstream gradient."""
    a, b, h0 = on_device(*make_inputs(2, 70, 3, torch.complex64))
    dh = torch.randn_like(b)
    got = forward_and_grads(lambda a, b, h0: triton_scan(a.conj(), b, h0).conj(), a, b, h0, dh)
    want = forward_and_grads(lambda a, b, h0: naive_linear_scan(a.conj(), b, h0).conj(), a, b, h0, dh)
    for x, y in zip(got, want):
        assert_close(x, y, torch.complex64)


@pytest.mark.parametrize("dtype", list(HALF_RMS), ids=str)
def test_half_precision(dtype):
    a, b, h0 = (t.to(dtype) for t in on_device(*make_inputs(2, 100, 4, torch.float32)))
    h = triton_scan(a, b, h0)
    assert h.dtype == dtype
    want = naive_linear_scan(a.double(), b.double(), h0.double())
    assert (h.double() - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt() < HALF_RMS[dtype]


@settings(max_examples=6, deadline=None)
@given(B=st.integers(1, 2), L=st.integers(1, 100), P=st.integers(1, 20), complex_=st.booleans())
def test_hypothesis_shapes(B, L, P, complex_):
    dtype = torch.complex128 if complex_ else torch.float64
    a, b, h0 = on_device(*make_inputs(B, L, P, dtype))
    assert_close(triton_scan(a, b, h0), naive_linear_scan(a, b, h0), dtype)


def test_supports_rejects_cpu_tensors_without_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    a = torch.zeros(1, 4, 2)
    ok, reason = dispatch.supports("linear_scan", "triton", a, a, None)
    assert not ok and "CUDA" in reason


def test_auto_never_picks_the_interpreter():
    a = torch.zeros(1, 4, 2)
    assert "backend='triton'" in dispatch.explain("linear_scan", a, a, None).skipped["triton"]
    assert resolve("linear_scan", "auto", a, a, None)[0].name in ("torch", "native")  # never the interpreter


def test_supports_rejects_other_dtypes():
    a = torch.zeros(1, 4, 2, dtype=torch.bfloat16, device=DEVICE)
    ok, reason = dispatch.supports("linear_scan", "triton", a, a, None)
    assert not ok and "bfloat16" in reason


def test_kernels_compile_for_a_gpu_target():
    """Lower every kernel variant to sm_90 PTX: catches what the interpreter lets through."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    script = textwrap.dedent(
        """
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from seqlayers.ops.scan import triton as T

        def compile_kernel(kernel, dtype, constants):
            names = kernel.arg_names
            signature = {
                n: "constexpr" if n in constants else ("i32" if n in ("L", "P") else "*" + dtype)
                for n in names
            }
            constexprs = {(names.index(k),): v for k, v in constants.items()}
            src = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
            assert triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["ptx"]

        for dtype in ("fp32", "fp64"):
            for is_complex in (False, True):
                for has_h0 in (False, True):
                    c = dict(HAS_H0=has_h0, IS_COMPLEX=is_complex, BLOCK_L=T.BLOCK_L, BLOCK_P=T.MAX_BLOCK_P)
                    compile_kernel(T._linear_scan_fwd_kernel, dtype, c)
                    compile_kernel(T._linear_scan_bwd_kernel, dtype, c)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
