"""The nn.Modules users import: the shared :class:`ConvLayer` and the layer families.

``LAYERS`` maps the names :class:`seqlayers.SequenceModel` accepts to the layer classes.
"""

from .learned_butterfly import LearnedButterfly
from .conv_layer import ConvLayer, TiedDropout, conv_layer
from .longconv import LongConv
from .s4d import S4D
from .s5 import S5
from .sgconv import SGConv

LAYERS = {"s4d": S4D, "s5": S5, "sgconv": SGConv, "longconv": LongConv}

__all__ = [
    "ConvLayer", "TiedDropout", "conv_layer", "LearnedButterfly", "S4D", "S5", "SGConv", "LongConv", "LAYERS"
]
