"""Run configuration: one YAML per task, resolved for a model and a preset, then overridden.

A task file (``configs/<task>.yaml``) has the sections::

    task: listops
    data:    {l_max: ..., generate: {...}}          # the task's data settings
    common:  {model: ..., optim: ..., train: ..., pretrain: ...}   # shared by every model
    models:  {s4d: {...}, s5: {...}, sgconv: {...}, longconv: {...}}  # the paper settings
    smoke:   {data: ..., model: ..., train: ..., models: {s5: {...}}}   # a tiny, fast variant
    small:   {...}                                  # a CPU-sized variant (minutes), same layout

:func:`resolve` merges, later winning: :data:`DEFAULTS`, ``data``, ``common``,
``models[<model>]``, then for presets ``smoke`` and ``small`` the preset's section and its
``models[<model>]``, an optional user YAML with the resolved layout (``--config``), then
``--set section.key=value`` overrides. Every key must already exist (a typo is an error naming
the known keys), except inside ``model.layer_kwargs`` (passed to the layer, which checks them)
and ``data.generate``. Every value must have the type of its default (:func:`check`), so a
wrong-typed value fails before any data is read.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
MODELS = ("s4d", "s5", "sgconv", "longconv")
PRESETS = ("smoke", "small", "paper")
OPEN_SECTIONS = ("model.layer_kwargs", "data.generate")

DEFAULTS = {
    "task": None,
    "model_name": None,
    "preset": None,
    "data": {
        "l_max": None,          # token tasks: longest sequence (per document); pixel tasks: set by the data
        "difficulty": "curv_contour_length_14",   # Pathfinder family: the release split read
        "resolution": 0,        # Pathfinder family: image side read from pathfinder<side>/; 0: the task's
        "num_workers": 0,       # DataLoader worker processes
        "generate": {},         # generator settings, used without --data-dir
    },
    "model": {
        "n_layers": 6,
        "d_model": 256,
        "norm": "layer",
        "prenorm": True,
        "dropout": 0.0,
        "bidirectional": False,
        "layer_kwargs": {},     # keyword arguments of the layer (d_state, kernel_dim, ...)
    },
    "optim": {
        "lr": 0.01,             # parameters without hints; SSM/kernel parameters keep their own lr
        "weight_decay": 0.05,
        "warmup": 0.1,          # fraction of the steps with a linear warmup, then cosine decay
        "grad_clip": 0.0,       # max gradient norm; 0 disables clipping
    },
    "train": {
        "batch_size": 32,       # global batch, split over the processes
        "eval_batch_size": 0,   # 0: same as batch_size
        "epochs": 1,
        "eval_every": 0,        # steps between validations; 0: once per epoch
        "log_every": 100,       # steps between training-loss lines
        "amp": True,            # bfloat16 autocast on CUDA (ignored on the CPU)
        "cpu_threads": 0,       # torch.set_num_threads on the CPU; 0 keeps torch's default
        "checkpoint": True,     # write last.pt at every evaluation (needed by --resume)
    },
    "pretrain": {
        "mask_ratio": 0.15,     # masked denoising (bidirectional models)
        "epochs": 0,            # 0: same as train.epochs
    },
}


def merge(base: dict, update: dict, where: str = "") -> dict:
    """Recursively merge ``update`` into ``base`` in place; unknown keys raise KeyError."""
    for key, value in update.items():
        path = f"{where}.{key}" if where else key
        if key not in base and where not in OPEN_SECTIONS:
            raise KeyError(f"unknown config key {path!r}; expected one of {sorted(base)}")
        if isinstance(base.get(key), dict) and path not in OPEN_SECTIONS:
            if not isinstance(value, dict):
                raise TypeError(f"config key {path!r} is a section; got {value!r}")
            merge(base[key], value, path)
        elif isinstance(base.get(key), dict):
            base[key] = {**base[key], **(value or {})}
        else:
            base[key] = value
    return base


def parse_value(text: str):
    """A ``--set`` value as YAML (``true``, ``[1, 2]``, ``0.004``), with ``1e-3`` read as a float."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_override(text: str) -> dict:
    """``"optim.lr=0.004"`` -> ``{"optim": {"lr": 0.004}}``."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(f"--set expects section.key=value (e.g. optim.lr=0.004), got {text!r}")
    nested: dict = parse_value(value)
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path`` (FileNotFoundError / ValueError with the path otherwise)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    with open(path) as f:
        content = yaml.safe_load(f)
    if not isinstance(content, dict):
        raise ValueError(f"config file {path} must hold a mapping, got {type(content).__name__}")
    return content


def resolve(task: str, model: str, preset: str, config_file: str | Path | None = None,
            overrides: tuple[str, ...] | list[str] = ()) -> dict:
    """The full configuration of one run (see the module docstring for the merge order)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {list(MODELS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    tasks = sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))
    if task not in tasks:
        raise ValueError(f"unknown task {task!r}; expected one of {tasks}")
    task_file = CONFIG_DIR / f"{task}.yaml"
    spec = read_yaml(task_file)
    if spec.get("task") != task:
        raise ValueError(f"{task_file}: 'task' is {spec.get('task')!r}, expected {task!r}")
    if model not in spec.get("models", {}):
        raise KeyError(f"{task_file} has no settings for model {model!r} under 'models'")
    cfg = copy.deepcopy(DEFAULTS)
    merge(cfg, {"task": task, "model_name": model, "preset": preset, "data": spec.get("data", {})})
    merge(cfg, spec.get("common", {}))
    merge(cfg, spec["models"][model])
    if preset != "paper":
        if preset not in spec:
            raise KeyError(f"{task_file} has no {preset!r} section for --preset {preset}")
        section = dict(spec[preset] or {})
        per_model = section.pop("models", {})
        merge(cfg, section)
        merge(cfg, per_model.get(model, {}))
    if config_file is not None:
        user = read_yaml(Path(config_file))
        for fixed in ("task", "model_name"):
            if fixed in user and user[fixed] != cfg[fixed]:
                raise ValueError(f"{config_file}: {fixed} is {user[fixed]!r} but this run has {cfg[fixed]!r}")
        merge(cfg, user)
    for text in overrides:
        merge(cfg, parse_override(text))
    check(cfg)
    return cfg


