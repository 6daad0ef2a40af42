"""No import cycle among the project's own modules (`contracts`, `services`, `crm`,
`local`, `bench`).

Every module is parsed (never imported) and each import becomes an edge of a graph:
`import a.b` to `a.b`; `from a import b` to `a.b` when that is a module, else to `a`;
relative imports resolved against the importing package. Only the project's modules are
nodes. Two kinds of import are left out:

- imports under `if TYPE_CHECKING:`, which never run;
- imports inside functions of the command-line tools (`crm/`, `local/`, `bench/`): their
  command handlers import what a command needs when it runs (so that `crm --help` stays
  quick), after every module is loaded. Everywhere else an import inside a function is an
  edge like any other, since moving an import into a function is how a cycle gets hidden.

A package's `__init__` that a submodule's import runs first is not an edge: a package
importing its own submodules is how packages expose them.

The strongly connected components of the graph with more than one module (or a module
importing itself) are the cycles; the test names each.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "services", "crm", "local", "bench")
LAZY_COMMAND_PACKAGES = ("crm", "local", "bench")
"""Where imports inside functions are a command's lazy imports (see the docstring)."""

ALLOWED_CYCLES: dict[frozenset[str], str] = {}
"""Known cycles outside this change's reach, each with why it is tolerated for now."""


def project_modules() -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, lazy_allowed: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported (or, outside the command-line
    tools, when any of its functions runs)."""

    def visit(node: ast.AST, in_function: bool) -> Iterator[ast.Import | ast.ImportFrom]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield from visit(other, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                if not (in_function and lazy_allowed):
                    yield child
                continue
            function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from visit(child, in_function or function)

    yield from visit(tree, False)


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        lazy_allowed = name.split(".")[0] in LAZY_COMMAND_PACKAGES
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree, lazy_allowed):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(name, path.name == "__init__.py", node)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that are cycles (Tarjan's algorithm, without
    recursion), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return found


def test_the_finder_sees_a_cycle_and_ignores_what_is_not_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_imports_are_read_as_the_interpreter_runs_them() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import services.analytics.queries\n"
        "from services.analytics import views\n"
        "if TYPE_CHECKING:\n"
        "    from services.analytics import commands\n"
        "def later():\n"
        "    from services.analytics import dependencies\n"
    )
    tree = ast.parse(source)
    strict = [ast.unparse(n) for n in _imports(tree, lazy_allowed=False)]
    lazy = [ast.unparse(n) for n in _imports(tree, lazy_allowed=True)]
    assert "from services.analytics import commands" not in strict
    assert "from services.analytics import dependencies" in strict
    assert "from services.analytics import dependencies" not in lazy
    graph = import_graph()
    assert "services.analytics.views" in graph["services.analytics.service"]
    assert "services.analytics.projections.fold" in graph["services.analytics.service"]


def test_the_project_has_no_import_cycle() -> None:
    found = [c for c in cycles(import_graph()) if frozenset(c) not in ALLOWED_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_every_allowed_cycle_still_exists() -> None:
    """An allowance outlives its cycle only until someone notices: remove it then."""
    present = {frozenset(c) for c in cycles(import_graph())}
    assert not [sorted(c) for c in ALLOWED_CYCLES if c not in present]
