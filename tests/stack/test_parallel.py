"""FSDP2 (``fully_shard``) and DDP with ``static_graph`` over a SequenceModel: two CPU processes
(gloo) give the loss and gradients of one process on the whole batch (float32, 1e-5)."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from . import distributed_worker

TOL = 1e-5


@pytest.mark.parametrize("wrapper, layer", [("fsdp2", "s4d"), ("fsdp2", "s5"), ("ddp", "sgconv"),
                                            ("ddp", "longconv")])
def test_two_processes_match_one(tmp_path, wrapper, layer):
    out = tmp_path / "records.pt"
    mp.spawn(distributed_worker.worker, nprocs=2,
             args=(2, f"file://{tmp_path / 'init'}", str(out), wrapper, layer))
    got = torch.load(out)
    want = distributed_worker.reference(layer)
    for step, (g, w) in enumerate(zip(got, want)):
        assert abs(g["loss"] - w["loss"]) <= TOL * abs(w["loss"]), step
        assert g["grads"].keys() == w["grads"].keys()
        for name, grad in w["grads"].items():
            err = (g["grads"][name] - grad).norm() / grad.norm().clamp_min(1e-12)
            assert err <= TOL, f"step {step}, {name}: {err:.2e}"
