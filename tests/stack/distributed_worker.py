"""Two-process training steps with FSDP2 and DDP on the CPU (gloo), for ``test_parallel.py``.

Each rank runs the same seeded ``SequenceModel`` on its half of a fixed batch, wrapped with
``fully_shard`` or ``DistributedDataParallel(static_graph=True)``; rank 0 saves the mean loss and
the full gradients of two steps.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

import seqlayers

STEPS = 2


LAYER_KWARGS = {
    "s4d": {"d_state": 8},
    "s5": {"d_state": 8, "blocks": 2, "mode": "scan"},
    "sgconv": {"l_max": 32, "kernel_dim": 8},
    "longconv": {"l_max": 32},
}


def make_model(layer: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return seqlayers.SequenceModel(3, 4, 8, 2, layer, layer_kwargs=LAYER_KWARGS[layer])


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randn(4, 32, 3, generator=g), torch.randint(0, 4, (4,), generator=g)


def reference(layer: str) -> list[dict]:
    """The same steps in one process: loss and gradients per step (SGD between steps)."""
    model = make_model(layer)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    records = []
    for step in range(STEPS):
        x, y = batch(step)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        records.append({"loss": loss.item(), "grads": {n: p.grad.clone() for n, p in model.named_parameters()}})
        optimizer.step()
    return records


def worker(rank: int, world: int, init: str, out: str, wrapper: str, layer: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model = make_model(layer)
        if wrapper == "fsdp2":
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            mesh = init_device_mesh("cpu", (world,))
            for block in model.blocks:
                fully_shard(block, mesh=mesh)
            fully_shard(model, mesh=mesh)
            wrapped = model
        else:
            wrapped = torch.nn.parallel.DistributedDataParallel(model, static_graph=True)
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.1)
        records = []
        for step in range(STEPS):
            x, y = (t.chunk(world)[rank] for t in batch(step))
            loss = F.cross_entropy(wrapped(x), y)
            optimizer.zero_grad()
            loss.backward()
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            full = lambda g: g.full_tensor() if hasattr(g, "full_tensor") else g  # noqa: E731
            records.append({"loss": mean.item() / world,
                            "grads": {n: full(p.grad).clone() for n, p in model.named_parameters()}})
            optimizer.step()
        if rank == 0:
            torch.save(records, out)
        del wrapped, model, optimizer, records
        dist.barrier()  # nobody leaves while another rank still talks (gloo aborts otherwise)
    finally:
        dist.destroy_process_group()
    # Leave without interpreter finalization: at exit, C++ statics of the distributed runtime can be
    # destroyed with a thread still joinable, and the process then aborts ("terminate called without
    # an active exception", SIGABRT) after its work is done and saved: seen once in CI (fsdp2, s4d, rank 1).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
