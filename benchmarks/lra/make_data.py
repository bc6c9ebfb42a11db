"""Write generated data in the LRA release formats, for offline end-to-end runs of the readers.

    python -m benchmarks.lra.make_data --task listops --out /tmp/lra
    python -m benchmarks.lra.make_data --task pathfinder --out /tmp/lra --n 2000 --set distractors=3
    python -m benchmarks.lra.make_data --task pathx --out /tmp/lra --n 500 --preset smoke
    python benchmarks/lra/train.py --task listops --data-dir /tmp/lra --preset smoke

The generator settings are the task config's ``data.generate`` for ``--preset`` (``paper`` by
default), changed by ``--set key=value``. ListOps writes ``listops-1000/basic_{train,val,test}.tsv``;
the Pathfinder tasks write ``pathfinder<side>/<difficulty>/{imgs,metadata}/`` with ``--n`` images
(the reader splits them 80/10/10).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `benchmarks.lra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.lra import config as config_lib
from benchmarks.lra.data import listops, pathfinder

WRITERS = ("listops", "pathfinder", "pathx", "path256")


def main(argv: list[str] | None = None) -> Path:
    """Parse ``argv``, write the files, return the folder written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=WRITERS)
    parser.add_argument("--out", required=True, help="the --data-dir to fill")
    parser.add_argument("--preset", default="paper", choices=config_lib.PRESETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000, help="Pathfinder: number of images")
    parser.add_argument("--difficulty", help="Pathfinder: split folder name (default: from contour_length)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change one generator setting, e.g. --set contour_length=9 (repeatable)")
    args = parser.parse_args(argv)
    overrides = [f"data.generate.{text}" for text in args.overrides]
    cfg = config_lib.resolve(args.task, "s4d", args.preset, overrides=overrides)["data"]["generate"]
    if args.task == "listops":
        root = listops.write_release(Path(args.out), cfg, args.seed)
    else:
        spec = pathfinder.from_config(cfg)
        root = pathfinder.write_release(Path(args.out), spec, args.n, args.seed, args.difficulty)
    print(f"wrote {root}")
    return root


if __name__ == "__main__":
    main()
