"""The one interface every layer family shares: a module that maps a length to a kernel."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import is_int, is_size


def prefix(x: Tensor, length: int) -> Tensor:
    """The first ``length`` entries of ``x`` along its last dim, as a new tensor.

    A slice would do in eager mode; ``index_select`` keeps a symbolic ``length`` (torch.compile,
    torch.export) free of the guard ``length != x.shape[-1]`` that a slice's contiguity adds, so one
    graph serves every length up to the full one.
    """
    return x.index_select(-1, torch.arange(length, device=x.device))


_HALF = (torch.float16, torch.bfloat16)


class Float32Parameters(nn.Module):
    """A module whose parameters and floating buffers (its own and its submodules') stay float32 (or float64) when it is
    cast to float16 or bfloat16: the cast moves them to the new device and leaves their precision
    (they are restored from their values before the cast, so nothing is rounded on the way)."""

    def _apply(self, fn, recurse: bool = True):
        kept = [(module._parameters, name, t.data) for module in self.modules()
                for name, t in module._parameters.items() if t is not None]
        kept += [(module._buffers, name, t) for module in self.modules()
                 for name, t in module._buffers.items() if t is not None and t.is_floating_point()]
        super()._apply(fn, recurse)
        for store, name, old in kept:
            now = store[name]
            if now.dtype in _HALF and old.dtype not in _HALF:
                restored = old.to(device=now.device, dtype=torch.float32)
                if isinstance(now, nn.Parameter):
                    now.data = restored
                else:
                    store[name] = restored
        return self


class KernelGenerator(Float32Parameters):
    """Maps a sequence length ``L`` to a real convolution kernel of shape ``(C, H, L)``.

    Subclasses implement :meth:`kernel` and set :attr:`d_model` (``H``) and :attr:`channels`
    (``C``, output channels per feature; a bidirectional layer asks for twice the channels it
    outputs and uses the second half as the anti-causal kernel). :meth:`forward` checks ``L`` and
    the result's shape, so every generator gets the same errors.

    Recurrent generators (state space models) also implement :meth:`default_state` and
    :meth:`step`, and set ``recurrent = True``.

    Precision: a generator's parameters stay float32 when the module is cast to float16 or
    bfloat16 (``model.half()``, ``model.to(torch.bfloat16)``), as the reference SSM libraries keep
    ``A`` and ``dt``: S4D's imaginary parts reach ``N**2 / pi`` and a step size ``1e-3``, which 8
    bits of mantissa cannot hold, and kernels are generated in float32 in any case. The layer
    around it (skip term, output mixing) and the convolution take the cast dtype. ``.double()``
    casts them to float64, and the kernel is then computed in float64.

    Example:
        >>> gen = seqlayers.kernels.S4DKernel(d_model=4, d_state=8)
        >>> gen(100).shape
        torch.Size([1, 4, 100])
    """

    recurrent: bool = False

    def __init__(self, d_model: int, channels: int = 1) -> None:
        super().__init__()
        if not is_int(d_model) or d_model <= 0:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if not is_int(channels) or channels <= 0:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.d_model = d_model
        self.channels = channels

    def kernel(self, L: int) -> Tensor:
        """Compute the kernel for length ``L``: float32 tensor of shape ``(C, H, L)``."""
        raise NotImplementedError

    def forward(self, L: int) -> Tensor:
        """Return the kernel for length ``L``, shape ``(C, H, L)``, float32.

        ``L`` is an int, or a symbolic size while ``torch.compile(dynamic=True)`` or
        ``torch.export`` traces: a generator computes its kernel with torch ops of ``L``, so one
        graph serves every length.

        A generator whose parameters are float64 (``module.double()``) returns float64, so that
        gradients can be checked in double precision.
        """
        if not is_size(L) or L <= 0:
            raise ValueError(f"kernel length L must be a positive int, got {L!r}")
        k = self.kernel(L)
        expected = (self.channels, self.d_model, L)
        if tuple(k.shape) != expected:
            raise RuntimeError(
                f"{type(self).__name__}.kernel({L}) returned shape {tuple(k.shape)}, "
                f"expected (C, H, L) = {expected}"
            )
        return k if k.dtype == torch.float64 else k.float()

    def default_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero recurrent state for ``batch`` sequences (recurrent generators only)."""
        raise NotImplementedError(f"{type(self).__name__} has no recurrent mode")

    def step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Advance one time step: ``u_t (B, H) -> y_t (B, C, H)`` and the new state.

        ``y_t`` is the convolution output only (no skip term); it equals
        ``sum_s k[:, :, t - s] * u_s`` of the kernel of :meth:`forward`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no recurrent mode")

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, channels={self.channels}"
