"""SequenceModel: encoder, residual blocks of any seqlayers layer, pooling, decoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import LAYERS
from .._validation import check_choice, is_int

ENCODERS = ("linear", "embedding")
NORMS = ("layer", "batch", "none")
POOLS = ("mean", "max", "last", "none")


def _keep_valid(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x (B, L, ...)`` with the padded positions (``mask (B, L)`` False) set to 0 by a select, so that
    NaN or Inf there cannot leak (a multiply by the mask would turn them into NaN)."""
    return x if mask is None else torch.where(mask.unsqueeze(-1), x, 0.0)


def _masked_batch_norm(bn: nn.BatchNorm1d, x: Tensor, mask: Tensor) -> Tensor:
    """Train-mode ``bn`` over ``x (B, L, H)`` with statistics from the valid positions of ``mask (B, L)``.

    Same result and running-statistics update as ``bn`` on the valid positions alone; the padded
    positions are normalized with those statistics (their values are finite and never read).
    """
    valid = mask.unsqueeze(-1)
    xv = torch.where(valid, x.float(), 0.0)  # before any arithmetic: NaN in padding reaches no gradient
    count = valid.sum(dtype=torch.float32)
    mean = xv.sum((0, 1)) / count
    var = torch.where(valid, (xv - mean).square(), 0.0).sum((0, 1)) / count
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * count / (count - 1).clamp_min(1), bn.momentum)
    y = (xv - mean) * torch.rsqrt(var + bn.eps)
    if bn.affine:
        y = y * bn.weight + bn.bias
    return y.to(x.dtype)


class _Norm(nn.Module):
    """LayerNorm, BatchNorm or identity over the feature dim of ``(B, L, H)``.

    ``forward(x, mask=None)``: with ``mask (B, L)``, a BatchNorm in train mode takes its statistics
    from the valid positions only; every other norm acts on each position alone, so ignores it.
    """

    def __init__(self, kind: str, d_model: int) -> None:
        super().__init__()
        check_choice("norm", kind, NORMS)
        self.kind = kind
        if kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.kind == "batch":
            if mask is not None and self.norm.training:
                return _masked_batch_norm(self.norm, x, mask)
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x)


class ResidualBlock(nn.Module):
    """``x + dropout(layer(norm(x)))`` (prenorm) or ``norm(x + dropout(layer(x)))`` (postnorm).

    ``forward(x (B, L, H), mask=None)``: with ``mask (B, L)`` (True at valid positions) the layer's
    input is 0 at the padded positions (a select, after the norm in prenorm), so a bidirectional
    layer's anti-causal kernel reads nothing from the padding; a train-mode BatchNorm takes its
    statistics from the valid positions.
    """

    def __init__(self, layer: nn.Module, d_model: int, norm: str, prenorm: bool, dropout: float) -> None:
        super().__init__()
        self.layer = layer
        self.norm = _Norm(norm, d_model)
        self.prenorm = prenorm
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.prenorm:
            return x + self.dropout(self.layer(_keep_valid(self.norm(x, mask), mask)))
        return self.norm(x + self.dropout(self.layer(_keep_valid(x, mask))), mask)


