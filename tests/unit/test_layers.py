"""The package's layers: every import inside ``eden/`` goes down the declared order, and none forms a cycle.

Every module is parsed (not imported), and every ``import`` / ``from ... import`` is read, including
those inside functions (a lazy import still couples the layers). ``from eden.x import y`` counts as
an import of ``eden.x.y`` when that is a module. A module may import its own layer or one below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "eden"

# Lowest first. A module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, ...]] = [
    ("eden._version", "eden.errors", "eden.core"),  # errors, atomic I/O, resources, validation
    ("eden.formats", "eden.errormodels"),  # numeric formats; error models and their HDF5 files
    ("eden.dram",),  # organization, address map, profiles, raw data, fits, importers
    ("eden.engine", "eden.power"),  # injection ops and backends; DRAM standards, traffic, energy
    ("eden.nn",),  # torch: emulation, evaluation, quantization, bundled models
    ("eden.workflows",),  # characterize, retrain, mapping, deploy, pipeline, plots
    ("eden.cli", "eden.__main__", "eden"),  # the command line; the package root (lazy)
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def layer_of(name: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"module {name} is in no declared layer; add it to LAYERS")
    return rank


def imports_of(name: str) -> set[str]:
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t in MODULES and t != name and (t != "eden" or name.startswith("eden.")):
                found.add(t)
    # `from eden.x import y` also names eden.x's package chain; keep only real modules
    return {t for t in found if t != "eden" or name == "eden.__main__"}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down(name):
    mine = layer_of(name)
    up = sorted(t for t in GRAPH[name] if layer_of(t) > mine)
    assert not up, (f"{name} (layer {mine}: {LAYERS[mine][0]}...) imports {up} from a higher layer; "
                    "move the shared piece down or invert the dependency")


def _package_init_chain(name: str) -> set[str]:
    """Importing eden.a.b runs eden/__init__ and eden/a/__init__: those edges are not cycles of b's making."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    # Tarjan's strongly connected components over module -> imported module
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def edges(v):
        return sorted(GRAPH[v] - _package_init_chain(v))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_violations(tmp_path):
    """The parser finds function-level and relative imports (a checker that sees nothing cannot fail)."""
    src = "def f():\n    from eden.workflows import retrain\n    from . import rng\n"
    tree = ast.parse(src)
    kinds = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert kinds == ["ImportFrom", "ImportFrom"]
    assert "eden.errormodels.h5" in GRAPH["eden.errormodels.model"]  # an import inside a method
    assert layer_of("eden.workflows.retrain") > layer_of("eden.engine.ops") > layer_of("eden.core.io")
