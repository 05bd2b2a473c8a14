"""The layering of docs/architecture.md, enforced: imports only point down, no cycles.

Every ``import`` of a ``vcoresim`` module anywhere in a file counts, at
module level, inside functions (lazy imports) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "vcoresim"

#: Rank of each top-level package or module: a module may import its own rank or lower.
LAYERS: dict[str, int] = {
    "errors": 0,
    "files": 0,
    "engine": 1,
    "machine": 2,
    "kvm": 3,
    "examples": 3,
    "scenarios": 4,
    "check": 5,
    "simulate": 5,
    "litmus": 5,
    "report": 6,
    "cli": 7,
    "api": 8,  # the public Python API (vcoresim/api.py), re-exported by the package
    "": 8,  # the package itself (vcoresim/__init__.py): the public API on top of everything
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The vcoresim modules ``path`` imports (a ``from pkg import sub`` of a submodule counts as ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "vcoresim")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "vcoresim":
                continue
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known)
    out.discard(name)
    return {m for m in out if m in known}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer() -> None:
    missing = sorted({_layer(m) for m in _modules()} - set(LAYERS))
    assert not missing, f"packages without a layer in LAYERS (and docs/architecture.md): {missing}"


def test_imports_only_point_down() -> None:
    upward = [
        f"{src} ({_layer(src) or 'vcoresim'}) imports {dst} ({_layer(dst) or 'vcoresim'})"
        for src, dsts in sorted(_graph().items())
        for dst in sorted(dsts)
        if LAYERS[_layer(dst)] > LAYERS[_layer(src)]
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_catches_an_upward_import_and_a_cycle() -> None:
    """The test itself can fail: a made-up graph with both faults is caught."""
    graph = {"vcoresim.engine.a": {"vcoresim.kvm.b"}, "vcoresim.kvm.b": {"vcoresim.engine.a"}}
    assert _cycles(graph) == [["vcoresim.engine.a", "vcoresim.kvm.b"]]
    assert LAYERS[_layer("vcoresim.kvm.b")] > LAYERS[_layer("vcoresim.engine.a")]


@pytest.mark.parametrize("package", ["kvm", "machine"])
def test_the_model_knows_nothing_of_its_drivers(package: str) -> None:
    """Model code never imports a driver (check, simulate) nor reads a timed-run context."""
    for path in (SRC / package).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("vcoresim.simulate", "vcoresim.check", "sim_of", "SimContext", "k.sim"):
            assert needle not in text, f"{path.relative_to(SRC)} mentions {needle!r}"
