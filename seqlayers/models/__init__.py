"""Models built from seqlayers layers."""

from .sequence_model import ResidualBlock, SequenceModel

__all__ = ["SequenceModel", "ResidualBlock"]
