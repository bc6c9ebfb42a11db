"""Optimizer parameter groups that honor per-parameter learning-rate / weight-decay hints.

State space parameters train best with their own small learning rate and no weight decay
(FACTS.md: lr 1e-3, wd 0 for A, dt, B). Kernel generators attach such hints to their parameters
with :func:`set_optim_hint`; :func:`param_groups` turns them into AdamW groups.
"""

from __future__ import annotations

from torch import Tensor, nn


def set_optim_hint(param: Tensor, lr: float | None, weight_decay: float | None = 0.0) -> None:
    """Attach hints to ``param`` (``param._optim = {"lr": ..., "weight_decay": ...}``).

    A ``None`` value means "use the group default" for that setting.
    """
    hints = {}
    if lr is not None:
        hints["lr"] = float(lr)
    if weight_decay is not None:
        hints["weight_decay"] = float(weight_decay)
    if hints:
        param._optim = hints


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, *, no_decay_1d: bool = False
) -> list[dict]:
    """Split ``model``'s trainable parameters into optimizer groups.

    Parameters without hints get ``lr`` and ``weight_decay``; parameters with hints (see
    :func:`set_optim_hint`) get one group per distinct hint. With ``no_decay_1d=True``, unhinted
    parameters with fewer than two dimensions (biases, norm scales) get weight decay 0.

    Returns:
        a list of ``{"params": [...], "lr": ..., "weight_decay": ...}`` dicts for
        ``torch.optim.AdamW`` (or any optimizer taking ``lr`` and ``weight_decay``).

    Example:
        >>> model = seqlayers.SequenceModel(1, 10, 64, 2)
        >>> opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=1e-2, weight_decay=0.05))
    """
    groups: dict[tuple[float, float], list[Tensor]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        hints = getattr(param, "_optim", {})
        default_wd = 0.0 if (no_decay_1d and param.dim() < 2) else weight_decay
        key = (hints.get("lr", lr), hints.get("weight_decay", default_wd))
        groups.setdefault(key, []).append(param)
    return [{"params": ps, "lr": g_lr, "weight_decay": g_wd} for (g_lr, g_wd), ps in groups.items()]
