"""Train a seqlayers model on a Long Range Arena task (or self-pretrain it on the task's inputs).

    python benchmarks/lra/train.py --task listops --preset smoke                  # generated data, CPU
    python benchmarks/lra/train.py --task digits --model sgconv --preset small --out runs/digits
    python benchmarks/lra/train.py --task image --model s5 --preset paper --data-dir /data/lra --out runs/image
    python benchmarks/lra/train.py --task image --model s5 --preset paper --data-dir /data/lra --out runs/image --resume
    python benchmarks/lra/train.py --task listops --pretrain --out runs/spt      # self-pretraining
    python benchmarks/lra/train.py --task listops --init-from runs/spt/best.pt --out runs/ft
    torchrun --nproc_per_node 8 benchmarks/lra/train.py --task pathx --data-dir /data/lra

Settings come from ``configs/<task>.yaml`` for the chosen ``--model`` and ``--preset``, then
``--config FILE`` and ``--set section.key=value`` (see ``config.py``). Without ``--preset`` the
run takes ``paper`` on a GPU and a CPU-sized preset on a CPU (:func:`choose_preset`), and says
which and why. It prints its plan (preset, threads, data, model, steps) before training, then
progress with the rate and the time left (``benchmarks/lra/cli.py``). Mistakes in the flags,
the config or the data end the run before training with one line ``error: ...`` and exit code
2 (``--debug`` or ``SEQLAYERS_DEBUG=1``: the traceback). AdamW over
``seqlayers.optim.param_groups`` (SSM and kernel parameters keep their own lr and weight decay
0), linear warmup then cosine decay, validation every epoch (or ``train.eval_every`` steps),
the best-validation weights kept (``best.pt``) and tested next to the majority-class baseline.
``--out`` receives ``metrics.json`` (task, model, val_acc, test_acc, steps, seconds, parameters,
majority-class accuracies, the config, ...), ``config.yaml``, ``best.pt``, ``last.pt`` (written
at every evaluation, for ``--resume``), ``log.csv`` (one row per evaluation) and ``curves.png``
(needs matplotlib). Checkpoints are written atomically (a temporary file, then a rename).

``--resume`` continues from ``last.pt`` exactly: the model, optimizer, schedule, random state,
best-so-far and the position inside the epoch are restored, and each epoch's shuffle depends only
on ``(seed, epoch)``, so on the CPU a resumed run ends with the metrics of an uninterrupted one.
``--stop-after N`` ends a run after N steps (writing ``last.pt``) without shortening its schedule.

Under torchrun (WORLD_SIZE > 1) the model runs in DistributedDataParallel; each step's global
batch is the same as on one process, each process taking every ``world``-th example of it
(:class:`StepSampler`); rank 0 logs and writes.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make `benchmarks.lra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

import seqlayers
from benchmarks.lra import cli
from benchmarks.lra import config as config_lib
from benchmarks.lra import models, objectives
from benchmarks.lra.data import TASKS, TaskData, build_task
from benchmarks.lra.data.common import labels_of

LOG_FIELDS = ("step", "epoch", "lr", "train_loss", "val_loss", "val_acc", "seconds")


# Expected wall time of each preset, shown by --help and when a preset is chosen for the user.
PRESET_TIMES = {
    "smoke": "a tiny model on little generated data: 10-25 s on a CPU (ListOps, digits; measured)",
    "small": "CPU-sized: 1.5-3 min for ListOps and digits on 2 CPU cores (measured); other tasks not measured",
    "paper": "the published settings (e.g. ListOps: 96,000 examples, 6 x 256, 40 epochs): GPU hours; "
             "days on a CPU",
}
# the tasks whose `small` preset has a measured CPU time of a few minutes (benchmarks/results/lra_cpu.md)
SMALL_MEASURED = ("listops", "digits")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    presets = "\n".join(f"  {name:<6} {text}" for name, text in PRESET_TIMES.items())
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter,
        epilog=f"presets:\n{presets}\n\nwithout --preset: 'paper' on a GPU; on a CPU 'small' for "
               f"{' and '.join(SMALL_MEASURED)}, 'smoke' for the other tasks.")
    parser.add_argument("--task", required=True, choices=TASKS, help="the benchmark task")
    parser.add_argument("--model", default="s4d", choices=config_lib.MODELS, help="the layer family")
    parser.add_argument("--preset", default=None, choices=config_lib.PRESETS,
                        help="size of the run (see 'presets' below); default: by the device, printed at the start")
    parser.add_argument("--config", help="YAML merged over the preset (same layout as the resolved config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting, e.g. --set optim.lr=0.004 (repeatable)")
    parser.add_argument("--data-dir", help="root of the unpacked LRA release; without it data are generated")
    parser.add_argument("--out", help="directory for metrics.json, config.yaml and best.pt")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, the data order and generated data")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--pretrain", nargs="?", const="auto", choices=["auto", "causal", "masked"],
                        help="self-pretrain on the training inputs: causal (next token; needs a causal model), "
                             "masked (denoise masked positions), or without a value by the model: causal "
                             "if it is causal, masked if bidirectional")
    parser.add_argument("--init-from", metavar="CKPT", help="start from a checkpoint's backbone, dropping its head")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--stop-after", type=int, metavar="STEPS",
                        help="stop after this many steps in all, keeping the full schedule (continue with --resume)")
    cli.add_common_flags(parser)
    args = parser.parse_args(argv)
    for flag in ("max_steps", "stop_after", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.resume and not args.out:
        parser.error("--resume needs --out (the run directory holding last.pt)")
    if args.resume and not (Path(args.out) / "last.pt").is_file():
        parser.error(f"--resume: no checkpoint {Path(args.out) / 'last.pt'} (written by a run with --out)")
    if args.init_from and not Path(args.init_from).is_file():
        parser.error(f"--init-from {args.init_from}: no such checkpoint file (expected a best.pt written by --out)")
    return args


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help with every default shown and the preset list kept as written."""


