"""LearnedButterfly and LongConv(learned_butterfly=True): exact at initialization, trainable
blocks, bidirectional, state dicts, optimizer hints, the ConvLayer conv hook, bad input."""

import pytest
import torch

import seqlayers
from seqlayers import LongConv
from seqlayers.kernels import LongConvKernel
from seqlayers.layers import LearnedButterfly, conv_layer
from seqlayers.ops import long_conv
from seqlayers.ops.conv import naive_long_conv
from seqlayers.optim import param_groups
from tests.helpers import REL_RMS_TOL, rel_rms

H, L_MAX = 6, 64
TOL = REL_RMS_TOL[torch.float32]


def pair(seed=0, **kwargs):
    """The same LongConv (same seed) without and with the learned butterfly."""
    torch.manual_seed(seed)
    plain = LongConv(H, L_MAX, squash_lambda=1e-4, **kwargs)
    torch.manual_seed(seed)
    learned = LongConv(H, L_MAX, squash_lambda=1e-4, learned_butterfly=True, **kwargs)
    return plain, learned


def block_params(layer):
    return [p for name, p in layer.named_parameters() if name.startswith("conv.")]


@pytest.mark.parametrize("l_max,n_fft,sizes,count", [(1, 1, (1, 1), 8), (64, 128, (8, 16), 1280),
                                                     (1000, 2048, (32, 64), 20480),
                                                     (1024, 2048, (32, 64), 20480)])
def test_sizes_and_parameter_count(l_max, n_fft, sizes, count):
    conv = LearnedButterfly(l_max)
    assert (conv.n_fft, conv.block_sizes) == (n_fft, sizes)
    assert sum(p.numel() for p in conv.parameters()) == count
    assert all(p.dtype == torch.float32 and p.shape[-1] == 2 for p in conv.parameters())


@pytest.mark.parametrize("L,Lk", [(1, 1), (15, 15), (64, 20), (100, 100), (257, 257)])
@pytest.mark.parametrize("B", [1, 3])
def test_module_at_init_equals_long_conv(L, Lk, B):
    """Inputs shorter than l_max go through the same N = 512 blocks, zero-padded."""
    conv = LearnedButterfly(257)
    u = torch.randn(B, H, L, requires_grad=True)
    k = torch.randn(H, Lk, requires_grad=True)
    D = torch.randn(H, requires_grad=True)
    dy = torch.randn(B, H, L)
    results = []
    for fn in (conv, naive_long_conv):
        y = fn(u, k, D)
        results.append([y.detach(), *torch.autograd.grad((y * dy).sum(), (u, k, D))])
    for got, want, name in zip(*results, ("y", "du", "dk", "dD")):
        assert rel_rms(got, want) < TOL, name


def test_module_rejects_inputs_beyond_its_fft_size():
    conv = LearnedButterfly(32)  # N = 64
    conv(torch.randn(1, 2, 40), torch.randn(2, 25))  # 40 + 25 - 1 = 64 fits
    with pytest.raises(ValueError, match=r"l_max=32\) has FFT size N=64: inputs need L \+ Lk - 1 <= 64 .*got L=40, Lk=26"):
        conv(torch.randn(1, 2, 40), torch.randn(2, 26))


