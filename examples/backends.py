"""Which backend runs your call, how to choose one, and the optional native extension.

    python examples/backends.py            # CPU is fine; on a GPU it shows the Triton backends too

Prints the backends of each op and what ``"auto"`` picks for a few shapes, forces a backend for
one call and for a block, builds (or loads) the native extension and compares it with the
PyTorch backend on S4D's kernel generation.
"""

import time

import torch

import seqlayers
from seqlayers.ops import BackendUnavailableError, dispatch, long_conv, use_backend, vandermonde


def timed(fn, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for op in ("long_conv", "linear_scan", "vandermonde"):
        print(f"{op}: available {seqlayers.ops.available_backends(op)}")

    # what "auto" picks, and why the others are skipped (nothing is timed or built)
    for L in (1024, 16384):
        u, k = torch.randn(4, 64, L, device=device), torch.randn(64, L, device=device)
        decision = dispatch.explain("long_conv", u, k, None)
        print(f"long_conv L={L} on {device}: auto -> {decision.backend} ({decision.source})")
        for name, reason in decision.skipped.items():
            print(f"    {name}: {reason}")

    # forcing a backend: per call, for a block, or with $SEQLAYERS_CONV_BACKEND
    u, k = torch.randn(2, 8, 1000, device=device), torch.randn(8, 1000, device=device)
    y = long_conv(u, k, backend="torch")
    with use_backend("naive", op="long_conv"):
        y_naive = long_conv(u, k)
    print(f"torch vs naive long_conv: max |diff| {(y - y_naive).abs().max().item():.2e}")

    # the native extension: asking for it by name builds it once (10-20 s, needs a C++ compiler
    # and ninja), caches it, and from then on "auto" picks it on the CPU
    gen = seqlayers.kernels.S4DKernel(256, 64)
    dA, dB = seqlayers.kernels.discretize(gen.A, gen.log_dt, "zoh")
    v, z = (torch.view_as_complex(gen.C) * dB).detach(), dA.detach()
    for backend in ("torch", "native"):
        try:
            ms = timed(lambda: vandermonde(v, z, 16384, backend=backend))
        except BackendUnavailableError as error:
            print(f"{backend}: {error}")
            continue
        print(f"S4D kernel, H=256, N=64, L=16K, {backend:6s}: {ms:6.1f} ms")

if __name__ == "__main__":
    main()
