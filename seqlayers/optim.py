"""Optimizer parameter groups that honor per-parameter learning-rate / weight-decay hints.

State space parameters train best with their own small learning rate and no weight decay
(FACTS.md: lr 1e-3, wd 0 for A, dt, B). Kernel generators record such hints with
:func:`set_optim_hint`; :func:`param_groups` turns them into AdamW groups.

The hints live on the module that owns the parameter (its ``_optim_hints`` dict, keyed by the
parameter's name), not on the Parameter object: module state survives ``copy.deepcopy``, pickle,
``torch.save(model)``, ``AveragedModel``, replaced Parameter objects (``load_state_dict(assign=True)``,
``to_empty``) and wrappers that keep the module tree and parameter names (DDP, FSDP2's
``fully_shard``, ``torch.compile``), while an attribute on a Parameter is dropped by
``Parameter.__deepcopy__`` and by FSDP2's DTensor parameters.
"""

from __future__ import annotations

from torch import Tensor, nn

HINTS_ATTR = "_optim_hints"


def set_optim_hint(module: nn.Module, name: str, lr: float | None, weight_decay: float | None = 0.0) -> None:
    """Record optimizer hints for the parameter ``name`` of ``module``.

    Args:
        module: the module that holds the hints (usually the parameter's owner).
        name: the parameter's name below ``module``, dotted for a submodule's (``"scales.0"``).
        lr: learning rate for this parameter, or None for the group default.
        weight_decay: weight decay for this parameter (default 0.0), or None for the group default.

    The hints are stored as ``module._optim_hints[name] = {"lr": ..., "weight_decay": ...}`` and
    read by :func:`param_groups`. They are also copied to ``param._optim`` for code that reads
    that attribute; :func:`param_groups` does not rely on it (a deep copy drops it).

    Example:
        >>> layer = torch.nn.Linear(4, 4)
        >>> set_optim_hint(layer, "weight", lr=1e-3, weight_decay=0.0)
        >>> param_groups(layer, lr=1e-2, weight_decay=0.05)  # weight: lr 1e-3, wd 0; bias: defaults
    """
    param = module.get_parameter(name)  # AttributeError naming what is missing
    hints = {}
    if lr is not None:
        hints["lr"] = float(lr)
    if weight_decay is not None:
        hints["weight_decay"] = float(weight_decay)
    if not hints:
        return
    if HINTS_ATTR not in module.__dict__:
        setattr(module, HINTS_ATTR, {})
    getattr(module, HINTS_ATTR)[name] = hints
    param._optim = dict(hints)


def _hints_by_param(model: nn.Module) -> dict[int, dict]:
    """``id(param) -> hints`` for every hinted parameter below ``model`` (names no longer naming a
    parameter, e.g. after a parametrization, are skipped); the first module to hint a shared
    parameter wins."""
    found: dict[int, dict] = {}
    for module in model.modules():
        for name, hints in module.__dict__.get(HINTS_ATTR, {}).items():
            try:
                param = module.get_parameter(name)
            except AttributeError:
                continue
            found.setdefault(id(param), hints)
    return found


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, *, no_decay_1d: bool = False
) -> list[dict]:
    """Split ``model``'s trainable parameters into optimizer groups.

    Parameters without hints get ``lr`` and ``weight_decay``; parameters with hints (see
    :func:`set_optim_hint`) get one group per distinct hint. With ``no_decay_1d=True``, unhinted
    parameters with fewer than two dimensions (biases, norm scales) get weight decay 0. A
    parameter shared between modules appears once. Hints set the old way, as a ``param._optim``
    dict, are honored for parameters that have none on their module.

    Returns:
        a list of ``{"params": [...], "lr": ..., "weight_decay": ...}`` dicts for
        ``torch.optim.AdamW`` (or any optimizer taking ``lr`` and ``weight_decay``).

    Example:
        >>> model = seqlayers.SequenceModel(1, 10, 64, 2)
        >>> opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=1e-2, weight_decay=0.05))
    """
    module_hints = _hints_by_param(model)
    groups: dict[tuple[float, float], list[Tensor]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        hints = module_hints.get(id(param)) or getattr(param, "_optim", {})
        default_wd = 0.0 if (no_decay_1d and param.dim() < 2) else weight_decay
        key = (hints.get("lr", lr), hints.get("weight_decay", default_wd))
        groups.setdefault(key, []).append(param)
    return [{"params": ps, "lr": g_lr, "weight_decay": g_wd} for (g_lr, g_wd), ps in groups.items()]
