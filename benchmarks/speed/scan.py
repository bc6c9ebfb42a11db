"""Speed of ``linear_scan`` backends against the sequential loop and against conv mode.

The recurrence ``h_t = a * h_{t-1} + b_t`` with a time-invariant decay ``a`` (one per state, as in
S5, passed as the shared decay ``(1, 1, P)`` the S5 layer passes) is computed five ways:

* ``loop``: the ``"naive"`` backend, one Python step per position (only for L <= 4096);
* ``torch``: the blocked pure-PyTorch scan;
* ``native``: the C++ kernels (CPU only; built here if needed, "-" when they cannot be);
* ``triton``: the Triton kernels (CUDA only; "-" elsewhere);
* ``conv``: the ``"conv"`` backend (S5's conv mode), ``h[:, :, p] = conv(b[:, :, p], a_p ** l)``
  through ``seqlayers.ops.long_conv`` (complex states as four real convolutions).

Times are the best of ``--repeats`` runs after a warm-up, forward ("fwd") and forward plus
backward ("f+b", with gradients for ``a`` and ``b``). Ratios are time / time of ``torch``: above 1
means slower than the blocked scan. Two shapes by default: a wide one (B=4, P=256), where even the
loop moves a lot of data per step, and a narrow one (B=1, P=32), where per-step overhead rules.
Prints one Markdown table; without ``--quick`` it also writes it to
``benchmarks/results/scan_<device>.md`` with the machine named.

    python benchmarks/speed/scan.py --threads 1   # complex64, L = 1K .. 64K
    python benchmarks/speed/scan.py --quick       # a few seconds, nothing written
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from machine import describe  # benchmarks/speed/machine.py, beside this script

import seqlayers
from seqlayers import _native
from seqlayers.ops import linear_scan

LOOP_MAX_L = 4096
RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine(device: str) -> str:
    text = f"{describe(torch.get_num_threads())}, torch {torch.__version__}"
    return text + (f", {torch.cuda.get_device_name()}" if device == "cuda" else "")


def make_problem(B: int, L: int, P: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mag = 1 - torch.rand(P, generator=g) * 0.1
    a_state = torch.polar(mag, torch.rand(P, generator=g) * 3.14).to(device)
    b = torch.randn(B, L, P, generator=g, dtype=torch.complex64).to(device)
    return a_state, b


def best_time(fn, repeats: int, device: str) -> float:
    """Best wall time of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def methods(device: str) -> dict:
    def scan(backend):  # the shared decay (1, 1, P), as the S5 layer passes it
        return lambda a_state, b: linear_scan(a_state.view(1, 1, -1), b, backend=backend)

    out = {"loop": scan("naive"), "torch": scan("torch"), "conv": scan("conv")}
    if "triton" in seqlayers.ops.available_backends("linear_scan") and device == "cuda":
        out["triton"] = scan("triton")
    if device == "cpu" and _native.LIBRARY.load(build=True)[0]:
        out["native"] = scan("native")
    return out


def measure(fn, a_state, b, repeats, device) -> tuple[float, float]:
    with torch.no_grad():
        fwd = best_time(lambda: fn(a_state, b), repeats, device)
    a_leaf = a_state.clone().requires_grad_()
    b_leaf = b.clone().requires_grad_()
    grad = torch.randn_like(b)

    def step():
        a_leaf.grad = b_leaf.grad = None
        fn(a_leaf, b_leaf).backward(grad)

    return fwd, best_time(step, repeats, device)


def check_agreement(device: str) -> float:
    a_state, b = make_problem(2, 300, 8, device)
    want = linear_scan(a_state.expand_as(b), b, backend="naive")
    return max((fn(a_state, b) - want).abs().max().item() for fn in methods(device).values())


def run(args) -> str:
    names = ["loop", "native", "triton", "conv"]
    header = ["B", "P", "L"] + [f"torch {k} ms" for k in ("fwd", "f+b")]
    for name in names:
        header += [f"{name}/torch fwd", f"{name}/torch f+b"]
    rows = []
    impls = methods(args.device)
    for batch, states, L in [(*shape, L) for shape in args.shapes for L in args.lengths]:
        a_state, b = make_problem(batch, L, states, args.device)
        base_fwd, base_fb = measure(impls["torch"], a_state, b, args.repeats, args.device)
        row = [str(batch), str(states), str(L), f"{1e3 * base_fwd:.1f}", f"{1e3 * base_fb:.1f}"]
        for name in names:
            if name not in impls or (name == "loop" and L > LOOP_MAX_L):
                row += ["-", "-"]
                continue
            fwd, fb = measure(impls[name], a_state, b, args.repeats, args.device)
            row += [f"{fwd / base_fwd:.2f}", f"{fb / base_fb:.2f}"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat, nothing written")
    parser.add_argument(
        "--shapes", nargs="+", default=["4x256", "1x32"], help="BxP: batch x complex states"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.shapes, args.lengths, args.repeats = ["2x32"], [256, 1024], 1
    args.shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes]
    error = check_agreement(args.device)
    settings = (
        f"complex64 states, time-invariant decay, best of {args.repeats} after a warm-up; "
        f"max |error| of every method vs the loop at L = 300: {error:.1e}"
    )
    print(f"{machine(args.device)}\n{settings}")
    table = run(args)
    print(table)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"scan_{args.device}.md"
        path.write_text(
            f"# linear_scan speed ({args.device})\n\nMachine: {machine(args.device)}\n\n{settings}\n\n"
            "Times of the `torch` backend in ms; other columns are time / time of `torch` "
            "(above 1: slower). `loop` is the `naive` backend, run only for L <= 4096; "
            "`native` is the C++ backend; "
            "`conv` is the `conv` backend (S5's conv mode: `long_conv`, torch backend); "
            "\"-\": not run.\n\n"
            f"Produced by `python benchmarks/speed/scan.py {' '.join(sys.argv[1:])}`.\n\n{table}\n"
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
