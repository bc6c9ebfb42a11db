"""Speed of every available long_conv backend against "torch": forward and forward+backward.

For each dtype and (B, H, L) of the grid, with a full-length float32 kernel (Lk = L) and a skip
term, it times each backend (median of CUDA-event timings on a GPU, wall clock on the CPU) and
prints one table: time, speedup over "torch" (torch time / backend time, > 1 is faster),
achieved bandwidth (the bytes a perfect kernel must move: read u, k, D and write y; plus read
dy and write du, dk, dD for the backward), extra peak memory over the inputs, and the relative
RMS error of the forward output against "torch". The table is saved as CSV and Markdown in
``benchmarks/results/conv_<device>.{csv,md}``.

    python benchmarks/speed/conv.py                     # B=16, H=768, L=1K..64K, fp32 and bf16
    TRITON_INTERPRET=1 python benchmarks/speed/conv.py --quick    # tiny sizes on a CPU; saves
                                                                  # nothing unless --out is given

``--write-policy seqlayers/ops/conv/policy.json`` also writes the fastest backend per (dtype, L
bucket, B*H bucket) measured here into the table that ``backend="auto"`` ships with (see
``seqlayers.ops.policy``), replacing this device's entries.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import platform
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from seqlayers.ops import long_conv, policy  # noqa: E402
from seqlayers.ops.dispatch import (  # noqa: E402
    BackendUnavailableError,
    registered_backends,
    resolve,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
COLUMNS = ["dtype", "B", "H", "L", "backend", "mode", "ms", "speedup", "GB/s", "peak_MiB",
           "rel_err"]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def timed(fn, device: torch.device, warmup: int, reps: int) -> float:
    """Median milliseconds of ``fn()`` over ``reps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_mib(fn, device: torch.device) -> float | None:
    """Peak memory allocated by one ``fn()`` beyond what was allocated before, in MiB."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def min_bytes(B: int, H: int, L: int, dtype: torch.dtype, backward: bool) -> int:
    """Bytes a perfect implementation moves: inputs read once, outputs written once."""
    act = B * H * L * torch.tensor([], dtype=dtype).element_size()
    params = H * L * 4 + H * 4
    fwd = 2 * act + params
    return fwd + 3 * act + 2 * params if backward else fwd


def backends_to_run(names: list[str] | None) -> list[str]:
    """The requested backends, or every available one that ``"auto"`` may pick; "torch" first."""
    if names is None:
        names = [b.name for b in registered_backends("long_conv") if b.auto and b.is_available()[0]]
    return ["torch"] + [n for n in names if n != "torch"]


def run_case(name, dtype_name, B, H, L, device, args, reference):
    """Rows (forward, forward+backward) for one backend and shape; None where it cannot run."""
    dtype = DTYPES[dtype_name]
    g = torch.Generator(device="cpu").manual_seed(0)
    u = torch.randn(B, H, L, generator=g).to(device=device, dtype=dtype)
    k = (torch.randn(H, L, generator=g) / L**0.5).to(device)
    D = torch.randn(H, generator=g).to(device)
    try:
        resolve("long_conv", name, u, k, D)
    except BackendUnavailableError as exc:
        print(f"  skip {name} {dtype_name} {B}x{H}x{L}: {exc}", file=sys.stderr)
        return []
    rows = []
    with torch.no_grad():
        y = long_conv(u, k, D, backend=name)
    if name == "torch":
        reference[(dtype_name, B, H, L)] = y.float()
    ref = reference.get((dtype_name, B, H, L))
    err = float((y.float() - ref).norm() / ref.norm()) if ref is not None else float("nan")
    del y

    def forward():
        with torch.no_grad():
            long_conv(u, k, D, backend=name)

    ug, kg, Dg = (t.detach().clone().requires_grad_() for t in (u, k, D))
    dy = torch.randn_like(u)

    def forward_backward():
        ug.grad = kg.grad = Dg.grad = None
        long_conv(ug, kg, Dg, backend=name).backward(dy)

    for mode, fn in (("fwd", forward), ("fwd+bwd", forward_backward)):
        try:
            ms = timed(fn, device, args.warmup, args.reps)
            peak = peak_mib(fn, device)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows.append(dict(dtype=dtype_name, B=B, H=H, L=L, backend=name, mode=mode, ms="OOM"))
            continue
        except Exception as exc:  # keep the rest of the table when one backend fails
            traceback.print_exc()
            rows.append(dict(dtype=dtype_name, B=B, H=H, L=L, backend=name, mode=mode,
                             ms=f"error: {type(exc).__name__}"))
            continue
        gbs = min_bytes(B, H, L, dtype, mode != "fwd") / (ms * 1e-3) / 1e9
        rows.append(dict(dtype=dtype_name, B=B, H=H, L=L, backend=name, mode=mode, ms=ms,
                         GBs=gbs, peak=peak, err=err))
    return rows


def fmt(row: dict, torch_ms: dict) -> dict:
    """One table row as strings, with the speedup over "torch" on the same case."""
    key = (row["dtype"], row["B"], row["H"], row["L"], row["mode"])
    ms = row["ms"]
    base = torch_ms.get(key)
    number = isinstance(ms, float)
    return {
        "dtype": row["dtype"], "B": str(row["B"]), "H": str(row["H"]), "L": str(row["L"]),
        "backend": row["backend"], "mode": row["mode"],
        "ms": f"{ms:.3f}" if number else str(ms),
        "speedup": f"{base / ms:.2f}x" if number and isinstance(base, float) else "-",
        "GB/s": f"{row['GBs']:.3g}" if number else "-",
        "peak_MiB": f"{row['peak']:.0f}" if number and row.get("peak") is not None else "-",
        "rel_err": f"{row['err']:.1e}" if number else "-",
    }


def markdown(rows: list[dict], title: str) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_policy(raw: list[dict], device: torch.device, path: Path) -> None:
    """Write the fastest backend that ``"auto"`` may pick per (dtype, L bucket, B*H bucket) into
    the shipped table at ``path``, replacing the entries of this device's name.

    Fastest by forward+backward time where measured (training), else by forward time; where
    several shapes share a bucket, by the summed time over the shapes every compared backend ran.
    """
    auto = {b.name for b in registered_backends("long_conv") if b.auto}
    times = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in raw:
        if isinstance(r["ms"], float) and r["backend"] in auto:
            key = (policy.dtype_name(DTYPES[r["dtype"]]), policy.bucket(r["L"]),
                   policy.bucket(r["B"] * r["H"]))
            times[key, r["mode"]][r["backend"]].append(r["ms"])
    decisions = {}
    for (key, mode), by_backend in times.items():
        if mode == "fwd" and (key, "fwd+bwd") in times:
            continue
        most = max(len(v) for v in by_backend.values())
        totals = {name: sum(v) for name, v in by_backend.items() if len(v) == most}
        decisions[key] = min(totals, key=totals.get)
    pattern = policy.device_name(device)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table = table if isinstance(table, dict) else {}
    kept = [e for e in table.get("entries", []) if isinstance(e, dict) and e.get("device") != pattern]
    new = [{"device": pattern, "dtype": dtype, "L": L, "width": width, "backend": backend}
           for (dtype, L, width), backend in sorted(decisions.items())]
    table.update(format=policy.FORMAT, op="long_conv", entries=kept + new)
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(decisions)} 'auto' decisions for {pattern!r} to {path}")


def save_tables(rows: list[dict], name: str, out: Path, quick: bool) -> None:
    """The table as ``conv_<device>[_quick].csv`` and ``.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"conv_{slug(name)}{'_quick' if quick else ''}"
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    title = f"long_conv speed on {name} (torch {torch.__version__})"
    stem.with_suffix(".md").write_text(markdown(rows, title))
    print(f"saved {stem}.csv and {stem}.md")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (B=2, H=4, L=64, 256), for a CPU")
    parser.add_argument("--batch", type=int, nargs="+", default=[16])
    parser.add_argument("--heads", type=int, nargs="+", default=[768])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["fp32", "bf16"])
    parser.add_argument("--backends", nargs="+", default=None,
                        help="backend names (default: every available one 'auto' may pick)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the CSV and Markdown tables (default benchmarks/results; "
                             "--quick writes nothing unless given)")
    parser.add_argument("--write-policy", type=Path, default=None, metavar="PATH",
                        help="also write the fastest backend per bucket into this shipped table "
                             "(seqlayers/ops/conv/policy.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.heads, args.lengths = [2], [4], [64, 256]
        args.warmup, args.reps = 1, 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = device_name(device)
    backends = backends_to_run(args.backends)
    print(f"long_conv on {name}: backends {backends}; Lk = L, float32 kernel, with D", flush=True)

    raw, reference = [], {}
    for dtype_name in args.dtypes:
        for B in args.batch:
            for H in args.heads:
                for L in args.lengths:
                    for backend in backends:
                        raw += run_case(backend, dtype_name, B, H, L, device, args, reference)
                    reference.clear()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
    torch_ms = {(r["dtype"], r["B"], r["H"], r["L"], r["mode"]): r["ms"]
                for r in raw if r["backend"] == "torch"}
    rows = [fmt(r, torch_ms) for r in raw]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) if rows else len(c) for c in COLUMNS}
    print("  ".join(c.rjust(widths[c]) for c in COLUMNS))
    for r in rows:
        print("  ".join(r[c].rjust(widths[c]) for c in COLUMNS))

    if args.out is not None or not args.quick:  # quick interpreter timings would only mislead
        save_tables(rows, name, args.out or ROOT / "benchmarks" / "results", args.quick)
    if args.write_policy is not None:
        write_policy(raw, device, args.write_policy)


if __name__ == "__main__":
    main()
