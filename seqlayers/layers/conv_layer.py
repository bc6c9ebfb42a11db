"""The layer every family shares: kernel generator -> long convolution -> skip, activation,
dropout, output mixing.

A layer family is a :class:`~seqlayers.kernels.KernelGenerator` plus a thin subclass of
:class:`ConvLayer` that builds it. Everything else (input checks, transposition, the skip term
``D``, bidirectional kernels, activation, dropout tied over the length, GLU/linear mixing, and the
recurrent ``step``) lives here once.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_choice
from ..kernels.base import KernelGenerator
from ..ops.conv import long_conv
from ..ops.dispatch import check_name

ACTIVATIONS = {
    "identity": nn.Identity,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
}
MIXINGS = ("glu", "linear", "none")


class TiedDropout(nn.Module):
    """Dropout whose mask is shared over the last (length) dimension: ``(B, F, L)`` in, same out."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        mask = torch.empty(x.shape[:-1] + (1,), device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ConvLayer(nn.Module):
    """A long-convolution layer around any kernel generator.

    ``x (B, L, H)`` -> kernel ``k = generator(L)`` -> ``y_c = k_c * x + D_c x`` for each of the
    ``C`` channels -> activation -> dropout (tied over the length) -> output mixing
    (``Linear(C*H -> 2H)`` + GLU by default) -> ``(B, L, H)``.

    Args:
        generator: a :class:`KernelGenerator` with ``d_model = H``. For a bidirectional layer it
            must have an even number of channels: the first half are causal kernels, the second
            half anti-causal ones (they see the strict future: no wrap-around, no double-counted
            present).
        bidirectional: combine a causal and an anti-causal kernel per output channel.
        activation: ``"gelu"`` (default), ``"silu"``, ``"relu"``, ``"tanh"`` or ``"identity"``.
        mixing: ``"glu"`` (``Linear(C*H, 2H)`` + GLU, default), ``"linear"`` (``Linear(C*H, H)``)
            or ``"none"`` (only when ``C == 1``).
        dropout: probability, one mask per (batch, feature) shared over the length.
        transposed: inputs and outputs are ``(B, H, L)`` instead of ``(B, L, H)``.
        skip: learn the skip term ``D`` of shape ``(C, H)``.
        backend: ``long_conv`` backend for this layer (``"auto"`` by default); an unknown name
            raises ValueError here, at construction.
        conv: a module computing the convolution instead of :func:`seqlayers.ops.long_conv`, with
            its signature ``conv(u (B, H, L), k (H, Lk), D (H,) or None) -> (B, H, L)``, e.g.
            :class:`~seqlayers.layers.LearnedButterfly`; None (default) for ``long_conv``. It
            conflicts with a ``backend`` other than ``"auto"`` (ValueError).

    Non-finite input: the FFT backends mix every position into every frequency, so a NaN or Inf
    at one position of a feature makes that feature's whole output NaN, earlier positions
    included (``backend="naive"`` keeps causality for it; see :func:`seqlayers.ops.long_conv`).

    Example:
        >>> layer = ConvLayer(seqlayers.kernels.S4DKernel(d_model=16))
        >>> layer(torch.randn(2, 100, 16)).shape
        torch.Size([2, 100, 16])
    """

    backend_op = "long_conv"
    """The op whose backends ``backend=`` names (S5 scans: ``"linear_scan"``)."""

    def __init__(
        self,
        generator: KernelGenerator,
        *,
        bidirectional: bool = False,
        activation: str = "gelu",
        mixing: str = "glu",
        dropout: float = 0.0,
        transposed: bool = False,
        skip: bool = True,
        backend: str = "auto",
        conv: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(generator, KernelGenerator):
            raise TypeError(f"generator must be a KernelGenerator, got {type(generator).__name__}")
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("mixing", mixing, MIXINGS)
        if bidirectional and generator.channels % 2:
            raise ValueError(
                f"a bidirectional layer needs a generator with an even number of channels "
                f"(causal + anti-causal halves), got channels={generator.channels}"
            )
        check_name(self.backend_op, backend)
        if conv is not None and backend != "auto":
            raise ValueError(
                f"backend={backend!r} conflicts with conv={type(conv).__name__}: the convolution is "
                f"computed by that module, not by a long_conv backend; leave backend at 'auto'"
            )
        self.d_model = H = generator.d_model
        self.kernel = generator
        self.bidirectional = bidirectional
        self.channels = C = generator.channels // (2 if bidirectional else 1)
        self.transposed = transposed
        self.backend = backend
        self.conv = conv
        self.D = nn.Parameter(torch.randn(C, H)) if skip else None
        self.activation = ACTIVATIONS[activation]()
        self.dropout = TiedDropout(dropout)
        if mixing == "glu":
            self.mixing = nn.Sequential(nn.Linear(C * H, 2 * H), nn.GLU(dim=-1))
        elif mixing == "linear":
            self.mixing = nn.Linear(C * H, H)
        else:
            if C != 1:
                raise ValueError(f"mixing='none' needs one output channel, got channels={C}")
            self.mixing = nn.Identity()

    # ------------------------------------------------------------------ input checks
    def _check_input(self, x: Tensor) -> Tensor:
        """Validate ``x`` and return it as ``(B, H, L)``."""
        layout = "(B, H, L)" if self.transposed else "(B, L, H)"
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point() or x.is_complex():
            raise TypeError(f"{type(self).__name__} expects a real floating-point input, got dtype {x.dtype}")
        if x.dim() != 3:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {layout} with H={self.d_model}, "
                f"got {tuple(x.shape)}"
            )
        h_dim = 1 if self.transposed else 2
        if x.shape[h_dim] != self.d_model:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {layout} with H={self.d_model}, "
                f"got {tuple(x.shape)}"
            )
        if x.shape[3 - h_dim] == 0:
            raise ValueError(f"{type(self).__name__} expects L >= 1, got {tuple(x.shape)}")
        return x if self.transposed else x.transpose(1, 2)

    # ------------------------------------------------------------------ core
    def _skip_term(self) -> Tensor | None:
        return None if self.D is None else self.D.reshape(-1)

    def _convolve(self, u: Tensor) -> Tensor:
        """``u (B, H, L)`` -> convolution plus skip term, ``(B, C, H, L)`` in ``u``'s dtype."""
        B, H, L = u.shape
        C = self.channels
        k = self.kernel(L)  # (C or 2C, H, L)
        u_in = u.unsqueeze(1).expand(B, C, H, L)
        D = self._skip_term()
        if self.bidirectional:
            # The anti-causal half runs on the reversed sequence. Its kernel is delayed by one step
            # so that it sees only the strict future: y[t] += sum_{m >= 1} k_bwd[m - 1] u[t + m].
            k_fwd, k_bwd = k[:C], F.pad(k[C:], (1, 0))[..., :L]
            k = torch.cat([k_fwd, k_bwd])
            u_in = torch.cat([u_in, u_in.flip(-1)], dim=1)
            if D is not None:
                D = torch.cat([D, torch.zeros_like(D)])
        n_conv = k.shape[0]
        u_in, k = u_in.reshape(B, n_conv * H, L), k.reshape(n_conv * H, L)
        if self.conv is None:
            y = long_conv(u_in, k, D, backend=self.backend)
        else:
            y = self.conv(u_in, k, D)
        y = y.view(B, n_conv, H, L)
        if self.bidirectional:
            y = y[:, :C] + y[:, C:].flip(-1)
        return y

    def _mix(self, y: Tensor) -> Tensor:
        """Output mixing of ``(..., C*H)`` in the parameters' dtype (the caller casts back)."""
        weight = next(self.mixing.parameters(), None)
        if weight is not None and not torch.is_autocast_enabled(y.device.type):
            y = y.to(weight.dtype)
        return self.mixing(y)

    def _post(self, y: Tensor) -> Tensor:
        """``(B, C, H, L)`` -> activation, dropout, mixing -> ``(B, L, H)``."""
        B, C, H, L = y.shape
        y = self.dropout(self.activation(y.reshape(B, C * H, L)))
        return self._mix(y.transpose(1, 2))

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, L, H)`` (``(B, H, L)`` if transposed) -> ``y`` of the same shape and dtype."""
        u = self._check_input(x)
        y = self._post(self._convolve(u))
        y = y.transpose(1, 2) if self.transposed else y
        return y.to(x.dtype)

    # ------------------------------------------------------------------ recurrent mode
    def _check_recurrent(self) -> None:
        if self.bidirectional:
            raise RuntimeError(f"{type(self).__name__}: a bidirectional layer has no recurrent step mode")
        if not self.kernel.recurrent:
            raise RuntimeError(f"{type(self).__name__}: {type(self.kernel).__name__} has no recurrent step mode")

    def default_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero state for :meth:`step`, for ``batch`` sequences."""
        self._check_recurrent()
        return self.kernel.default_state(batch, device=device)

    def _step_core(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x_t (B, H)`` -> convolution output plus skip term ``(B, C, H)`` and the new state."""
        y, state = self.kernel.step(x_t, state)
        if self.D is not None:
            y = y + self.D * x_t.unsqueeze(1).to(y.dtype)
        return y, state

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the recurrence: ``x_t (B, H)`` -> ``(y_t (B, H), new_state)``.

        Running ``step`` over ``x[:, t]`` for ``t = 0 .. L-1`` from :meth:`default_state`
        gives ``forward(x)`` (in eval mode: dropout is not applied here).

        Example:
            >>> layer = seqlayers.S4D(8).eval()
            >>> state = layer.default_state(2)
            >>> y_t, state = layer.step(torch.randn(2, 8), state)
        """
        self._check_recurrent()
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.d_model:
            shape = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(f"step expects x_t of shape (B, H) with H={self.d_model}, got {shape}")
        if not x_t.is_floating_point() or x_t.is_complex():
            raise TypeError(f"step expects a real floating-point x_t, got dtype {x_t.dtype}")
        y, state = self._step_core(x_t, state)
        B, C, H = y.shape
        y = self.activation(y.reshape(B, C * H))
        return self._mix(y).to(x_t.dtype), state

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, channels={self.channels}, bidirectional={self.bidirectional}, "
            f"transposed={self.transposed}, backend={self.backend!r}"
        )


