"""param_groups honors hints; info() reports every backend; the package imports cleanly."""

import io

import torch

import seqlayers
from seqlayers.optim import param_groups, set_optim_hint


def test_param_groups_follow_hints():
    model = seqlayers.S4D(4, 8, lr=1e-3)
    groups = param_groups(model, lr=1e-2, weight_decay=0.05)
    by_setting = {(g["lr"], g["weight_decay"]): g["params"] for g in groups}
    ssm = {id(p) for p in (model.kernel.log_dt, model.kernel.log_A_real, model.kernel.A_imag)}
    assert {id(p) for p in by_setting[(1e-3, 0.0)]} == ssm
    assert {id(p) for p in by_setting[(1e-2, 0.05)]} == {id(p) for p in model.parameters()} - ssm
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    torch.optim.AdamW(groups)


def test_param_groups_no_decay_1d_and_partial_hints():
    model = torch.nn.Linear(3, 3)
    set_optim_hint(model, "weight", lr=None, weight_decay=0.0)
    groups = param_groups(model, lr=0.1, weight_decay=0.5, no_decay_1d=True)
    assert all(g["weight_decay"] == 0.0 and g["lr"] == 0.1 for g in groups)
    model.bias.requires_grad_(False)
    assert sum(len(g["params"]) for g in param_groups(model, 0.1, 0.5)) == 1


def test_info_reports_backends(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQLAYERS_AUTOTUNE", raising=False)
    monkeypatch.setenv("SEQLAYERS_CACHE_DIR", str(tmp_path))
    buf = io.StringIO()
    seqlayers.info(file=buf)
    text = buf.getvalue()
    assert f"seqlayers {seqlayers.__version__}" in text
    for op in ("long_conv", "vandermonde"):
        assert f"{op} backends" in text
    assert "torch      available" in text
    assert '"auto" policy for long_conv: autotune off' in text and str(tmp_path / "autotune.json") in text
    for dtype in ("float32 ", "bfloat16"):
        for L in (1024, 4096, 16384, 65536):
            assert f"cpu {dtype} L={L:<6d} -> torch (priority)" in text
    assert not list(tmp_path.iterdir())  # info() never times, so never writes the cache


def test_public_api():
    for name in ("S4D", "SequenceModel", "ops", "kernels", "init", "info", "__version__"):
        assert hasattr(seqlayers, name), name
    for name in ("long_conv", "vandermonde", "available_backends", "use_backend", "set_autotune"):
        assert hasattr(seqlayers.ops, name), name


def test_info_reports_the_native_extension_without_building(tmp_path, monkeypatch):
    from seqlayers import _native
    from seqlayers._info import native_lines

    monkeypatch.setattr(_native, "LIBRARY", _native.NativeLibrary(tmp_path / "nowhere"))
    lines = native_lines()
    assert lines[0].startswith("native extension") and "native sources not installed" in lines[0]
    assert not any(tmp_path.iterdir())