def choose_preset(requested: str | None, task: str, device: str) -> tuple[str, str]:
    """The preset of this run and why: ``requested`` if given, else by the device (see ``--help``)."""
    if requested is not None:
        return requested, "--preset"
    if not device.startswith("cpu"):
        return "paper", f"no --preset, device {device}: the published settings"
    if task in SMALL_MEASURED:
        return "small", ("no --preset and no GPU here: 'small' is CPU-sized, 1.5-3 min for this task on 2 cores "
                         "(measured); --preset paper runs the published settings")
    return "smoke", ("no --preset and no GPU here: 'smoke' is the smallest preset, seconds to a minute "
                     "('small' is not timed for this task); --preset small or paper for larger runs")


class StepSampler(Sampler):
    """Training batches of one process: ``(seed, epoch)``-seeded shuffles cut into global batches.

    Each epoch permutes the ``n`` examples with a generator seeded by ``seed + epoch`` and cuts
    the permutation into ``n // global_batch`` global batches (the rest is dropped; a dataset
    smaller than one batch is one batch). Process ``rank`` takes every ``world``-th example of
    each, so the ``world`` processes together see exactly the batch one process would.
    :meth:`set_epoch` selects the epoch and how many of its steps to skip (resuming).
    """

    def __init__(self, n: int, global_batch: int, rank: int, world: int, seed: int) -> None:
        self.n, self.batch = n, min(global_batch, n)
        self.rank, self.world, self.seed = rank, world, seed
        if self.batch % world:
            raise ValueError(f"a global batch of {self.batch} examples does not split over {world} processes")
        self.steps = n // self.batch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Iterate over ``epoch``'s batches from step ``skip`` on."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        for step in range(self.skip, self.steps):
            yield order[step * self.batch : (step + 1) * self.batch][self.rank :: self.world].tolist()

    def __len__(self) -> int:
        return self.steps - self.skip


