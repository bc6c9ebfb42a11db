"""Time and peak memory of S4D kernel generation (``seqlayers.ops.vandermonde``) per backend.

For each length, every backend computes ``K = vandermonde(C * dB, dA, L)`` of an S4D layer
(``H`` features, ``d_state`` = N, i.e. N/2 complex modes), forward and forward+backward, each
measurement in a fresh subprocess: time is the median of ``--repeats`` runs after a warm-up;
memory is the growth of the peak resident set size over the size just before the first full-size
call (after a tiny warm-up call, and with the upstream gradient already allocated), so allocator
caches of one backend do not leak into the next and one-time costs are not counted. Ratios are against ``"torch"``.
The naive backend materializes ``(H, N/2, L)`` powers and is skipped above ``--naive-max``.
On a GPU (``--device cuda``) memory is the growth of ``torch.cuda.max_memory_allocated``.

    python benchmarks/speed/kernel_gen.py                     # H=256, N=64, L = 4K, 16K, 64K
    python benchmarks/speed/kernel_gen.py --markdown results.md --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from machine import describe  # benchmarks/speed/machine.py, beside this script


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(backend: str, H: int, N: int, L: int, backward: bool, repeats: int, threads: int,
            device: str = "cpu") -> dict:
    import torch

    import seqlayers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = seqlayers.kernels.S4DKernel(H, N)
    dA, dB = seqlayers.kernels.discretize(gen.A, gen.log_dt, "zoh")
    v = (torch.view_as_complex(gen.C) * dB).detach().to(device)
    z = dA.detach().to(device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    shape = (*v.shape[:-1], L)
    grad = torch.randn(shape, device=device) if backward else None  # upstream gradient, not the op's

    def run(length: int = L):
        vv, zz = v.requires_grad_(backward), z.requires_grad_(backward)
        K = seqlayers.ops.vandermonde(vv, zz, length, backend=backend)
        if backward:
            torch.autograd.backward(K, grad[..., :length])
            vv.grad = zz.grad = None
        return K

    run(8)  # one-time costs (thread pool, autograd engine, loading the extension) before `before`
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _current_rss_bytes()
    K = run()
    sync()
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return {
        "peak_mib": (peak - before) / 2**20,
        "output_mib": K.numel() * K.element_size() / 2**20,
        "seconds": statistics.median(times),
    }


def _child(args, backend: str, L: int, backward: bool) -> dict | str:
    cmd = [
        sys.executable, __file__, "--H", str(args.H), "--N", str(args.N), "--repeats", str(args.repeats),
        "--threads", str(args.threads), "--device", args.device, "--child", backend, str(L), str(int(backward)),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--N", type=int, default=64, help="d_state (N/2 complex modes)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--backends", nargs="+", default=["naive", "torch", "native"])
    parser.add_argument("--naive-max", type=int, default=16384, help="longest L for the naive backend")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (memory: max_memory_allocated)")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, L, backward = args.child[0], int(args.child[1]), args.child[2] == "1"
        print(json.dumps(measure(backend, args.H, args.N, L, backward, args.repeats, args.threads, args.device)))
        return
    if "native" in args.backends:  # build once up front, so no child pays for compiling
        from seqlayers import _native

        ok, reason = _native.LIBRARY.load(build=True)
        if not ok:
            print(f"native backend unavailable: {reason}")
            args.backends = [b for b in args.backends if b != "native"]
    head = (f"vandermonde (S4D kernel generation), H={args.H}, N={args.N} ({args.N // 2} complex modes), "
            f"complex64 -> float32, {args.device}, median of {args.repeats}; {describe(args.threads)}")
    cols = "| L | pass | backend | ms | time / torch | peak MiB | output MiB | peak / output |"
    lines = [head, "", cols, "|" + "---|" * 8]
    print("\n".join(lines), flush=True)
    for L in args.lengths:
        for backward in (False, True):
            results = {}
            for backend in args.backends:
                if backend == "naive" and L > args.naive_max:
                    continue
                results[backend] = _child(args, backend, L, backward)
            base = results.get("torch")
            for backend, r in results.items():
                label = "fwd+bwd" if backward else "fwd"
                if isinstance(r, str):
                    row = f"| {L} | {label} | {backend} | failed: {r} | | | | |"
                else:
                    ratio = r["seconds"] / base["seconds"] if isinstance(base, dict) else float("nan")
                    row = (f"| {L} | {label} | {backend} | {1e3 * r['seconds']:.1f} | {ratio:.2f} | "
                           f"{r['peak_mib']:.0f} | {r['output_mib']:.0f} | {r['peak_mib'] / r['output_mib']:.2f} |")
                lines.append(row)
                print(row, flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
