"""Kernel generators: modules mapping a length ``L`` to a ``(C, H, L)`` convolution kernel,
and the functional builders they use."""

from .base import KernelGenerator
from .longconv import LongConvKernel, squash
from .s4d import S4DKernel, discretize, s4d_kernel
from .s5 import S5Kernel
from .sgconv import SGConvKernel

__all__ = [
    "KernelGenerator",
    "S4DKernel",
    "S5Kernel",
    "SGConvKernel",
    "LongConvKernel",
    "s4d_kernel",
    "discretize",
    "squash",
]