class SequenceModel(nn.Module):
    """A stack of seqlayers layers with an encoder, pooling and a decoder.

    ``x`` -> encoder -> ``n_layers`` residual blocks -> (final norm if prenorm) -> pooling ->
    ``Linear(d_model, d_output)``.

    Args:
        d_input: features per input position, or the vocabulary size with ``encoder="embedding"``.
        d_output: output features (classes).
        d_model: width ``H`` of the layers.
        n_layers: number of residual blocks.
        layer: ``"s4d"``, ``"s5"``, ``"sgconv"`` or ``"longconv"`` (see ``seqlayers.layers.LAYERS``).
        encoder: ``"linear"`` (real inputs ``(B, L, d_input)``) or ``"embedding"`` (token ids
            ``(B, L)``).
        norm: ``"layer"`` (default), ``"batch"`` or ``"none"``.
        prenorm: normalize before each layer (default) or after the residual sum.
        pool: ``"mean"`` / ``"max"`` / ``"last"`` over the valid positions, or ``"none"``.
        dropout: residual dropout, also the layers' dropout unless ``layer_kwargs`` sets it.
        layer_kwargs: keyword arguments of the layer (``l_max`` for SGConv and LongConv, ...).

    ``forward(x, lengths=None)``: ``lengths (B,)`` gives each sequence's valid length. Positions
    past it are padding and never change the valid outputs, whatever they hold (NaN, Inf, any
    token id): the input is set to 0 there, so is every layer's input (after the norm), a
    BatchNorm in train mode takes its statistics from the valid positions only, and pooling reads
    only the valid positions. All masking is a select (``torch.where``), never a multiply. Returns
    ``(B, d_output)`` when pooled, ``(B, L, d_output)`` with ``pool="none"`` (0 at padded positions).

    Example:
        >>> model = seqlayers.SequenceModel(1, 10, d_model=64, n_layers=4)
        >>> model(torch.randn(8, 784, 1)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        d_input: int,
        d_output: int,
        d_model: int,
        n_layers: int,
        layer: str = "s4d",
        *,
        encoder: str = "linear",
        norm: str = "layer",
        prenorm: bool = True,
        pool: str = "mean",
        dropout: float = 0.0,
        layer_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        check_choice("layer", layer, LAYERS)
        check_choice("encoder", encoder, ENCODERS)
        check_choice("pool", pool, POOLS)
        for name, value in (("d_input", d_input), ("d_output", d_output), ("d_model", d_model)):
            if not is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not is_int(n_layers) or n_layers < 0:
            raise ValueError(f"n_layers must be a non-negative int, got {n_layers!r}")
        layer_kwargs = dict(layer_kwargs or {})
        layer_kwargs.setdefault("dropout", dropout)
        self.d_input, self.d_output, self.d_model = d_input, d_output, d_model
        self.encoder_kind, self.pool = encoder, pool
        self.encoder = nn.Embedding(d_input, d_model) if encoder == "embedding" else nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(
            ResidualBlock(LAYERS[layer](d_model, **layer_kwargs), d_model, norm, prenorm, dropout)
            for _ in range(n_layers)
        )
        self.final_norm = _Norm(norm if prenorm else "none", d_model)
        self.decoder = nn.Linear(d_model, d_output)

    def _check_input(self, x: Tensor) -> None:
        if self.encoder_kind == "embedding":
            if x.dim() != 2 or x.is_floating_point() or x.is_complex():
                raise ValueError(
                    f"encoder='embedding' expects integer token ids of shape (B, L), got {tuple(x.shape)} {x.dtype}"
                )
        elif x.dim() != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"expected input of shape (B, L, d_input={self.d_input}), got {tuple(x.shape)}")
        elif not x.is_floating_point():
            raise TypeError(f"encoder='linear' expects a floating-point input, got {x.dtype}")

    def _valid_mask(self, lengths: Tensor | None, B: int, L: int, device) -> Tensor | None:
        if lengths is None:
            return None
        if not isinstance(lengths, Tensor) or tuple(lengths.shape) != (B,) or lengths.is_floating_point():
            got = f"{tuple(lengths.shape)} {lengths.dtype}" if isinstance(lengths, Tensor) else type(lengths).__name__
            raise ValueError(f"lengths must be an integer tensor of shape (B,) = ({B},), got {got}")
        in_range = ((lengths >= 1) & (lengths <= L)).all()
        if torch.compiler.is_compiling():  # no data-dependent branch in a graph: checked as it runs
            torch._assert_async(in_range, "SequenceModel: lengths must lie in [1, L]")
        elif not bool(in_range):
            raise ValueError(f"lengths must lie in [1, L = {L}], got min {int(lengths.min())}, max {int(lengths.max())}")
        return torch.arange(L, device=device) < lengths.to(device).unsqueeze(1)  # (B, L)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x (B, L, d_input)`` or token ids ``(B, L)`` -> ``(B, d_output)`` or ``(B, L, d_output)``."""
        self._check_input(x)
        B, L = x.shape[:2]
        mask = self._valid_mask(lengths, B, L, x.device)
        if mask is not None:
            x = torch.where(mask if self.encoder_kind == "embedding" else mask.unsqueeze(-1), x, 0)
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h, mask)
        h = self.final_norm(h, mask)
        if self.pool == "none":
            return _keep_valid(self.decoder(h), mask)
        return self.decoder(self._pool(h, mask, lengths))

    def _pool(self, h: Tensor, mask: Tensor | None, lengths: Tensor | None) -> Tensor:
        if mask is None:
            if self.pool == "mean":
                return h.mean(1)
            if self.pool == "max":
                return h.amax(1)
            return h[:, -1]
        if self.pool == "mean":
            return _keep_valid(h, mask).sum(1) / lengths.to(h.dtype).unsqueeze(-1)
        if self.pool == "max":
            return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        return h[torch.arange(h.shape[0], device=h.device), lengths.to(h.device) - 1]
