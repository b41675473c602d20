"""Data flows one way (DESIGN.md): no module of wam imports a stage that comes after it, and nothing imports the CLI.

Every import in wam/ is read, module-level and inside functions alike (a function-level import
is still a dependency; it only hides the cycle). A family that a later stage adds to an earlier
registry is named by a "module:function" string, which is not an import, and is resolved only
when used (wam.envs.registry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WAM = Path(__file__).resolve().parents[1] / "wam"

# Lower first; a module may import its own layer or any below it.
LAYERS = [
    {"errors", "workers"},  # workers: where episodes run (local processes or Ray), for envs and dojo alike
    {"data", "envs", "ego", "bridge"},
    {"models"},
    {"config", "runs", "train"},
    {"policy"},
    {"dojo", "real2sim"},
    {"api"},
    {"research"},
    {"console"},
    {"demo"},
    {"cli"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}
TOP = len(LAYERS)  # the command line: the app and every stage's cli module


def module_name(path: Path) -> str:
    parts = path.relative_to(WAM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # `wam` itself (its version): below everything
    if parts[1] == "cli" or parts[-1] == "cli":
        return TOP
    if parts[1] not in RANK:
        raise AssertionError(f"{module}: its package {parts[1]!r} has no layer in tests/test_layering.py; give it one")
    return RANK[parts[1]]


PATHS = {module_name(p): p for p in sorted(WAM.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The wam modules `path` imports (`from wam.data import layout` imports wam.data.layout, not the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in PATHS else node.module for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "wam" or name.startswith("wam.")}


MODULES = {name: imports(path) for name, path in PATHS.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_later_stage(module):
    later = sorted(name for name in MODULES[module] if rank(name) > rank(module))
    assert not later, f"{module} (layer {rank(module)}) imports later stages: {later}"


def test_there_is_no_import_cycle():
    graph = {m: {n for n in deps if n in MODULES and n != m} for m, deps in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):])


def test_the_checker_sees_a_violation():
    assert rank("wam.envs.collect") < rank("wam.train.finetune") < rank("wam.dojo.dream_env") < rank("wam.cli.app")
    assert rank("wam.bridge.cli") == rank("wam.cli") == TOP
