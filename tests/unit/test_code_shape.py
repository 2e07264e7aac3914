"""The shape of the code itself: no import circles, no oversized classes or functions.

Both tests read the source with :mod:`ast` (nothing is imported), so they see every module of
``src/starlight_sequences``, including ones no other test happens to import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import starlight_sequences

PACKAGE = "starlight_sequences"
ROOT = Path(starlight_sequences.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    modules: dict[str, tuple[Path, ast.Module]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[_module_name(path)] = (path, tree)
    return modules


MODULES = _modules()


# --- import circles -------------------------------------------------------------------------


def _is_type_checking_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` that runs at some point, at module level or in a
    function body; the body of an ``if TYPE_CHECKING:`` block is skipped (its ``else`` is not)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking_guard(child):
            for other in child.orelse:
                yield from _runtime_imports(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _runtime_imports(child)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _targets(module: str, path: Path, statement: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of this package that ``statement`` runs.

    ``from package import name`` runs ``package.name`` when that is a module, else ``package``
    itself. The parent packages Python imports on the way are not counted: every submodule
    would otherwise be "in a circle" with a package ``__init__`` that re-exports it, which is
    how packages work and harmless.
    """
    if isinstance(statement, ast.Import):
        names = [alias.name for alias in statement.names]
        return {name for name in names if name in MODULES}
    if statement.level:
        base = _package_of(module, path).split(".")
        base = base[: len(base) - (statement.level - 1)]
        source = ".".join([*base, *([statement.module] if statement.module else [])])
    else:
        source = statement.module or ""
    found: set[str] = set()
    for alias in statement.names:
        submodule = f"{source}.{alias.name}"
        if submodule in MODULES:
            found.add(submodule)
        elif source in MODULES:
            found.add(source)
    return found


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, (path, tree) in MODULES.items():
        edges: set[str] = set()
        for statement in _runtime_imports(tree):
            edges |= _targets(module, path, statement)
        graph[module] = edges - {module}
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A shortest import path from ``start`` back to itself, if any (breadth-first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for target in sorted(graph[module]):
                if target == start:
                    path = [module]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in parents:
                    parents[target] = module
                    following.append(target)
        frontier = following
    return None


def test_the_import_graph_sees_the_package_structure() -> None:
    graph = _import_graph()
    assert "starlight_sequences.shapes._model" in graph
    assert "starlight_sequences.errors" in graph["starlight_sequences.shapes._model"]


def test_no_module_imports_itself_through_a_circle() -> None:
    """No import circle among the modules of ``src/starlight_sequences``.

    What counts is every import that runs: at module level, and inside functions and methods
    (a deferred import only hides a circle: the two modules still need each other, and the
    order they are first imported in decides whether a name exists yet). Imports under
    ``if TYPE_CHECKING:`` do not count: they never run, so a circle through one is harmless at
    runtime and is how a module names a type for mypy that it must not import.
    """
    graph = _import_graph()
    circles: dict[frozenset[str], list[str]] = {}
    for module in sorted(graph):
        cycle = _cycle_through(graph, module)
        if cycle is not None:
            circles.setdefault(frozenset(cycle), cycle)
    assert not circles, "import circles:\n" + "\n".join(
        " -> ".join(cycle) for cycle in circles.values()
    )


# --- sizes ----------------------------------------------------------------------------------

MAX_CLASS_LINES = 500
MAX_FUNCTION_LINES = 80

_PORT_ADAPTER = (
    "one short method per operation of the Storage port (over 30 of them, each a few lines of "
    "query and decoding); splitting one adapter of one port across classes would hide which "
    "class owns a query. Kept just over the limit, not growing without a look."
)
SIZE_ALLOWLIST: dict[str, str] = {
    "starlight_sequences.adapters.memory.InMemoryStorage": _PORT_ADAPTER,
    "starlight_sequences.adapters.sqlite.SQLiteStorage": _PORT_ADAPTER,
    "starlight_sequences.service.CampaignService": (
        "the one public entry point (DESIGN section 4): one documented method per use case, "
        "each a docstring over a one-line call into its room; the rooms hold the code"
    ),
}
"""Qualified name -> why it may stay longer than the limit (empty is the goal)."""


def _definitions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}.{child.name}"
            yield name, child
            yield from _definitions(child, name)
        else:
            yield from _definitions(child, prefix)


def _oversized() -> dict[str, str]:
    found: dict[str, str] = {}
    for module, (_, tree) in MODULES.items():
        for name, node in _definitions(tree, module):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if isinstance(node, ast.ClassDef):
                if lines > MAX_CLASS_LINES:
                    found[name] = f"class body of {lines} lines (limit {MAX_CLASS_LINES})"
            elif lines > MAX_FUNCTION_LINES:
                found[name] = f"function of {lines} lines (limit {MAX_FUNCTION_LINES})"
    return found


def test_no_class_or_function_is_longer_than_the_limits() -> None:
    """Classes at most 500 lines, functions and methods at most 80 (``end_lineno - lineno + 1``
    of the ``ast`` node, so decorators are not counted and the docstring is), except those in
    ``SIZE_ALLOWLIST``, each with its reason."""
    oversized = _oversized()
    unexpected = {name: why for name, why in oversized.items() if name not in SIZE_ALLOWLIST}
    assert not unexpected, "too long:\n" + "\n".join(
        f"{name}: {why}" for name, why in sorted(unexpected.items())
    )


def test_the_size_allowlist_names_only_what_is_still_too_long() -> None:
    stale = sorted(set(SIZE_ALLOWLIST) - set(_oversized()))
    assert not stale, f"no longer too long (remove from SIZE_ALLOWLIST): {stale}"
