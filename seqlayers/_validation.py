"""Small argument checks shared by the modules (errors name what was expected and what came)."""

from __future__ import annotations


def is_int(value) -> bool:
    """True for Python ints, False for bools (``True`` is not a size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for Python ints and floats, False for bools."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_choice(kind: str, value, choices) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; expected one of {sorted(choices)}")


def is_size(value) -> bool:
    """True for Python ints and symbolic sizes (``torch.SymInt`` under torch.compile / export)."""
    import torch

    return is_int(value) or isinstance(value, torch.SymInt)
