"""Kernel generation speed: every kernel generator against the length L, on the CPU.

For each generator (S4DKernel, SGConvKernel, LongConvKernel, and S5Kernel's modal kernel when
the package has it) and each L, measures the time of ``gen(L)`` without autograd (forward) and of
``gen(L).sum().backward()`` (forward+backward), and counts the generator's parameters. Sizes
that would take longer than ``--max-seconds`` per measurement (extrapolated linearly from the
previous L) or need more than ``--max-gib`` of memory are skipped and marked in the table.

    python benchmarks/speed/kernels.py            # L = 1K, 4K, ..., 1M; H = 256
    python benchmarks/speed/kernels.py --quick    # L = 1K .. 16K, H = 64, one repetition

Prints a Markdown table and writes benchmarks/results/kernels_cpu{,_quick}.{md,csv,png}.
"""

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import torch

import seqlayers
from seqlayers.kernels import LongConvKernel, S4DKernel, SGConvKernel

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Peak memory of one forward+backward, in units of the generator's float32 output (a rough,
# conservative bound: intermediates of smoothing / squash / interpolation and their gradients).
MEMORY_FACTOR = 8


def cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def generators(H: int, d_state: int, kernel_dim: int) -> dict:
    """Name -> (factory of a generator for length L, function computing its kernel)."""
    gens = {
        f"S4DKernel(N={d_state})": (lambda L: S4DKernel(H, d_state), lambda g, L: g(L)),
        f"SGConvKernel(d={kernel_dim})": (lambda L: SGConvKernel(H, L, kernel_dim=min(kernel_dim, L)), lambda g, L: g(L)),
        "LongConvKernel(smooth=7)": (lambda L: LongConvKernel(H, L), lambda g, L: g(L)),
    }
    if hasattr(seqlayers.kernels, "S5Kernel"):
        gens[f"S5Kernel(P={d_state}) modal"] = (
            lambda L: seqlayers.kernels.S5Kernel(H, d_state),
            lambda g, L: torch.view_as_real(g.modal_kernel(L)),
        )
    return gens


def timed(fn, reps: int, budget: float) -> float:
    """Median seconds of ``fn()`` over up to ``reps`` runs (fewer once they add up to ``budget``)."""
    times = []
    while len(times) < reps:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget:
            break
    return sorted(times)[len(times) // 2]


def measure(make, compute, L: int, reps: int, budget: float) -> tuple[int, int, float, float]:
    """Parameter count, output floats per tap, median seconds of forward and of forward+backward."""
    gen = make(L)
    n_params = sum(p.numel() for p in gen.parameters())
    with torch.no_grad():
        warm = min(L, 1024)
        floats_per_tap = compute(gen, warm).numel() // warm  # the warm-up also stores SGConv's norm

        def forward():
            compute(gen, L)

        fwd = timed(forward, reps, budget / 4)

    def forward_backward():
        compute(gen, L).sum().backward()

    return n_params, floats_per_tap, fwd, timed(forward_backward, reps, budget / 4)


def run(args) -> list[dict]:
    rows = []
    for name, (make, compute) in generators(args.d_model, args.d_state, args.kernel_dim).items():
        last = None  # (L, seconds of forward+backward, output floats per tap)
        for L in args.lengths:
            row = {"generator": name, "L": L, "H": args.d_model, "params": "", "forward_ms": "", "fwd_bwd_ms": ""}
            gib = None if last is None else MEMORY_FACTOR * last[2] * L * 4 / 2**30
            predicted = None if last is None else last[1] * L / last[0]
            if gib is not None and gib > args.max_gib:
                row["note"] = f"skipped: needs about {gib:.0f} GiB > --max-gib {args.max_gib:g}"
            elif predicted is not None and predicted > args.max_seconds:
                row["note"] = f"skipped: about {predicted:.0f} s per run > --max-seconds {args.max_seconds:g}"
            else:
                n_params, floats_per_tap, fwd, fwd_bwd = measure(make, compute, L, args.reps, args.max_seconds)
                row.update(params=n_params, forward_ms=round(1e3 * fwd, 2), fwd_bwd_ms=round(1e3 * fwd_bwd, 2), note="")
                last = (L, fwd_bwd, floats_per_tap)
            rows.append(row)
            print(f"  {name:<28} L={L:>8}  {row['forward_ms']!s:>9} ms  {row['fwd_bwd_ms']!s:>9} ms  {row['note']}", flush=True)
    return rows


def fmt_len(L: int) -> str:
    return f"{L // 2**20}M" if L % 2**20 == 0 else f"{L // 1024}K" if L % 1024 == 0 else str(L)


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| generator | L | params | forward (ms) | forward+backward (ms) | note |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] != "" else ""
        lines.append(
            f"| {r['generator']} | {fmt_len(r['L'])} | {params} | {r['forward_ms']} | {r['fwd_bwd_ms']} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, name in enumerate(dict.fromkeys(r["generator"] for r in rows)):
        done = [r for r in rows if r["generator"] == name and r["forward_ms"] != ""]
        Ls = [r["L"] for r in done]
        ax.plot(Ls, [r["forward_ms"] for r in done], "o-", color=f"C{i}", label=f"{name} forward")
        ax.plot(Ls, [r["fwd_bwd_ms"] for r in done], "s--", color=f"C{i}", label=f"{name} fwd+bwd")
    ax.set(xscale="log", yscale="log", xlabel="kernel length L", ylabel="milliseconds", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 1K..16K, H = 64, one repetition")
    parser.add_argument("--d-model", type=int, default=256, help="H (default 256; 64 with --quick)")
    parser.add_argument("--d-state", type=int, default=64, help="N of S4D and P of S5")
    parser.add_argument("--kernel-dim", type=int, default=64, help="kernel_dim of SGConv")
    parser.add_argument("--max-length", type=int, default=2**20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="skip a size predicted to take longer per run")
    parser.add_argument("--max-gib", type=float, default=4.0, help="skip a size predicted to need more memory")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.d_model, args.max_length, args.reps = 64, min(args.max_length, 2**14), 1
    args.lengths = [1024 * 4**j for j in range(11) if 1024 * 4**j <= args.max_length]

    machine = (
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
        f"(threads={torch.get_num_threads()}), load average at start {os.getloadavg()[0]:.1f}"
    )
    sizes = (
        f"H = {args.d_model}, one channel; S4D d_state = {args.d_state}; SGConv kernel_dim = "
        f"{args.kernel_dim}, l_max = L; LongConv l_max = L, smooth 7, lambda 0.001 (the default); S5 (if present): "
        f"its modal kernel (P/2 complex modes x L, no H; P = d_state, 8 blocks); median of "
        f"up to {args.reps} runs; forward without autograd, forward+backward of kernel.sum()"
    )
    print(f"machine: {machine}\nsizes: {sizes}", flush=True)
    rows = run(args)
    stem = "kernels_cpu_quick" if args.quick else "kernels_cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    header = f"# Kernel generation time on the CPU\n\nMachine: {machine}.\n\nSizes: {sizes}."
    table = markdown(rows, header)
    print("\n" + table)
    (args.out / f"{stem}.md").write_text(table)
    with open(args.out / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / f"{stem}.png", f"kernel generation, CPU, H = {args.d_model}")
    print(f"wrote {args.out / stem}.{{md,csv,png}}")


if __name__ == "__main__":
    main()
