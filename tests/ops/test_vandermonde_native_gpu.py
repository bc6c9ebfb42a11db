"""vandermonde's native CUDA kernels (csrc/cuda/vandermonde.cu) on a GPU (skipped without one).

The extension is built with CUDA on first use here (a minute or two with nvcc); the test skips,
naming the reason, when the build has no CUDA kernels (no CUDA toolkit on the machine).
Oracle: the float64 materializing backend on the same (rounded) inputs.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

from seqlayers import _native  # noqa: E402
from seqlayers.ops.dispatch import resolve  # noqa: E402

from ..helpers import rel_rms  # noqa: E402
from .test_vandermonde_native import _forward_and_grads as _run  # noqa: E402

FP32_TOL = 1e-5


@pytest.fixture(scope="module")
def cuda_built():
    ok, reason = _native.LIBRARY.load(build=True)
    if not ok:
        pytest.skip(f"native extension unavailable: {reason}")
    if not _native.LIBRARY.has_kernel("native_vandermonde_forward", "CUDA"):
        pytest.skip("the native extension was built without CUDA kernels")


def _inputs(lead, M, N, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(*lead, M, N, dtype=torch.complex128, generator=gen)
    dt = torch.exp(torch.empty(M, 1, dtype=torch.float64).uniform_(-6.9, -2.3, generator=gen))
    A = torch.complex(-0.5 * torch.ones(M, N, dtype=torch.float64),
                      torch.pi * torch.arange(N, dtype=torch.float64).expand(M, N))
    return v.to(dtype).cuda(), torch.exp(dt * A).to(dtype).cuda()


@pytest.mark.parametrize("L", [1, 2, 127, 2048, 2049, 5003, 65536])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=str)
@pytest.mark.parametrize("lead", [(), (2,)], ids=["no-channels", "channels"])
def test_cuda_matches_float64_oracle(cuda_built, L, dtype, lead):
    M, N = 3, 32
    v, z = _inputs(lead, M, N, dtype)
    dK = torch.randn(*lead, M, L, dtype=torch.float64, device="cuda")
    got = _run(v, z, L, "native", dK)
    want = _run(v.to(torch.complex128), z.to(torch.complex128), L, "naive", dK)
    tol = FP32_TOL if dtype == torch.complex64 else 1e-10
    for name, g, w in zip(("K", "grad_v", "grad_z"), got, want):
        assert rel_rms(g, w) <= tol, name


def test_cuda_wide_modes_span_several_chunks(cuda_built):
    v, z = _inputs((), 2, 300, torch.complex64)  # 300 modes: three shared-memory chunks
    dK = torch.randn(2, 4000, dtype=torch.float64, device="cuda")
    got = _run(v, z, 4000, "native", dK)
    want = _run(v.to(torch.complex128), z.to(torch.complex128), 4000, "naive", dK)
    for g, w in zip(got, want):
        assert rel_rms(g, w) <= FP32_TOL


def test_auto_does_not_pick_the_cuda_kernel_yet(cuda_built):
    v, z = _inputs((), 2, 4, torch.complex64)
    assert resolve("vandermonde", "auto", v, z, 10)[0].name == "torch"
