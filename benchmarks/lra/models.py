"""Models of the LRA runs: a SequenceModel classifier, the paired (Retrieval) classifier, and the
self-pretraining model, all around one backbone so that pretrained weights carry over.

The backbone is a :class:`seqlayers.SequenceModel`; its ``decoder`` is the head. Pretraining
uses ``pool="none"`` with a per-position head (vocabulary logits, or one pixel value);
fine-tuning loads everything except ``decoder.*``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import seqlayers

from .data import TaskData

LENGTH_LAYERS = ("sgconv", "longconv")   # layers sized by l_max


def build_backbone(cfg: dict, data: TaskData, d_input: int, d_output: int, pool: str) -> seqlayers.SequenceModel:
    """A SequenceModel from the config's ``model`` section for ``data``'s kind of input."""
    m = cfg["model"]
    layer_kwargs = {"bidirectional": m["bidirectional"], **m["layer_kwargs"]}
    if cfg["model_name"] in LENGTH_LAYERS:
        layer_kwargs.setdefault("l_max", data.l_max)
    return seqlayers.SequenceModel(
        d_input, d_output, m["d_model"], m["n_layers"], layer=cfg["model_name"],
        encoder="embedding" if data.kind == "tokens" else "linear",
        norm=m["norm"], prenorm=m["prenorm"], pool=pool, dropout=m["dropout"], layer_kwargs=layer_kwargs,
    )


class PairClassifier(nn.Module):
    """Classify document pairs: one shared backbone, then an MLP on ``[x1, x2, x1 - x2, x1 * x2]``.

    ``forward(x (2B, L), lengths (2B,))`` with the first documents in rows ``:B`` and the second
    ones in rows ``B:`` (as ``collate_pairs`` builds them) returns logits ``(B, n_classes)``.
    The backbone pools (mean over valid positions) and projects to ``d_model`` features.
    """

    def __init__(self, backbone: seqlayers.SequenceModel, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        d = backbone.d_output
        self.head = nn.Sequential(nn.Linear(4 * d, d), nn.GELU(), nn.Linear(d, n_classes))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        first, second = self.backbone(x, lengths).chunk(2)
        return self.head(torch.cat([first, second, first - second, first * second], dim=-1))


def input_width(data: TaskData, pretrain: bool) -> int:
    """Encoder input: the vocabulary for tokens; 1 pixel channel, plus the mask channel when pretraining."""
    if data.kind == "tokens":
        return data.vocab_size
    return 2 if pretrain else 1


def build_classifier(cfg: dict, data: TaskData) -> nn.Module:
    """``forward(x, lengths) -> (B, n_classes)`` logits for ``data``."""
    if data.paired:
        return PairClassifier(build_backbone(cfg, data, input_width(data, False), cfg["model"]["d_model"], "mean"),
                              data.n_classes)
    return build_backbone(cfg, data, input_width(data, False), data.n_classes, "mean")


def build_pretrainer(cfg: dict, data: TaskData) -> seqlayers.SequenceModel:
    """Per-position model: ``(B, L, vocab_size)`` logits for tokens, ``(B, L, 1)`` values for pixels."""
    d_output = data.vocab_size if data.kind == "tokens" else 1
    return build_backbone(cfg, data, input_width(data, True), d_output, "none")


def backbone_of(model: nn.Module) -> seqlayers.SequenceModel:
    """The SequenceModel inside ``model`` (itself, or a PairClassifier's backbone)."""
    return model.backbone if isinstance(model, PairClassifier) else model


def load_backbone(model: nn.Module, state: dict) -> None:
    """Load a checkpoint's backbone weights into ``model``, dropping its head (``decoder.*``).

    A pixel encoder pretrained on ``[x * (1 - m), m]`` has two input columns; fine-tuning feeds
    ``x`` alone, which equals the pretraining input with ``m = 0``, so only the first column is kept.
    Raises ValueError naming the mismatching keys when the architectures differ.
    """
    backbone = backbone_of(model)
    weights = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    enc = weights.get("encoder.weight")
    target = backbone.encoder.weight
    if enc is not None and isinstance(backbone.encoder, nn.Linear) and enc.shape[1] > target.shape[1]:
        weights["encoder.weight"] = enc[:, : target.shape[1]]
    own = backbone.state_dict()
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in weights and not k.startswith("decoder.")]
    unexpected = [k for k in weights if k not in own]
    if mismatched or missing or unexpected:
        raise ValueError(
            "checkpoint does not fit this model (same task, model and model settings expected): "
            f"shape mismatch {mismatched[:5]}, missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    backbone.load_state_dict(weights, strict=False)