class ShardSampler(Sampler):
    """Indices ``rank, rank + world, ...`` in order: every example evaluated exactly once overall."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = range(rank, n, world)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Runtime:
    """Process group, device and rank; a single CPU/GPU process when WORLD_SIZE is unset or 1."""

    def __init__(self, device: str | None) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and self.world > 1:
            device = f"cuda:{local_rank}"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"--device {device}: CUDA is not available here; use --device cpu")
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        """Rank 0 logs and writes files."""
        return self.rank == 0

    def sum(self, *values: torch.Tensor) -> list[float]:
        """Sum scalars over all processes."""
        stacked = torch.stack([v.double() for v in values]).to(self.device)
        if self.world > 1:
            dist.all_reduce(stacked)
        return stacked.tolist()

    def log(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.main:
            print(message, flush=True)

    def close(self, wait: bool = True) -> None:
        """Tear down the process group, if any; with ``wait``, once every process got here (a gloo
        peer that leaves while another still holds its connections can abort that one)."""
        if self.world > 1:
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch's tensors to ``device`` (``None`` entries stay ``None``)."""
    return {k: (v.to(device, non_blocking=True) if v is not None else None) for k, v in batch.items()}


def loaders(cfg: dict, data: TaskData, rt: Runtime, seed: int) -> tuple:
    """Train, val and test DataLoaders and the training :class:`StepSampler`.

    Each process gets ``batch_size / world`` training examples per step; evaluation shards each
    split so that every example is seen exactly once over all processes.
    """
    batch_size, eval_batch = cfg["train"]["batch_size"], cfg["train"]["eval_batch_size"] or cfg["train"]["batch_size"]
    if batch_size % rt.world:
        raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of processes ({rt.world})")
    # A generator of their own keeps the loaders from drawing on torch's global random state
    # (each new iterator draws a seed), which dropout and the masks use: resuming stays exact.
    common = {"collate_fn": data.collate, "num_workers": cfg["data"]["num_workers"],
              "pin_memory": rt.device.type == "cuda", "generator": torch.Generator().manual_seed(seed)}
    sampler = StepSampler(len(data.train), batch_size, rt.rank, rt.world, seed)
    train = DataLoader(data.train, batch_sampler=sampler, **common)
    per_rank_eval = max(1, eval_batch // rt.world)
    val, test = (DataLoader(ds, per_rank_eval, sampler=ShardSampler(len(ds), rt.rank, rt.world), **common)
                 for ds in (data.val, data.test))
    return train, val, test, sampler


def warmup_cosine(total_steps: int, warmup: float):
    """LR multiplier: linear from ~0 to 1 over ``warmup * total_steps`` steps, then cosine to 0."""
    warm = max(1, int(warmup * total_steps)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Objective:
    """The loss of this run: classification, or self-pretraining (causal or masked)."""

    def __init__(self, cfg: dict, pretrain: str | None) -> None:
        bidirectional = cfg["model"]["bidirectional"]
        kind = ("masked" if bidirectional else "causal") if pretrain == "auto" else pretrain
        if kind == "causal" and bidirectional:
            raise ValueError(
                "--pretrain causal needs a causal model, but this config has model.bidirectional=true "
                "(the model would see the token it predicts); use --pretrain masked, or "
                "--set model.bidirectional=false"
            )
        self.pretrain = pretrain is not None
        self.causal = kind == "causal"
        self.mask_ratio = cfg["pretrain"]["mask_ratio"]

    @property
    def name(self) -> str:
        """``classify``, ``pretrain-next`` or ``pretrain-masked`` (recorded in metrics.json)."""
        if not self.pretrain:
            return "classify"
        return "pretrain-next" if self.causal else "pretrain-masked"

    def __call__(self, model: nn.Module, batch: dict, generator: torch.Generator | None = None):
        if self.pretrain:
            return objectives.pretrain(model, batch, causal=self.causal, mask_ratio=self.mask_ratio, generator=generator)
        return objectives.classify(model, batch)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, objective: Objective, rt: Runtime, amp: bool) -> dict:
    """Mean loss and accuracy (``None`` for pixel pretraining) over a whole split, all processes."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)   # the same masks at every evaluation
    totals = torch.zeros(3, dtype=torch.float64)
    has_acc = True
    for batch in loader:
        with torch.autocast(rt.device.type, torch.bfloat16, enabled=amp):
            out = objective(model, to_device(batch, rt.device), generator)
        has_acc = out.correct is not None
        totals += torch.tensor([float(out.loss_sum), float(out.correct if has_acc else 0), float(out.count)])
    loss_sum, correct, count = rt.sum(*totals)
    count = max(count, 1.0)
    return {"loss": loss_sum / count, "acc": correct / count if has_acc else None}


def build_model(cfg: dict, data: TaskData, args: argparse.Namespace) -> nn.Module:
    """The run's model, optionally initialized from ``--init-from``'s backbone."""
    model = models.build_pretrainer(cfg, data) if args.pretrain else models.build_classifier(cfg, data)
    if args.init_from:
        ckpt = torch.load(args.init_from, map_location="cpu", weights_only=True)
        if "model" not in ckpt:
            raise ValueError(f"--init-from {args.init_from}: expected a checkpoint dict with a 'model' state dict")
        models.load_backbone(model, ckpt["model"])
    return model


def train(args: argparse.Namespace) -> dict:
    """Run one training (or pretraining) job and return its metrics."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.preset, why = choose_preset(args.preset, args.task, device)
    with cli.user_errors():
        cfg = config_lib.resolve(args.task, args.model, args.preset, args.config, args.overrides)
        rt = Runtime(args.device)
    rt.log(f"preset: {args.preset} ({why})")
    try:
        metrics = _train(cfg, args, rt)
    except BaseException:
        rt.close(wait=False)  # the others may be inside a collective: do not wait for them
        raise
    rt.close(wait=True)
    return metrics


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def majority_baseline(data: TaskData) -> dict:
    """The most frequent training label and the accuracy of always predicting it on val and test."""
    train_labels = labels_of(data.train)
    majority = int(torch.bincount(train_labels, minlength=data.n_classes).argmax())
    accs = {name: float((labels_of(ds) == majority).float().mean()) if len(ds) else None
            for name, ds in (("val", data.val), ("test", data.test))}
    return {"class": majority, "val_acc": accs["val"], "test_acc": accs["test"]}


class CsvLog:
    """``log.csv`` in the run directory: one row of :data:`LOG_FIELDS` per evaluation."""

    def __init__(self, path: Path | None, resume_step: int | None) -> None:
        self.path = path
        if path is None:
            return
        rows = []
        if resume_step is not None and path.is_file():   # keep the rows up to the checkpoint
            with open(path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def add(self, **row) -> None:
        """Append one row (missing fields stay empty)."""
        if self.path is not None:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, LOG_FIELDS).writerow(row)


def plot_curves(log_path: Path, out_path: Path, title: str) -> bool:
    """Plot ``log.csv``'s losses and validation accuracy against the step into ``out_path``.

    Returns False (and draws nothing) when matplotlib is missing or the log has no rows.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return False
    steps = [int(r["step"]) for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "val_loss"):
        ax_loss.plot(steps, [float(r[key]) if r[key] else math.nan for r in rows], marker=".", label=key)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_acc.plot(steps, [float(r["val_acc"]) if r["val_acc"] else math.nan for r in rows], marker=".")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("validation accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return True


def rng_state(device: torch.device) -> dict:
    """The random state a resumed run must restore (dropout, training masks)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def config_differences(saved: dict, current: dict, where: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        path = f"{where}.{key}" if where else key
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, path)
        elif a != b:
            diffs.append(f"{path}: {a!r} -> {b!r}")
    return diffs


def _train(cfg: dict, args: argparse.Namespace, rt: Runtime) -> dict:
    """The body of :func:`train` once the config and the runtime exist."""
    torch.manual_seed(args.seed)
    if rt.device.type == "cpu":
        rt.log(f"threads: {cli.set_threads(args.threads, cfg['train']['cpu_threads'])}")
    start = time.time()
    with cli.user_errors():
        objective = Objective(cfg, args.pretrain)  # checks --pretrain against the model before any data work
        data = build_task(args.task, cfg["data"], args.data_dir, args.seed)
    cfg["data"]["l_max"] = data.l_max
    rt.log(f"data: {args.task}, {len(data.train)}/{len(data.val)}/{len(data.test)} examples from {data.source}, "
           f"L <= {data.l_max}, {data.n_classes} classes ({time.time() - start:.1f} s)")
    with cli.user_errors():
        model = build_model(cfg, data, args).to(rt.device)
    if rt.world > 1 and rt.device.type == "cuda" and cfg["model"]["norm"] == "batch":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    n_params = sum(p.numel() for p in model.parameters())
    mc = cfg["model"]
    rt.log(f"model: {args.model} ({objective.name}), {mc['n_layers']} layers x d_model {mc['d_model']}, "
           f"{n_params:,} parameters on {rt.device} x {rt.world}")

    train_loader, val_loader, test_loader, sampler = loaders(cfg, data, rt, args.seed)
    epochs = (cfg["pretrain"]["epochs"] or cfg["train"]["epochs"]) if args.pretrain else cfg["train"]["epochs"]
    steps_per_epoch = sampler.steps
    total_steps = epochs * steps_per_epoch
    if total_steps == 0:
        raise ValueError(f"no training batches: {len(data.train)} training examples, batch_size {cfg['train']['batch_size']}")
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    stop = min(total_steps, args.stop_after or total_steps)
    eval_every = cfg["train"]["eval_every"] or steps_per_epoch
    rt.log(f"plan: {epochs} epochs x {steps_per_epoch} steps of batch {cfg['train']['batch_size']} = "
           f"{epochs * steps_per_epoch} steps" + (f", cut to {total_steps}" if total_steps < epochs * steps_per_epoch else "")
           + (f", stopping after {stop}" if stop < total_steps else "")
           + f", validation every {eval_every} steps; progress and time left on stderr")
    optim_cfg = cfg["optim"]
    optimizer = torch.optim.AdamW(
        seqlayers.optim.param_groups(model, lr=optim_cfg["lr"], weight_decay=optim_cfg["weight_decay"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, optim_cfg["warmup"]))
    net = DistributedDataParallel(model, device_ids=[rt.device] if rt.device.type == "cuda" else None) \
        if rt.world > 1 else model
    amp = bool(cfg["train"]["amp"]) and rt.device.type == "cuda"
    out_dir = Path(args.out) if args.out else None
    writes = out_dir is not None and rt.main
    baseline = None if args.pretrain else majority_baseline(data)

    # Pretraining keeps the lowest validation loss; classification the highest accuracy.
    best = {"score": -math.inf, "val": None, "state": None}
    step, elapsed_before, loss_sum, loss_count = 0, 0.0, 0.0, 0
    if args.resume:
        ckpt = torch.load(out_dir / "last.pt", map_location="cpu", weights_only=True)
        diffs = config_differences(ckpt["config"], cfg)
        if diffs or ckpt["total_steps"] != total_steps or ckpt["objective"] != objective.name:
            raise cli.UserError(f"--resume: {out_dir / 'last.pt'} belongs to another run "
                             f"(config differences {diffs[:5]}, {ckpt['total_steps']} vs {total_steps} "
                             f"steps, objective {ckpt['objective']} vs {objective.name})")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"], rt.device)
        best, step, elapsed_before = ckpt["best"], ckpt["step"], ckpt["seconds"]
        loss_sum, loss_count = ckpt["loss_sum"], ckpt["loss_count"]
        rt.log(f"resumed from {out_dir / 'last.pt'} at step {step}/{total_steps}")
    if writes:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = CsvLog(out_dir / "log.csv" if writes else None, step if args.resume else None)

    def seconds() -> float:
        return elapsed_before + time.time() - start

    def checkpoint() -> None:
        if writes and cfg["train"]["checkpoint"]:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": rng_state(rt.device), "best": best,
                         "step": step, "total_steps": total_steps, "seconds": seconds(), "loss_sum": loss_sum,
                         "loss_count": loss_count, "config": cfg, "objective": objective.name},
                        out_dir / "last.pt")

    bar = cli.Progress(stop, "train", initial=step, enabled=rt.main)
    say = bar.write if rt.main else rt.log
    while step < stop:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch, skip)
        for batch in train_loader:
            net.train()
            with torch.autocast(rt.device.type, torch.bfloat16, enabled=amp):
                out = objective(net, to_device(batch, rt.device))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if optim_cfg["grad_clip"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), optim_cfg["grad_clip"])
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum, loss_count = loss_sum + out.loss.item(), loss_count + 1
            bar.update(loss=f"{out.loss.item():.4f}")
            if step % cfg["train"]["log_every"] == 0:
                say(f"step {step}/{total_steps}  loss {out.loss.item():.4f}  "
                    f"lr {scheduler.get_last_lr()[0]:.2e}  {seconds():.1f} s")
            if step % eval_every == 0 or step == total_steps:
                val = evaluate(model, val_loader, objective, rt, amp)
                train_loss = rt.sum(torch.tensor(loss_sum), torch.tensor(float(loss_count)))
                train_loss = train_loss[0] / max(train_loss[1], 1.0)
                loss_sum, loss_count = 0.0, 0
                score = -val["loss"] if args.pretrain else val["acc"]
                improved = score > best["score"]
                if improved:
                    state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                    best = {"score": score, "val": val, "state": state}
                    if writes:
                        save_atomic({"model": state, "config": cfg, "step": step, "objective": objective.name},
                                    out_dir / "best.pt")
                log.add(step=step, epoch=f"{step / steps_per_epoch:.3f}", lr=f"{scheduler.get_last_lr()[0]:.6g}",
                        train_loss=f"{train_loss:.6f}", val_loss=f"{val['loss']:.6f}",
                        val_acc="" if val["acc"] is None else f"{val['acc']:.6f}", seconds=f"{seconds():.2f}")
                checkpoint()
                acc = "" if val["acc"] is None else f"  val_acc {val['acc']:.4f}"
                say(f"step {step}/{total_steps}  train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}{acc}"
                    f"{'  (best)' if improved else ''}  {seconds():.1f} s")
            if step >= stop:
                break
    bar.close()
    if step < total_steps:
        checkpoint()
        rt.log(f"stopped after {step}/{total_steps} steps ({seconds():.1f} s); continue with --resume")
        return {"task": args.task, "model": args.model, "objective": objective.name, "steps": step, "stopped": True}

    model.load_state_dict(best["state"])
    test = evaluate(model, test_loader, objective, rt, amp)
    best_val = best["val"]
    metrics = {
        "task": args.task, "model": args.model, "objective": objective.name, "preset": args.preset,
        "val_acc": best_val["acc"], "test_acc": test["acc"], "val_loss": best_val["loss"], "test_loss": test["loss"],
        "majority_class": None if baseline is None else baseline["class"],
        "majority_val_acc": None if baseline is None else baseline["val_acc"],
        "majority_test_acc": None if baseline is None else baseline["test_acc"],
        "steps": step, "seconds": round(seconds(), 2), "data": data.source,
        "parameters": n_params, "world_size": rt.world, "config": cfg,
    }
    accs = "".join(f"  {name} {value:.4f}" for name, value in (("val_acc", best_val["acc"]), ("test_acc", test["acc"]))
                   if value is not None)
    rt.log(f"done: {args.task}/{args.model} {objective.name}  val_loss {best_val['loss']:.4f}  "
           f"test_loss {test['loss']:.4f}{accs}  {step} steps  {metrics['seconds']:.1f} s")
    if baseline is not None:
        rt.log(f"accuracy: test {test['acc']:.4f}, val {best_val['acc']:.4f}; majority class ({baseline['class']}): "
               f"test {baseline['test_acc']:.4f}, val {baseline['val_acc']:.4f}")
    if writes:
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if not plot_curves(out_dir / "log.csv", out_dir / "curves.png", f"{args.task} / {args.model} ({objective.name})"):
            rt.log("curves.png not drawn (needs matplotlib: pip install matplotlib)")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``), train, return the metrics."""
    return train(parse_args(argv))


if __name__ == "__main__":
    cli.run(main)
