"""Registers, spills, shared memory and occupancy of every Triton kernel variant, per GPU target.

Compiles each variant the planners can choose (``tests/aot/kernels.py``, the same enumeration the
ahead-of-time gate ``tests/aot`` checks) for sm_80, sm_86 and sm_90 with the installed Triton, no
GPU needed, and reads the ``ptxas -v`` log of that compile (Triton's own ``ptxas`` call).
Occupancy is the resident warps per SM those resources allow: registers (65536 per SM, allocated
per warp in units of 256), shared memory per SM and the cap of 64 warps, in whole blocks. Writes
a section of ``benchmarks/results/kernels_resources.md`` named by ``--label`` (other sections
are kept, so a "before" and an "after" sit side by side)::

    python benchmarks/speed/kernel_resources.py --label after                 # everything
    python benchmarks/speed/kernel_resources.py --backend butterfly --target 90 --label before
    python benchmarks/speed/kernel_resources.py --subset ci                   # the gate's CI subset

``SEQLAYERS_AOT_JOBS`` sets the compile processes (default 2).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("TRITON_INTERPRET", "1")  # only planning here; the worker compiles without it

from machine import cpu_model  # noqa: E402  (benchmarks/speed/machine.py, beside this script)
from tests.aot import kernels as K  # noqa: E402

OUT = os.path.join(ROOT, "benchmarks", "results", "kernels_resources.md")


def _machine() -> str:
    return f"{platform.node()} ({cpu_model()}, {os.cpu_count()} CPUs, no GPU: compiled ahead of time)"


def measure(caps, backends, subset: str):
    """``[(cap, variant, resources)]`` for every variant (or the CI subset) of ``backends``."""
    pairs = []
    for cap in caps:
        vs = K.variants(cap, backends)
        pairs += [(cap, v) for v in (K.extremes(vs) if subset == "ci" else vs)]
    return [(cap, v, r) for (cap, v), r in zip(pairs, K.compile_all(pairs))]


def summary(rows) -> list[str]:
    """Per backend and target: variants, how many spill (and over 1 KB), the worst spill, the
    least occupancy, the most shared memory."""
    lines = ["| backend | target | variants | spilling | > 1 KB | worst spill (B/thread) | min warps/SM | max shared (B) |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, int], list] = {}
    for cap, v, r in rows:
        groups.setdefault((v.backend, cap), []).append((v, r))
    for (backend, cap), items in sorted(groups.items()):
        ok = [(v, r) for v, r in items if not r.error]
        spilling = [(v, r) for v, r in ok if r.spills]
        worst = max(ok, key=lambda vr: vr[1].spills, default=None)
        worst_s = f"{worst[1].spills} `{worst[0].name}`" if worst and worst[1].spills else "0"
        occ = min((K.occupancy(cap, v.num_warps, r) for v, r in ok), default=0)
        shared = max((r.shared for _, r in ok), default=0)
        errors = len(items) - len(ok)
        lines.append(f"| {backend} | sm_{cap} | {len(items)}{f' ({errors} failed)' if errors else ''} | "
                     f"{len(spilling)} | {sum(r.spills > 1024 for _, r in spilling)} | {worst_s} | {occ} | {shared} |")
    return lines


def table(rows) -> list[str]:
    lines = ["| backend | kernel and constexprs | target | warps | regs | spill st/ld (B) | shared (B) | warps/SM |",
             "|---|---|---|---|---|---|---|---|"]
    for cap, v, r in rows:
        if r.error:
            lines.append(f"| {v.backend} | `{v.name}` | sm_{cap} | {v.num_warps} | failed: {r.error[:80]} | | | |")
            continue
        lines.append(f"| {v.backend} | `{v.name}` | sm_{cap} | {v.num_warps} | {r.regs} | "
                     f"{r.spill_stores}/{r.spill_loads} | {r.shared} | {K.occupancy(cap, v.num_warps, r)} |")
    return lines


def section(label: str, rows, args, seconds: float) -> str:
    import triton

    head = [f"## {label}", "",
            f"Triton {triton.__version__}, ptxas `{K.ptxas_path(90)}`, {datetime.date.today().isoformat()}, "
            f"{_machine()}; backends {', '.join(args.backend)}, targets "
            f"{', '.join(f'sm_{c}' for c in args.target)}, {args.subset} enumeration, {len(rows)} compiles in "
            f"{seconds:.0f} s.", ""]
    return "\n".join(head + summary(rows) + ["", "<details><summary>every variant</summary>", ""]
                     + table(rows) + ["", "</details>", ""])


def write(label: str, text: str, path: str = OUT) -> None:
    """Replace (or append) the section ``## label`` of ``path``, keeping the others."""
    old = open(path).read() if os.path.exists(path) else (
        "# Triton kernel resources per GPU target\n\nWritten by `benchmarks/speed/kernel_resources.py`: "
        "registers and spill bytes per thread from the `ptxas -v` log of Triton's compile, shared memory "
        "from the compile's metadata, resident warps per SM they allow (65536 registers, shared memory "
        "per SM, at most 64 warps). Gated by `tests/aot`.\n\n")
    parts = re.split(r"(?m)^(?=## )", old)
    kept = [p for p in parts if not p.startswith(f"## {label}\n")]
    with open(path, "w") as f:
        f.write("".join(kept).rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", nargs="+", default=["butterfly", "fft", "scan"])
    parser.add_argument("--target", nargs="+", type=int, default=sorted(K.TARGETS))
    parser.add_argument("--subset", choices=["full", "ci"], default="full")
    parser.add_argument("--label", default="current")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    start = time.time()
    rows = measure(args.target, tuple(args.backend), args.subset)
    text = section(args.label, rows, args, time.time() - start)
    print(text)
    if not args.no_write:
        write(args.label, text)


if __name__ == "__main__":
    main()
