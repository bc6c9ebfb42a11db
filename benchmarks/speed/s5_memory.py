"""S5 conv mode vs scan mode at long lengths: peak resident memory and time of one forward pass.

Each (mode, L) runs in a fresh process, so its peak RSS (``ru_maxrss``, imports included: about
0.4 GiB) is its own; the table also gives the size of the output for scale. Run it against another checkout (the code before a
change, say) with ``--src PATH``.

    python benchmarks/speed/s5_memory.py                       # L = 2^16 .. 2^20, H = 4, P = 64
    python benchmarks/speed/s5_memory.py --src /tmp/old --label before --out table.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import describe  # benchmarks/speed/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
import seqlayers
mode, L, H = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
layer = seqlayers.S5(H, mode=mode).eval()
x = torch.randn(1, L, H)
with torch.no_grad():
    layer(x[:, :64])  # one-time costs (backend imports, first dispatch) stay out of the timing
    start = time.perf_counter()
    y = layer(x)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "finite": bool(torch.isfinite(y).all())}))
"""


def run(src: Path, mode: str, L: int, H: int, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(L), str(H), str(threads)], env=env,
                          capture_output=True, text=True, cwd=src)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--src", type=Path, default=ROOT, help="checkout whose seqlayers is measured")
    parser.add_argument("--label", default="after", help="name of the checkout in the table")
    parser.add_argument("--log2-lengths", type=int, nargs="+", default=[16, 17, 18, 19, 20])
    parser.add_argument("--H", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="append the rows (Markdown) to this file")
    args = parser.parse_args()
    rows = []
    for log2 in args.log2_lengths:
        L = 1 << log2
        output_mib = L * args.H * 4 / 2**20
        for mode in ("scan", "conv"):
            r = run(args.src, mode, L, args.H, args.threads)
            if "error" in r:
                row = f"| {args.label} | 2^{log2} | {mode} | - | - | {output_mib:.1f} | {r['error']} |"
            else:
                row = (f"| {args.label} | 2^{log2} | {mode} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | "
                       f"{output_mib:.1f} | {'' if r['finite'] else 'non-finite output'} |")
            print(row, flush=True)
            rows.append(row)
    if args.out:
        with args.out.open("a") as f:
            f.write("\n".join(rows) + "\n")
    print(f"# {describe(args.threads)}; S5(H={args.H}, d_state=64), B = 1, forward under no_grad")


if __name__ == "__main__":
    main()
