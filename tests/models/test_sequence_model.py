"""SequenceModel: shapes, padding masks, pooling, encoders, bad input."""

import copy

import pytest
import torch

import seqlayers


@pytest.mark.parametrize("pool", ["mean", "max", "last"])
@pytest.mark.parametrize("norm,prenorm", [("layer", True), ("batch", False), ("none", True)])
def test_shapes(pool, norm, prenorm):
    model = seqlayers.SequenceModel(3, 7, 16, 2, norm=norm, prenorm=prenorm, pool=pool)
    assert model(torch.randn(4, 25, 3)).shape == (4, 7)


def test_pool_none_and_embedding():
    model = seqlayers.SequenceModel(11, 5, 16, 1, encoder="embedding", pool="none")
    assert model(torch.randint(0, 11, (2, 30))).shape == (2, 30, 5)


LAYER_KWARGS = {
    "s4d": {"d_state": 8},
    "s5": {"d_state": 8, "blocks": 2},
    "sgconv": {"l_max": 32, "kernel_dim": 8},
    "longconv": {"l_max": 32},
}
NORMS = [("layer", True), ("layer", False), ("batch", True), ("batch", False)]
POOLS = ["mean", "max", "last", "none"]


def _model(layer, bidirectional, norm, prenorm, **kwargs):
    """A small model whose norms map a zero row to a non-zero one (random LayerNorm biases,
    random BatchNorm running statistics), so that padding a layer can read is visible."""
    model = seqlayers.SequenceModel(
        3, 4, 8, 2, layer, norm=norm, prenorm=prenorm,
        layer_kwargs={**LAYER_KWARGS[layer], "bidirectional": bidirectional}, **kwargs,
    )
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_()
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    return model


def _padded(x, lengths, L, fill):
    """``x (B, L0, 3)`` cut to ``lengths`` and padded to ``L`` with ``fill(shape)``."""
    out = fill((x.shape[0], L, x.shape[2]))
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n]
    return out


@pytest.mark.parametrize("norm,prenorm", NORMS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layer", list(LAYER_KWARGS))
def test_padding_does_not_change_the_valid_outputs(layer, bidirectional, norm, prenorm):
    model = _model(layer, bidirectional, norm, prenorm).eval()
    x, lengths = torch.randn(2, 9, 3), torch.tensor([9, 5])
    padded = _padded(x, lengths, 20, lambda shape: 100 * torch.randn(shape))
    for pool in POOLS:
        model.pool = pool
        out = model(padded, lengths=lengths)
        for b, n in enumerate(lengths.tolist()):
            alone = model(x[b : b + 1, :n])[0]
            got = out[b, :n] if pool == "none" else out[b]
            torch.testing.assert_close(got, alone, rtol=1e-5, atol=2e-6, msg=f"pool={pool}, sequence {b}")


@pytest.mark.parametrize("norm,prenorm", NORMS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_nan_and_inf_in_the_padding_reach_neither_outputs_nor_gradients(bidirectional, norm, prenorm):
    model = _model("s4d", bidirectional, norm, prenorm).train()  # train: BatchNorm takes batch statistics
    x, lengths = torch.randn(3, 9, 3), torch.tensor([9, 5, 2])
    clean = _padded(x, lengths, 12, torch.zeros)
    dirty = clean.clone()
    dirty[1, 5:] = float("nan")
    dirty[2, 2:7], dirty[2, 7:] = float("inf"), float("-inf")
    for pool in POOLS:
        model.pool = pool
        grads = []
        for inputs in (clean, dirty):
            model.zero_grad()
            out = model(inputs, lengths=lengths)
            out.square().sum().backward()
            grads.append([p.grad.clone() for p in model.parameters()])
            assert torch.isfinite(out).all(), pool
        torch.testing.assert_close(model(dirty, lengths=lengths), model(clean, lengths=lengths))
        for g_dirty, g_clean in zip(*grads[::-1]):
            torch.testing.assert_close(g_dirty, g_clean)


def test_train_mode_batch_norm_takes_statistics_from_the_valid_positions():
    model = _model("s4d", True, "batch", True).train()
    other = copy.deepcopy(model)
    x = torch.randn(1, 7, 3)
    padded = _padded(x, torch.tensor([7]), 16, lambda shape: 100 * torch.randn(shape))
    torch.testing.assert_close(other(padded, lengths=torch.tensor([7])), model(x), rtol=1e-5, atol=2e-6)
    for a, b in zip(model.buffers(), other.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # same running statistics


def test_pool_none_outputs_zero_at_padded_positions():
    model = _model("s4d", True, "layer", True, pool="none").eval()
    out = model(torch.randn(2, 10, 3), lengths=torch.tensor([10, 4]))
    assert (out[1, 4:] == 0).all() and (out[1, :4] != 0).all()


def test_embedding_padding_may_hold_any_token_id():
    model = seqlayers.SequenceModel(11, 5, 8, 1, encoder="embedding", layer_kwargs={"d_state": 8}).eval()
    tokens = torch.randint(0, 11, (1, 6))
    padded = torch.cat([tokens, torch.full((1, 4), -1)], 1)  # -1: not a valid id
    torch.testing.assert_close(model(padded, lengths=torch.tensor([6])), model(tokens), rtol=1e-5, atol=2e-6)


def test_layer_kwargs_and_dropout_default():
    model = seqlayers.SequenceModel(1, 2, 8, 1, dropout=0.25, layer_kwargs={"d_state": 4, "init": "legs"})
    layer = model.blocks[0].layer
    assert layer.dropout.p == 0.25 and layer.kernel.d_state == 4 and layer.kernel.init == "legs"


def test_trains_a_step():
    model = seqlayers.SequenceModel(1, 2, 8, 1)
    opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=1e-2, weight_decay=0.01))
    x, y = torch.randn(8, 16, 1), torch.randint(0, 2, (8,))
    loss0 = torch.nn.functional.cross_entropy(model(x), y)
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < loss0.item()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"layer": "mamba"}, "unknown layer 'mamba'"),
        ({"encoder": "conv"}, "unknown encoder"),
        ({"pool": "cls"}, "unknown pool"),
        ({"norm": "rms"}, "unknown norm"),
        ({"d_model": 0}, "d_model must be a positive int"),
        ({"n_layers": -1}, "n_layers must be a non-negative int"),
    ],
)
def test_bad_configuration(kwargs, match):
    args = {"d_input": 1, "d_output": 2, "d_model": 8, "n_layers": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        seqlayers.SequenceModel(**args)


def test_bad_input():
    model = seqlayers.SequenceModel(3, 2, 8, 1)
    with pytest.raises(ValueError, match=r"\(B, L, d_input=3\)"):
        model(torch.randn(2, 10, 4))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.randint(0, 2, (2, 10, 3)))
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor of shape \(B,\) = \(2,\)"):
        model(torch.randn(2, 10, 3), lengths=torch.tensor([3]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, L = 10\]"):
        model(torch.randn(2, 10, 3), lengths=torch.tensor([3, 11]))
    emb = seqlayers.SequenceModel(5, 2, 8, 1, encoder="embedding")
    with pytest.raises(ValueError, match="integer token ids"):
        emb(torch.randn(2, 10))