LAYER_KEYWORDS = tuple(inspect.signature(ConvLayer.__init__).parameters)[2:]
"""The keywords :class:`ConvLayer` takes besides the generator."""


def build_generator(generator_cls: type[KernelGenerator], *args, channels: int = 1, bidirectional: bool = False,
                    **kwargs) -> tuple[KernelGenerator, dict]:
    """``(generator, layer_kwargs)`` for a layer family: ``generator_cls(*args, channels=...,
    **kernel keywords)`` and the keywords that go to :class:`ConvLayer`.

    ``channels`` is the layer's output channels per feature; a bidirectional layer asks the
    generator for twice as many (causal and anti-causal halves). This is the one place that
    doubling happens; :class:`ConvLayer` halves it back.
    """
    layer_kwargs = {name: kwargs.pop(name) for name in LAYER_KEYWORDS if name in kwargs}
    accepted = inspect.signature(generator_cls).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}: expected {generator_cls.__name__}'s "
                        f"{[n for n in accepted if n != 'channels']} or the layer's {list(LAYER_KEYWORDS)}")
    generator = generator_cls(*args, channels=channels * (2 if bidirectional else 1), **kwargs)
    return generator, dict(layer_kwargs, bidirectional=bidirectional)


def layer_family(generator_cls: type[KernelGenerator]):
    """Class decorator of a layer family built on ``generator_cls``: its ``__init__`` passes the
    generator's keywords through (``**kwargs``), and this makes ``help()``,
    ``inspect.signature`` and the docstring show them with their defaults, beside the layer's."""

    def decorate(cls: type[ConvLayer]) -> type[ConvLayer]:
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in params}
        passed = {}
        for source in (generator_cls, ConvLayer):
            for p in inspect.signature(source).parameters.values():
                if p.name not in names | {"generator"} and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                    if source is generator_cls and p.name != "channels":
                        passed[p.name] = p
                    params.append(p.replace(kind=p.KEYWORD_ONLY))
                    names.add(p.name)
        cls.__init__.__signature__ = inspect.Signature(params)
        listed = ", ".join(f"{name}={p.default!r}" for name, p in passed.items())
        cls.__doc__ = (cls.__doc__ or "").rstrip() + (
            f"\n\n    Kernel keywords, passed to :class:`~seqlayers.kernels.{generator_cls.__name__}` "
            f"(see its docstring):\n    ``{listed}``.\n")
        cls.generator_class = generator_cls
        return cls

    return decorate


def conv_layer(generator: KernelGenerator, **kwargs) -> ConvLayer:
    """Build the shared long-convolution layer around ``generator``; see :class:`ConvLayer`.

    Example:
        >>> gen = seqlayers.kernels.S4DKernel(d_model=16, d_state=32)
        >>> layer = seqlayers.layers.conv_layer(gen, dropout=0.1)
    """
    return ConvLayer(generator, **kwargs)
