"""Write generated data in the LRA release formats, for offline end-to-end runs of the readers.

    python -m benchmarks.lra.make_data --task listops --out /tmp/lra
    python -m benchmarks.lra.make_data --task pathfinder --out /tmp/lra --n 2000 --set distractors=3
    python -m benchmarks.lra.make_data --task pathx --out /tmp/lra --n 500 --preset smoke
    python benchmarks/lra/train.py --task listops --data-dir /tmp/lra --preset smoke

The generator settings are the task config's ``data.generate`` for ``--preset`` (``paper`` by
default), changed by ``--set key=value``. ListOps writes ``listops-1000/basic_{train,val,test}.tsv``;
the Pathfinder tasks write ``pathfinder<side>/<difficulty>/{imgs,metadata}/`` with ``--n`` images
(the reader splits them 80/10/10). The output folder is replaced only once complete: an
interrupted run (Ctrl-C) leaves no partial set. Progress (rate, time left) goes to stderr.
User errors print one line and exit with code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `benchmarks.lra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.lra import cli
from benchmarks.lra import config as config_lib
from benchmarks.lra.data import listops, pathfinder

WRITERS = ("listops", "pathfinder", "pathx", "path256")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--task", required=True, choices=WRITERS, help="which release files to write")
    parser.add_argument("--out", required=True, help="the --data-dir to fill")
    parser.add_argument("--preset", default="paper", choices=config_lib.PRESETS,
                        help="generator settings of this preset (data.generate of configs/<task>.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--n", type=int, default=1000, help="Pathfinder: number of images")
    parser.add_argument("--difficulty", help="Pathfinder: split folder name (default: from contour_length)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change one generator setting, e.g. --set contour_length=9 (repeatable)")
    cli.add_common_flags(parser, threads=False)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    return args


def main(argv: list[str] | None = None) -> Path:
    """Parse ``argv``, write the files, return the folder written.

    The folder is written whole or not at all (a temporary folder renamed when complete), so an
    interrupted run leaves nothing a later run could trip on.
    """
    args = parse_args(argv)
    overrides = [f"data.generate.{text}" for text in args.overrides]
    with cli.user_errors():
        cfg = config_lib.resolve(args.task, "s4d", args.preset, overrides=overrides)["data"]["generate"]
    if args.task == "listops":
        with cli.user_errors():
            listops.check_generator_keys(cfg, listops.GENERATE_KEYS, "ListOps")
        total = cfg["n_train"] + cfg["n_val"] + cfg["n_test"]
        print(f"plan: ListOps, {cfg['n_train']}/{cfg['n_val']}/{cfg['n_test']} expressions of "
              f"{cfg['min_length']}-{cfg['max_length']} tokens -> {Path(args.out) / 'listops-1000'}", flush=True)
        bar = cli.Progress(total, "listops", unit="expression")
        root = listops.write_release(Path(args.out), cfg, args.seed, progress=bar.update)
    else:
        with cli.user_errors():
            spec = pathfinder.from_config(cfg)
        print(f"plan: {args.n} Pathfinder images {spec.side}x{spec.side} ({spec.contour_length} segments, "
              f"{spec.distractors} distractors, gap {spec.gap}) -> {Path(args.out) / f'pathfinder{spec.side}'}",
              flush=True)
        # drawn, then written: two counts of n
        bar = cli.Progress(2 * args.n, f"pathfinder{spec.side}", unit="image step")
        root = pathfinder.write_release(Path(args.out), spec, args.n, args.seed, args.difficulty,
                                        progress=bar.update)
    bar.close()
    print(f"wrote {root}")
    return root


if __name__ == "__main__":
    cli.run(main)
