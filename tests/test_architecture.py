"""The house rules of docs/ARCHITECTURE.md, read from the code's own imports (``ast``, imports
inside functions and under ``TYPE_CHECKING`` included): no circle of modules or of folders,
producers and workers never import each other, each room imports only the rooms below it, and
no module is over 500 lines."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what is not part of the shipped tree's layering
OUTSIDE = ("tests", ".venv", ".git", "build", "dist", "examples", ".ci")
#: each room and the rooms it may import (besides itself); the order is the layer order
ROOMS: dict[str, tuple[str, ...]] = {
    "tokenrelay": (),
    "tokenrelay.store": ("tokenrelay",),
    "tokenrelay.specs": ("tokenrelay",),
    "producers": ("tokenrelay", "tokenrelay.store", "tokenrelay.specs"),
    "workers": ("tokenrelay", "tokenrelay.store", "tokenrelay.specs"),
    "celeryconfig": ("tokenrelay",),
    "sandbox": (),
    # the apps sit on top: they may import every room below
    "tokenrelay.apps": ("tokenrelay", "tokenrelay.store", "tokenrelay.specs", "producers",
                        "workers", "sandbox", "celeryconfig"),
}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in OUTSIDE:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    """The project modules ``module`` imports, anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            subs = [f"{base}.{alias.name}" for alias in node.names]
            # `from pkg import mod` imports the module; `from pkg import name` the package
            names = [s for s in subs if s in MODULES]
            if len(names) < len(subs):
                names.append(base)
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _folder(module: str) -> str:
    return str(MODULES[module].parent.relative_to(ROOT))


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _room(module: str) -> str | None:
    """The room a module belongs to: the longest ROOMS name it starts with."""
    best = None
    for room in ROOMS:
        if (module == room or module.startswith(room + ".")) and (
            best is None or len(room) > len(best)
        ):
            best = room
    return best


def test_the_graph_is_read() -> None:
    # the test would pass vacuously if it read nothing: a few arrows that must be there
    assert "tokenrelay.store" in GRAPH["producers.producer"]
    assert "workers.flusher" in GRAPH["workers.engine"]
    assert "tokenrelay.store.scripts" in GRAPH["tokenrelay.store.store"]
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_module_circle() -> None:
    assert _circles(GRAPH) == []


def test_no_folder_circle() -> None:
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            if _folder(module) != _folder(target):
                folders[_folder(module)].add(_folder(target))
    assert _circles(folders) == []


def test_producers_and_workers_never_import_each_other() -> None:
    crossing = [
        (module, target)
        for module, targets in GRAPH.items()
        for target in targets
        if {module.split(".")[0], target.split(".")[0]} == {"producers", "workers"}
    ]
    assert crossing == []


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    allowed = {room, *ROOMS[room]}
    wrong = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        if _room(module) == room
        for target in targets
        if _room(target) not in allowed
    )
    assert wrong == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
