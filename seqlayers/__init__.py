"""seqlayers: drop-in PyTorch layers for very long sequences.

Layers take and return ``(B, L, H)``: :class:`S4D`, :class:`S5`, :class:`SGConv`,
:class:`LongConv`, all built on :class:`seqlayers.layers.ConvLayer`. Ops with runtime-selected
backends live in :mod:`seqlayers.ops`; kernel generators in :mod:`seqlayers.kernels`.
:func:`info` reports what this installation can run.
"""

from ._version import __version__
from . import init, kernels, layers, models, ops, optim  # noqa: E402
from ._info import info  # noqa: E402
from .layers import S4D, S5, LongConv, SGConv  # noqa: E402
from .models import SequenceModel  # noqa: E402

__all__ = [
    "S4D",
    "S5",
    "SGConv",
    "LongConv",
    "SequenceModel",
    "info",
    "init",
    "kernels",
    "layers",
    "models",
    "ops",
    "optim",
    "__version__",
]