def check_types(cfg: dict, defaults: dict = DEFAULTS, where: str = "") -> None:
    """Raise TypeError when a value's type differs from its default's (an int is a valid float).

    Keys whose default is ``None`` or an open section are not checked here.
    """
    for key, default in defaults.items():
        path = f"{where}.{key}" if where else key
        value = cfg[key]
        if isinstance(default, dict):
            if path not in OPEN_SECTIONS:
                check_types(value, default, path)
            elif not isinstance(value, dict):
                raise TypeError(f"config key {path!r} must be a mapping, got {value!r}")
            continue
        if default is None:
            continue
        expected = (int, float) if type(default) is float else type(default)
        if isinstance(value, bool) is not isinstance(default, bool) or not isinstance(value, expected):
            raise TypeError(f"config key {path!r} must be a {type(default).__name__} "
                            f"(like its default {default!r}), got {value!r} ({type(value).__name__})")


def check(cfg: dict) -> None:
    """Type checks against :data:`DEFAULTS`, then range checks that would otherwise fail late or silently."""
    check_types(cfg)
    if cfg["data"]["l_max"] is not None and (not isinstance(cfg["data"]["l_max"], int) or cfg["data"]["l_max"] < 1):
        raise TypeError(f"config key 'data.l_max' must be a positive int, got {cfg['data']['l_max']!r}")
    train, optim = cfg["train"], cfg["optim"]
    for key in ("batch_size", "epochs"):
        if not isinstance(train[key], int) or train[key] < 1:
            raise ValueError(f"train.{key} must be a positive int, got {train[key]!r}")
    if not 0.0 <= optim["warmup"] < 1.0:
        raise ValueError(f"optim.warmup is a fraction of the steps in [0, 1), got {optim['warmup']!r}")
    if not 0.0 < cfg["pretrain"]["mask_ratio"] < 1.0:
        raise ValueError(f"pretrain.mask_ratio must lie in (0, 1), got {cfg['pretrain']['mask_ratio']!r}")
