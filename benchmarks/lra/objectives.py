"""Training objectives: classification and self-pretraining (Amos, Berant & Gupta 2024).

Each objective maps ``(model, batch)`` to an :class:`Outcome`: the mean loss to minimize and the
sums that evaluation accumulates over batches (and processes).

Self-pretraining, on the task's own inputs:

- causal models: next-token prediction (cross entropy; for pixels, L1 on the next pixel with
  the mask channel 0);
- bidirectional models: masked denoising with ratio ``mask_ratio`` over the valid positions;
  masked tokens become ``<mask>`` and are predicted with cross entropy; pixels enter as
  ``[x * (1 - m), m]`` and masked ones are regressed with L1. Only masked positions count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.common import MASK_ID


@dataclass
class Outcome:
    """``loss``: mean over targets (for backward); ``loss_sum``, ``correct``, ``count``: sums.

    ``correct`` is ``None`` where accuracy has no meaning (pixel regression).
    """

    loss: Tensor
    loss_sum: Tensor
    correct: Tensor | None
    count: Tensor


def classify(model: nn.Module, batch: dict) -> Outcome:
    """Cross entropy of ``model(x, lengths)`` against ``y``."""
    logits = model(batch["x"], batch["lengths"])
    loss = F.cross_entropy(logits.float(), batch["y"])
    n = torch.tensor(len(batch["y"]), device=logits.device)
    return Outcome(loss, loss.detach() * n, (logits.argmax(-1) == batch["y"]).sum(), n)


def valid_positions(batch: dict) -> Tensor:
    """``(B, L)`` bool: positions inside each sequence (all of them for pixels)."""
    x, lengths = batch["x"], batch["lengths"]
    L = x.shape[1]
    if lengths is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return torch.arange(L, device=x.device) < lengths.unsqueeze(1)


def random_mask(valid: Tensor, ratio: float, generator: torch.Generator | None) -> Tensor:
    """Bernoulli(``ratio``) positions among ``valid``; drawn on the CPU when a generator is given."""
    if generator is None:
        draw = torch.rand(valid.shape, device=valid.device)
    else:
        draw = torch.rand(valid.shape, generator=generator).to(valid.device)
    return (draw < ratio) & valid


def reduce_targets(per_position: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and sum of ``per_position`` over the ``targets`` mask, and the target count."""
    count = targets.sum()
    total = (per_position * targets).sum()
    return total / count.clamp_min(1), total.detach(), count


def pretrain(model: nn.Module, batch: dict, *, causal: bool, mask_ratio: float,
             generator: torch.Generator | None = None) -> Outcome:
    """The self-pretraining loss of ``model`` (a ``pool="none"`` SequenceModel) on ``batch``.

    Args:
        causal: next-position objective; otherwise masked denoising.
        mask_ratio: fraction of valid positions masked (denoising only).
        generator: CPU generator for the masks (fixed masks during evaluation), or ``None``.
    """
    x, lengths = batch["x"], batch["lengths"]
    valid = valid_positions(batch)
    tokens = not x.is_floating_point()
    if causal:
        targets = torch.zeros_like(valid)
        targets[:, :-1] = valid[:, 1:]
        inputs = x if tokens else torch.cat([x, torch.zeros_like(x)], dim=-1)
        truth = x.roll(-1, dims=1)
    else:
        targets = random_mask(valid, mask_ratio, generator)
        if tokens:
            inputs = x.masked_fill(targets, MASK_ID)
        else:
            m = targets.unsqueeze(-1).to(x.dtype)
            inputs = torch.cat([x * (1 - m), m], dim=-1)
        truth = x
    out = model(inputs, lengths).float()
    if tokens:
        per_position = F.cross_entropy(out.transpose(1, 2), truth, reduction="none")
        loss, loss_sum, count = reduce_targets(per_position, targets)
        correct = ((out.argmax(-1) == truth) & targets).sum()
    else:
        loss, loss_sum, count = reduce_targets((out - truth).abs().squeeze(-1), targets)
        correct = None
    return Outcome(loss, loss_sum, correct, count)
