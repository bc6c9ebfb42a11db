"""Train a seqlayers model on a Long Range Arena task (or self-pretrain it on the task's inputs).

    python benchmarks/lra/train.py --task listops --preset smoke                  # generated data, CPU
    python benchmarks/lra/train.py --task image --model s5 --data-dir /data/lra --out runs/image
    python benchmarks/lra/train.py --task listops --pretrain --out runs/spt      # self-pretraining
    python benchmarks/lra/train.py --task listops --init-from runs/spt/best.pt --out runs/ft
    torchrun --nproc_per_node 8 benchmarks/lra/train.py --task pathx --data-dir /data/lra

Settings come from ``configs/<task>.yaml`` for the chosen ``--model`` and ``--preset``, then
``--config FILE`` and ``--set section.key=value`` (see ``config.py``). AdamW over
``seqlayers.optim.param_groups`` (SSM and kernel parameters keep their own lr and weight decay
0), linear warmup then cosine decay, validation every epoch (or ``train.eval_every`` steps),
the best-validation weights kept (``best.pt``) and tested. ``--out`` receives ``metrics.json``
(task, model, val_acc, test_acc, steps, seconds, the config, ...), ``config.yaml`` and
``best.pt``. Under torchrun (WORLD_SIZE > 1) the model runs in DistributedDataParallel with a
DistributedSampler; rank 0 logs and writes.
"""

from __future__ import annotations

import argparse
import copy
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
from torch.utils.data import DataLoader, DistributedSampler, Sampler

import seqlayers
from benchmarks.lra import config as config_lib
from benchmarks.lra import models, objectives
from benchmarks.lra.data import TASKS, TaskData, build_task


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--model", default="s4d", choices=config_lib.MODELS)
    parser.add_argument("--preset", default="paper", choices=config_lib.PRESETS,
                        help="'paper': the published settings; 'smoke': a tiny model on small data")
    parser.add_argument("--config", help="YAML merged over the preset (same layout as the resolved config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting, e.g. --set optim.lr=0.004 (repeatable)")
    parser.add_argument("--data-dir", help="root of the unpacked LRA release; without it data are generated")
    parser.add_argument("--out", help="directory for metrics.json, config.yaml and best.pt")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--pretrain", action="store_true",
                        help="self-pretrain on the training inputs (next token if causal, masked denoising if bidirectional)")
    parser.add_argument("--init-from", metavar="CKPT", help="start from a checkpoint's backbone, dropping its head")
    args = parser.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.init_from and not Path(args.init_from).is_file():
        parser.error(f"--init-from {args.init_from}: no such checkpoint file (expected a best.pt written by --out)")
    return args


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
                raise RuntimeError(f"--device {device}: CUDA is not available here; use --device cpu")
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

    def close(self) -> None:
        """Tear down the process group, if any."""
        if self.world > 1:
            dist.destroy_process_group()


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch's tensors to ``device`` (``None`` entries stay ``None``)."""
    return {k: (v.to(device, non_blocking=True) if v is not None else None) for k, v in batch.items()}


def loaders(cfg: dict, data: TaskData, rt: Runtime, seed: int) -> tuple:
    """Train, val and test DataLoaders and the train DistributedSampler (``None`` on one process).

    Each process gets ``batch_size / world`` training examples per step; evaluation shards each
    split so that every example is seen exactly once over all processes.
    """
    batch_size, eval_batch = cfg["train"]["batch_size"], cfg["train"]["eval_batch_size"] or cfg["train"]["batch_size"]
    if batch_size % rt.world:
        raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of processes ({rt.world})")
    common = {"collate_fn": data.collate, "num_workers": cfg["data"]["num_workers"],
              "pin_memory": rt.device.type == "cuda"}
    sampler = DistributedSampler(data.train, rt.world, rt.rank, shuffle=True, seed=seed) if rt.world > 1 else None
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(data.train, batch_size // rt.world, shuffle=sampler is None, sampler=sampler,
                       drop_last=len(data.train) >= batch_size, generator=generator, **common)
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

    def __init__(self, cfg: dict, pretrain: bool) -> None:
        self.pretrain = pretrain
        self.causal = not cfg["model"]["bidirectional"]
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
    cfg = config_lib.resolve(args.task, args.model, args.preset, args.config, args.overrides)
    rt = Runtime(args.device)
    try:
        return _train(cfg, args, rt)
    finally:
        rt.close()


