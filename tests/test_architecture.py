"""The package's layering, read from its source (docs/architecture.md): no import cycle, no import
that runs up to a higher layer, and no backend importing another backend's names."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "seqlayers"

RANKS = {  # lower layers first; a module may import its own layer and the ones below
    "_version": 0, "errors": 0,
    "_validation": 1, "_native": 1,
    "ops": 2, "init": 2, "optim": 2,
    "kernels": 3,
    "layers": 4,
    "models": 5,
    "_info": 6, "": 6,  # "": the package root, seqlayers/__init__.py
}
BACKENDS = {  # ops folders and their backend modules (each one file, importing no other backend)
    "ops.conv": {"naive", "torch_fft", "fft", "butterfly", "monarch"},
    "ops.scan": {"naive", "chunked", "triton", "native", "conv"},
    "ops.vandermonde": {"naive", "blocked", "native"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    base = ROOT.joinpath(*name.split(".")) if name else ROOT
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Package-relative names of the seqlayers modules ``path`` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "seqlayers":
                target = node.module.removeprefix("seqlayers").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("seqlayers").lstrip(".") for a in node.names
                      if a.name.split(".")[0] == "seqlayers"}
    return found - {name}


def _rank(name: str) -> int:
    return RANKS[name.split(".")[0]]


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def test_every_top_level_module_has_a_layer():
    assert {name.split(".")[0] for name in MODULES} <= set(RANKS)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_upward_import(name):
    """Anywhere in the module, function bodies included: a lazy import is still a dependency."""
    upward = {target for target in _imports(MODULES[name], top_level_only=False) if _rank(target) > _rank(name)}
    assert not upward, f"seqlayers.{name} imports the higher layer(s) {sorted(upward)}"


def test_no_import_cycle():
    graph = {name: _imports(path, top_level_only=True) for name, path in MODULES.items()}
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for target in graph.get(node, ()):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(f"seqlayers.{m}" for m in cycle))
            if target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("folder", sorted(BACKENDS))
def test_no_backend_imports_another_backend(folder):
    backends = BACKENDS[folder]
    assert backends <= {n.rpartition(".")[2] for n in MODULES if n.startswith(folder + ".")}
    for backend in backends:
        others = {f"{folder}.{b}" for b in backends - {backend}}
        used = _imports(MODULES[f"{folder}.{backend}"], top_level_only=False) & others
        assert not used, f"seqlayers.{folder}.{backend} imports {sorted(used)}"


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The parser sees an upward and a relative import for what they are."""
    fake = ROOT / "ops" / "_probe_for_test.py"
    monkeypatch.setitem(MODULES, "ops._probe_for_test", fake)
    source = "from ..layers import ConvLayer\nfrom .conv import call\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == fake else _read(self))
    assert _imports(fake, top_level_only=True) == {"layers", "ops.conv.call"}
    with pytest.raises(AssertionError, match="higher layer"):
        test_no_upward_import("ops._probe_for_test")


_read = Path.read_text
