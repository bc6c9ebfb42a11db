"""SequenceModel: shapes, padding masks, pooling, encoders, bad input."""

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


@pytest.mark.parametrize("pool", ["mean", "max", "last"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_the_result(pool, bidirectional):
    model = seqlayers.SequenceModel(
        2, 3, 8, 2, pool=pool, layer_kwargs={"d_state": 8, "bidirectional": bidirectional}
    ).eval()
    x = torch.randn(2, 20, 2)
    lengths = torch.tensor([20, 12])
    padded = x.clone()
    padded[1, 12:] = torch.randn(8, 2) * 100
    out = model(padded, lengths=lengths)
    torch.testing.assert_close(out[1], model(x[1:2, :12])[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[0], model(x[:1])[0], rtol=1e-4, atol=1e-5)


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