def _train(cfg: dict, args: argparse.Namespace, rt: Runtime) -> dict:
    """The body of :func:`train` once the config and the runtime exist."""
    torch.manual_seed(args.seed)
    if rt.device.type == "cpu" and cfg["train"]["cpu_threads"]:
        torch.set_num_threads(cfg["train"]["cpu_threads"])
    start = time.time()
    data = build_task(args.task, cfg["data"], args.data_dir, args.seed)
    cfg["data"]["l_max"] = data.l_max
    rt.log(f"{args.task}: {len(data.train)}/{len(data.val)}/{len(data.test)} examples from {data.source}, "
           f"L <= {data.l_max}, {data.n_classes} classes")
    objective = Objective(cfg, args.pretrain)
    model = build_model(cfg, data, args).to(rt.device)
    if rt.world > 1 and rt.device.type == "cuda" and cfg["model"]["norm"] == "batch":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    n_params = sum(p.numel() for p in model.parameters())
    rt.log(f"{args.model} ({objective.name}): {n_params:,} parameters on {rt.device} x {rt.world}")

    train_loader, val_loader, test_loader, sampler = loaders(cfg, data, rt, args.seed)
    epochs = (cfg["pretrain"]["epochs"] or cfg["train"]["epochs"]) if args.pretrain else cfg["train"]["epochs"]
    total_steps = epochs * len(train_loader)
    if total_steps == 0:
        raise ValueError(f"no training batches: {len(data.train)} training examples, batch_size {cfg['train']['batch_size']}")
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    eval_every = cfg["train"]["eval_every"] or len(train_loader)
    optim_cfg = cfg["optim"]
    optimizer = torch.optim.AdamW(
        seqlayers.optim.param_groups(model, lr=optim_cfg["lr"], weight_decay=optim_cfg["weight_decay"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, optim_cfg["warmup"]))
    net = DistributedDataParallel(model, device_ids=[rt.device] if rt.device.type == "cuda" else None) \
        if rt.world > 1 else model
    amp = bool(cfg["train"]["amp"]) and rt.device.type == "cuda"
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None and rt.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    # Pretraining keeps the lowest validation loss; classification the highest accuracy.
    best_score, best_state, step, epoch = -math.inf, None, 0, 0
    while step < total_steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
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
            if step % cfg["train"]["log_every"] == 0:
                rt.log(f"step {step}/{total_steps}  loss {out.loss.item():.4f}  "
                       f"lr {scheduler.get_last_lr()[0]:.2e}  {time.time() - start:.1f} s")
            if step % eval_every == 0 or step == total_steps:
                val = evaluate(model, val_loader, objective, rt, amp)
                score = -val["loss"] if args.pretrain else val["acc"]
                improved = score > best_score
                if improved:
                    best_score, best_val = score, val
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                    if out_dir is not None and rt.main:
                        torch.save({"model": best_state, "config": cfg, "step": step, "objective": objective.name},
                                   out_dir / "best.pt")
                acc = "" if val["acc"] is None else f"  val_acc {val['acc']:.4f}"
                rt.log(f"step {step}/{total_steps}  val_loss {val['loss']:.4f}{acc}"
                       f"{'  (best)' if improved else ''}  {time.time() - start:.1f} s")
            if step >= total_steps:
                break
        epoch += 1

    model.load_state_dict(best_state)
    test = evaluate(model, test_loader, objective, rt, amp)
    metrics = {
        "task": args.task, "model": args.model, "objective": objective.name, "preset": args.preset,
        "val_acc": best_val["acc"], "test_acc": test["acc"], "val_loss": best_val["loss"], "test_loss": test["loss"],
        "steps": step, "seconds": round(time.time() - start, 2), "data": data.source,
        "parameters": n_params, "world_size": rt.world, "config": cfg,
    }
    accs = "".join(f"  {name} {value:.4f}" for name, value in (("val_acc", best_val["acc"]), ("test_acc", test["acc"]))
                   if value is not None)
    rt.log(f"done: {args.task}/{args.model} {objective.name}  val_loss {best_val['loss']:.4f}  "
           f"test_loss {test['loss']:.4f}{accs}  {step} steps  {metrics['seconds']:.1f} s")
    if out_dir is not None and rt.main:
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``), train, return the metrics."""
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
