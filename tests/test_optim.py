"""Optimizer hints live on the modules: they survive copies, serialization and wrappers."""

import copy
import pickle

import pytest
import torch
import torch.distributed as dist
from torch import nn

import seqlayers
from seqlayers.optim import param_groups, set_optim_hint

LR, WD = 1e-2, 0.05


def _model() -> nn.Module:
    """Every family that sets hints, each with its own lr: four hinted settings plus the default."""
    return nn.Sequential(
        seqlayers.S4D(4, 4, lr=1e-3),
        seqlayers.S5(4, 4, blocks=2, lr=2e-3),
        seqlayers.SGConv(4, 16, kernel_dim=4, lr=5e-4),
        seqlayers.LongConv(4, 16, lr=3e-4),
        seqlayers.layers.LearnedButterfly(8, lr=4e-4),
    )


def _settings(model: nn.Module, prefix: str = "") -> dict[str, tuple[float, float]]:
    """``parameter name (without prefix) -> (lr, weight_decay)`` as param_groups assigns them."""
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in param_groups(model, LR, WD) for p in g["params"]}
    return {name.removeprefix(prefix): by_id[id(p)] for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def expected():
    settings = _settings(_model())
    assert len(set(settings.values())) == 6  # default, S4D, S5, SGConv (5e-4, WD), LongConv, butterfly
    return settings


def _pickled(model):
    return pickle.loads(pickle.dumps(model))


def _saved(model, tmp_path):
    torch.save(model, tmp_path / "model.pt")
    return torch.load(tmp_path / "model.pt", weights_only=False)


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_hints_survive_copies(how, expected, tmp_path):
    model = _model()
    copied = {"deepcopy": copy.deepcopy, "pickle": _pickled, "torch.save": lambda m: _saved(m, tmp_path)}[how](model)
    assert _settings(copied) == expected


def test_hints_survive_averaged_model(expected):
    averaged = torch.optim.swa_utils.AveragedModel(_model())
    assert _settings(averaged, prefix="module.") == expected
    torch.optim.AdamW(param_groups(averaged.module, LR, WD))


def test_hints_survive_new_parameter_objects(expected):
    model = _model()
    model.load_state_dict(_model().state_dict(), assign=True)  # replaces every Parameter
    assert _settings(model) == expected


def test_shared_parameters_appear_once():
    layer = seqlayers.S4D(4, 4, lr=1e-3)
    plain = nn.Linear(4, 4)
    plain.weight = layer.kernel.log_A_real  # (4, 2): shared with a module that sets no hint
    model = nn.ModuleList([layer, layer, plain])
    groups = param_groups(model, LR, WD)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == len(list(model.parameters()))
    hinted = next(g for g in groups if g["lr"] == 1e-3)
    assert any(p is layer.kernel.log_A_real for p in hinted["params"])


def test_hints_on_a_submodule_parameter_and_legacy_attribute():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    set_optim_hint(model, "0.weight", lr=1e-4)
    model[1].bias._optim = {"lr": 7e-4}  # hints set by hand the old way are still honored
    settings = _settings(model)
    assert settings["0.weight"] == (1e-4, 0.0) and settings["1.bias"] == (7e-4, WD)
    assert settings["0.bias"] == settings["1.weight"] == (LR, WD)
    with pytest.raises(AttributeError, match="no attribute `nope`"):
        set_optim_hint(model, "0.nope", lr=1e-4)


@pytest.fixture
def gloo_group(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"file://{tmp_path / 'init'}")
    yield
    dist.destroy_process_group()


def test_hints_survive_ddp(gloo_group, expected):
    ddp = nn.parallel.DistributedDataParallel(_model())
    assert _settings(ddp, prefix="module.") == expected


def test_hints_survive_fsdp2(gloo_group):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = seqlayers.SequenceModel(3, 4, 8, 2, "s4d", layer_kwargs={"d_state": 8, "lr": 1e-3})
    before = _settings(model)
    mesh = init_device_mesh("cpu", (1,))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    assert all(type(p.data).__name__ == "DTensor" for p in model.parameters())
    assert _settings(model) == before and (1e-3, 0.0) in before.values()
    opt = torch.optim.AdamW(param_groups(model, LR, WD))
    model(torch.randn(2, 10, 3)).sum().backward()
    opt.step()
