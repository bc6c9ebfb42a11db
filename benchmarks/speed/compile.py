"""Eager against ``torch.compile`` (Inductor), forward+backward, for every layer family, in one run.

For each layer, the same module and inputs run eagerly and compiled (``fullgraph=True``; the
compile itself is warmed up and not timed); time is the median of ``--repeats`` steps of
forward, a sum of squares, and backward. The table prints the milliseconds side by side and the
ratio eager / compiled (above 1: compiled is faster), plus the compile time. On CUDA it also
prints the peak memory of each step.

    python benchmarks/speed/compile.py                       # B=2, L=256, H=32, CPU, 1 thread
    python benchmarks/speed/compile.py --B 8 --L 4096 --H 256 --device cuda --markdown out.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import seqlayers

LAYERS = {
    "S4D": lambda H, L: seqlayers.S4D(H, d_state=64),
    "S5 (scan)": lambda H, L: seqlayers.S5(H, d_state=64, blocks=8, mode="scan"),
    "S5 (conv)": lambda H, L: seqlayers.S5(H, d_state=64, blocks=8, mode="conv"),
    "SGConv": lambda H, L: seqlayers.SGConv(H, L, kernel_dim=32),
    "LongConv": lambda H, L: seqlayers.LongConv(H, L),
    "LongConv (learned butterfly)": lambda H, L: seqlayers.LongConv(H, L, learned_butterfly=True),
}


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def step_ms(fn, x, repeats: int, device: torch.device) -> tuple[float, float | None]:
    """Median ms of forward + backward of ``fn(x)``, and the peak memory (MB, CUDA only)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run():
        fn(x).square().sum().backward()

    run()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return statistics.median(times), peak


def measure(name: str, B: int, L: int, H: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    layer = LAYERS[name](H, L).to(device)
    x = torch.randn(B, L, H, device=device, requires_grad=True)
    eager, eager_mb = step_ms(layer, x, repeats, device)
    compiled = torch.compile(layer, fullgraph=True)
    start = time.perf_counter()
    compiled(x).square().sum().backward()  # compile forward and backward
    compile_s = time.perf_counter() - start
    fast, fast_mb = step_ms(compiled, x, repeats, device)
    return dict(layer=name, eager=eager, compiled=fast, ratio=eager / fast, compile_s=compile_s,
                eager_mb=eager_mb, compiled_mb=fast_mb)


def table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| layer | eager ms | compiled ms | eager / compiled | compile s | peak MB eager / compiled |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        mem = "n/a" if r["eager_mb"] is None else f"{r['eager_mb']:.0f} / {r['compiled_mb']:.0f}"
        lines.append(f"| {r['layer']} | {r['eager']:.2f} | {r['compiled']:.2f} | {r['ratio']:.2f} | "
                     f"{r['compile_s']:.1f} | {mem} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--B", type=int, default=2)
    parser.add_argument("--L", type=int, default=256)
    parser.add_argument("--H", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", nargs="*", default=list(LAYERS), choices=list(LAYERS))
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{cpu_name()}, {args.threads} thread(s)")
    header = (f"eager vs torch.compile (Inductor, fullgraph), forward+backward, B={args.B}, L={args.L}, "
              f"H={args.H}, median of {args.repeats}; torch {torch.__version__}; {where}")
    rows = []
    for name in args.layers:
        rows.append(measure(name, args.B, args.L, args.H, args.repeats, device))
        print(f"{name}: eager {rows[-1]['eager']:.2f} ms, compiled {rows[-1]['compiled']:.2f} ms", flush=True)
    text = table(rows, header)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
