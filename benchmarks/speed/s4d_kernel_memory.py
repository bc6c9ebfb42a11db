"""Peak memory of S4D kernel generation: the blocked op against a naive (H, N/2, L) materialization.

Each measurement runs in a fresh subprocess and reports the growth of its peak resident set
size (ru_maxrss) over the resident size just before the kernel is computed, so allocator
caches of one run do not leak into the next. CPU only (on a GPU, use
torch.cuda.max_memory_allocated instead).

    python benchmarks/speed/s4d_kernel_memory.py --H 256 --N 64 --L 65536
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(variant: str, H: int, N: int, L: int, backward: bool) -> dict:
    import torch

    import seqlayers

    torch.manual_seed(0)
    gen = seqlayers.kernels.S4DKernel(H, N)
    dA, dB = seqlayers.kernels.discretize(gen.A, gen.log_dt, "zoh")
    backend = "torch" if variant == "blocked" else "naive"
    before = _current_rss_bytes()
    start = time.perf_counter()
    v = torch.view_as_complex(gen.C) * dB
    K = seqlayers.ops.vandermonde(v, dA, L, backend=backend)
    if backward:
        K.square().sum().backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "variant": variant,
        "backward": backward,
        "peak_mib": (peak - before) / 2**20,
        "output_mib": K.numel() * K.element_size() / 2**20,
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--L", type=int, default=65536)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "BACKWARD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child[0], args.H, args.N, args.L, args.child[1] == "1")
        print(json.dumps(result))
        return
    print(f"S4D kernel generation, H={args.H}, N={args.N} ({args.N // 2} complex modes), L={args.L}, CPU")
    print(f"{'variant':10s} {'pass':9s} {'peak MiB':>10s} {'output MiB':>11s} {'peak/output':>12s} {'seconds':>8s}")
    rows = []
    for variant in ("blocked", "naive"):
        for backward in (False, True):
            cmd = [sys.executable, __file__, "--H", str(args.H), "--N", str(args.N), "--L", str(args.L)]
            out = subprocess.run(cmd + ["--child", variant, str(int(backward))], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{variant:10s} {'fwd+bwd' if backward else 'fwd':9s} failed: {out.stderr.strip()[-200:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(
                f"{variant:10s} {'fwd+bwd' if backward else 'fwd':9s} {r['peak_mib']:10.0f} {r['output_mib']:11.0f} "
                f"{r['peak_mib'] / r['output_mib']:12.1f} {r['seconds']:8.2f}"
            )


if __name__ == "__main__":
    main()
