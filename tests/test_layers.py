"""The folder tree is the architecture: imports run one way, down the layers, with no cycle.

Every ``import`` in ``src/agentops`` counts, at module level, inside a
function or under ``TYPE_CHECKING``: a cycle that only type checking sees is
still two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "agentops"

LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"testing"},
    {"ops"},
    {"run"},
    {"hooks"},
    {"context"},
    {"llm"},
    {"guards", "notify"},
    {"memory", "store"},
    {"project"},
    {"errors"},
    {"model"},
    {"_infra"},
]
"""Top first. A module may import its own package, and any package of a lower layer."""

RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _room(module: str) -> str:
    """The top-level room of ``agentops.X...``: a package or a root module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(module: str) -> set[str]:
    """Every agentops module ``module`` imports, wherever the import statement is."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("agentops"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("agentops"):
                continue
            for alias in node.names:
                if base == "agentops" and alias.name == "__version__":
                    continue  # a constant of the package itself, not the public API
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    found.discard(module)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    """Every module's agentops imports: read once, by the first test of a worker that needs it."""
    return {module: _imports(module) for module in MODULES}


def test_every_room_has_a_layer():
    """A new package or root module is placed in a layer before it is used."""
    rooms = {_room(m) for m in MODULES} - {""}
    assert rooms <= set(RANK), f"no layer for: {sorted(rooms - set(RANK))}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _room(m)))
def test_imports_run_down_the_layers(module):
    """A module imports only its own package and lower layers, never a higher or sibling one."""
    room = _room(module)
    upward = sorted(
        target
        for target in graph()[module]
        if _room(target) not in ("", room) and RANK[_room(target)] <= RANK[room]
    )
    assert not upward, f"{module} imports {upward} from a layer not below its own"


def test_only_the_cli_imports_click():
    """click is the command line's business; the run and the library never import it."""
    for module, path in MODULES.items():
        if _room(module) in ("cli", "__main__"):
            continue
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(n == "click" or n.startswith("click.") for n in names), module


def test_no_import_cycle():
    """No chain of imports leads from a module back to itself."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph()[module]):
            if target == "agentops":
                continue  # the public facade re-exports; nothing inside imports it
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target in graph() and state.get(target) is None:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph()):
        if state.get(module) is None:
            visit(module)


def _private_owner(module: str) -> str | None:
    """The package a private module (``_x``, or inside a ``_x`` package) belongs to, if any."""
    parts = module.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_private_module_is_imported_only_inside_its_package(module):
    """``llm/_send.py`` is the model client's machinery: only ``llm`` imports it.

    A module or package whose name starts with ``_`` belongs to the package
    holding it; other packages go through that package's public modules.
    ``agentops._infra`` belongs to all of agentops, and to nothing outside it.
    """
    strangers = sorted(
        target
        for target in graph()[module]
        if (owner := _private_owner(target)) is not None
        and not (module == owner or module.startswith(f"{owner}."))
    )
    assert not strangers, f"{module} imports private modules of another package: {strangers}"
