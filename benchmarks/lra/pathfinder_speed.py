"""Time the Pathfinder generator per image against an earlier version of it (from git).

    python benchmarks/lra/pathfinder_speed.py                       # against the Python-level generator
    python benchmarks/lra/pathfinder_speed.py --reference HEAD~3 --rounds 5

For each task's published generator settings (``pathfinder`` 32 px, ``pathx`` 128 px,
``path256`` 256 px: ``data.generate`` of ``configs/<task>.yaml``) both versions draw a split of
balanced labels through ``generate_split``, in alternating rounds so that a busy machine slows
both alike; the median per-image time of the rounds is reported, with the speed-up. Runs on
one thread. Prints a Markdown table (the one in ``benchmarks/results/pathfinder_gen_cpu.md``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `benchmarks.lra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from benchmarks.lra import cli
from benchmarks.lra import config as config_lib
from benchmarks.lra.data import pathfinder

REPO = Path(__file__).resolve().parents[2]
# the last commit whose generator drew one segment and one pixel at a time
PYTHON_LEVEL_GENERATOR = "9127f5c"
TASKS = ("pathfinder", "pathx", "path256")


def load_reference(commit: str):
    """The ``benchmarks.lra.data.pathfinder`` module as of ``commit`` (read with ``git show``)."""
    source = subprocess.run(["git", "show", f"{commit}:benchmarks/lra/data/pathfinder.py"], cwd=REPO,
                            capture_output=True, text=True)
    if source.returncode:
        raise cli.UserError(f"--reference {commit}: {source.stderr.strip()}")
    path = Path(tempfile.mkdtemp()) / "pathfinder_reference.py"
    path.write_text(source.stdout)
    # a name inside the package, so that its relative imports (.common, .image) resolve
    spec = importlib.util.spec_from_file_location("benchmarks.lra.data._pathfinder_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def per_image(module, spec_cfg: dict, n: int, seed: int) -> float:
    """Seconds per image of ``module.generate_split`` on ``n`` images."""
    spec = module.from_config(spec_cfg)
    start = time.perf_counter()
    module.generate_split(spec, n, np.random.default_rng(seed))
    return (time.perf_counter() - start) / n


def cpu_name() -> str:
    """The CPU's model name (``lscpu``), or the platform's processor string."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--reference", default=PYTHON_LEVEL_GENERATOR, help="git commit of the generator compared with")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per size (median reported)")
    parser.add_argument("--images", type=int, nargs=2, default=(16, 1000), metavar=("OLD", "NEW"),
                        help="images per round at 32 px for the reference and the current generator "
                             "(divided by side / 32 at larger sides); the current one draws them in batches, "
                             "as make_data does, so its time per image depends on how many")
    cli.add_common_flags(parser, threads=False)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    reference = load_reference(args.reference)
    print(f"CPU: {cpu_name()}, 1 thread, numpy {np.__version__}, Python {platform.python_version()}")
    print(f"reference: generator at {args.reference}; current: working tree\n")
    print("| task | side | settings | images per round (before / after) | before (ms / image) "
          "| after (ms / image) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for task in TASKS:
        cfg = config_lib.resolve(task, "s4d", "paper")["data"]["generate"]
        spec_cfg = {k: v for k, v in cfg.items() if not k.startswith("n_")}
        scale = spec_cfg["side"] // 32
        n_old, n_new = max(2, args.images[0] // scale), max(16, args.images[1] // scale)
        old, new = [], []
        for r in range(args.rounds):
            old.append(per_image(reference, spec_cfg, n_old, seed=r))
            new.append(per_image(pathfinder, spec_cfg, n_new, seed=r))
        before, after = statistics.median(old) * 1e3, statistics.median(new) * 1e3
        settings = f"{spec_cfg['contour_length']} segments, {spec_cfg['distractors']} distractors, gap {spec_cfg['gap']}"
        print(f"| {task} | {spec_cfg['side']} | {settings} | {n_old} / {n_new} | {before:.1f} | {after:.2f} "
              f"| {before / after:.0f}x |", flush=True)


if __name__ == "__main__":
    cli.run(main)