def test_optimizer_steps_change_blocks_and_output():
    """Only the blocks train (lr 1e-2): they move, the output moves, the loss goes down."""
    torch.manual_seed(0)
    conv = LearnedButterfly(50)
    u, k = torch.randn(4, 3, 50), torch.randn(3, 50) / 10
    target = torch.randn(4, 3, 50)
    before = [p.detach().clone() for p in conv.parameters()]
    y0 = conv(u, k).detach()
    opt = torch.optim.Adam(conv.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = (conv(u, k) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        for p in conv.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(not torch.equal(p, q) for p, q in zip(conv.parameters(), before))
    assert rel_rms(conv(u, k), y0) > 1e-3


def test_param_groups_hint_no_weight_decay():
    layer = LongConv(H, L_MAX, learned_butterfly=True, lr=1e-3)
    groups = param_groups(layer, lr=1e-2, weight_decay=0.05)
    hinted = next(g for g in groups if g["lr"] == 1e-3)
    assert hinted["weight_decay"] == 0.0
    assert {id(p) for p in block_params(layer)} <= {id(p) for p in hinted["params"]}
    assert {id(p) for p in block_params(layer)} & {id(p) for g in groups if g is not hinted for p in g["params"]} == set()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("L", [1, 15, 64])
def test_layer_at_init_equals_layer_without(bidirectional, transposed, L):
    plain, learned = pair(bidirectional=bidirectional, transposed=transposed, channels=2)
    assert len(block_params(learned)) == 4 and not block_params(plain)
    x = torch.randn(3, H, L) if transposed else torch.randn(3, L, H)
    y_plain, y_learned = plain(x), learned(x)
    assert y_learned.shape == x.shape and y_learned.dtype == x.dtype
    assert rel_rms(y_learned, y_plain) < TOL
    y_plain.square().sum().backward()
    y_learned.square().sum().backward()
    grads = dict(plain.named_parameters())
    for name, p in learned.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        if name in grads:
            assert rel_rms(p.grad, grads[name].grad) < 1e-4, name


def test_double_layer_is_tight():
    plain, learned = pair(bidirectional=True)
    plain, learned = plain.double(), learned.double()
    x = torch.randn(2, 40, H, dtype=torch.float64)
    y = learned(x)
    assert y.dtype == torch.float64
    assert rel_rms(y, plain(x)) < 1e-8  # the blocks were rounded to float32 at construction


def test_state_dict_round_trip_after_training():
    _, layer = pair(bidirectional=True)
    opt = torch.optim.Adam(block_params(layer), lr=1e-2)
    x = torch.randn(2, 50, H)
    layer(x).square().mean().backward()
    opt.step()
    layer.eval()
    expected = layer(x)
    _, fresh = pair(seed=1, bidirectional=True)
    fresh.eval()
    assert rel_rms(fresh(x), expected) > 1e-3
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x), expected)
    assert {"conv.fwd_block1", "conv.fwd_block2", "conv.inv_block1", "conv.inv_block2"} <= set(layer.state_dict())


def test_layer_longer_input_raises_and_backend_conflicts():
    layer = LongConv(H, 32, learned_butterfly=True)
    with pytest.raises(ValueError, match=r"l_max=32.*got L=33"):
        layer(torch.randn(2, 33, H))
    with pytest.raises(ValueError, match=r"backend='torch' conflicts with conv=LearnedButterfly"):
        LongConv(H, 32, learned_butterfly=True, backend="torch")
    with pytest.raises(ValueError, match="learned_butterfly=True conflicts with conv="):
        LongConv(H, 32, learned_butterfly=True, conv=LearnedButterfly(32))
    LongConv(H, 32, learned_butterfly=True, backend="auto")


def test_sequence_model_takes_the_option():
    model = seqlayers.SequenceModel(3, 5, H, 2, layer="longconv",
                                    layer_kwargs={"l_max": 32, "learned_butterfly": True})
    assert sum(isinstance(m, LearnedButterfly) for m in model.modules()) == 2
    assert model(torch.randn(2, 32, 3)).shape == (2, 5)


def test_conv_layer_hook_takes_any_conv_module():
    """The hook is generic: ConvLayer calls conv(u, k, D) in place of long_conv, once per forward."""

    class CountingConv(torch.nn.Module):
        calls = 0

        def forward(self, u, k, D):
            self.calls += 1
            return long_conv(u, k, D, backend="naive")

    torch.manual_seed(0)
    ref = conv_layer(LongConvKernel(H, 30, channels=2), bidirectional=True)
    torch.manual_seed(0)
    layer = conv_layer(LongConvKernel(H, 30, channels=2), bidirectional=True, conv=CountingConv())
    x = torch.randn(2, 30, H)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-4, atol=1e-5)
    assert layer.conv.calls == 1
