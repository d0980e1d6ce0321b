"""The package's layers, as docs/architecture.md states them: every import points down or sideways, never up,
and no module imports itself back through another.

    core <- config <- adapters <- trading, research, reports <- resources <- assets, checks, sensors
         <- jobs, schedules <- definitions; cli beside definitions

Lazy imports inside functions count too: they hide a dependency, they do not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tradepipe"

LAYERS = {
    "core": 0,
    "config": 1,
    "adapters": 2,
    "migrations": 2,
    "trading": 3,
    "research": 3,
    "reports": 3,
    "resources": 4,
    "assets": 5,
    "checks": 5,
    "sensors": 5,
    "jobs": 6,
    "schedules": 6,
    "definitions": 7,
    "cli": 7,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tradepipe."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tradepipe.") and node.level == 0:
            found.add(node.module)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _resolve(name: str, modules: dict[str, Path]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_every_subpackage_and_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if m != "tradepipe" and _layer(m) is None)
    assert unplaced == [], f"modules outside the layers of docs/architecture.md: {unplaced}"


def test_no_module_lies_loose_in_the_package() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "definitions", "jobs", "schedules"})
    assert loose == [], f"modules that belong in a layer's package: {loose}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_point_down_or_sideways(module: str) -> None:
    modules = _modules()
    own = _layer(module)
    if own is None:
        return
    upward = sorted(
        target for target in (_resolve(name, modules) for name in _imports(modules[module]))
        if (layer := _layer(target)) is not None and layer > own
    )
    assert upward == [], f"{module} (layer {own}) imports a higher layer: {upward}"


def test_no_import_circles() -> None:
    modules = _modules()
    graph = {m: {t for t in (_resolve(n, modules) for n in _imports(p)) if t in modules and t != m} for m, p in modules.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)
