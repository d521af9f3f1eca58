"""Architecture rules for app/: no import cycles; page areas share code only through the
pages' plumbing.

The graph holds every import statement of app/, at module level and inside functions alike
(a function-local import that dodges a cycle is still a cycle in the design). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and annotations may name a type from a
module that depends on this one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "app"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the app modules it imports. ``from a import b`` points at ``a.b`` when that is
    a module, else at ``a``; relative imports are resolved."""
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (as a path that starts and ends at the same module), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_sees_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 50
    # Function-level imports count: the page list imports the page modules inside a function.
    assert "app.pages.documents" in graph["app.pages"]
    assert "app.pages.framework" in graph["app.pages.documents"]


def test_cycle_finder_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_in_app() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# The pages' plumbing: the wrapper, forms, rendering and the shared context builders. Each
# area (documents, notes, profile, ...) imports only these, never another area, and the
# plumbing knows no area (things every page shows come in through app.state.page_context).
PAGE_PLUMBING = {"app.pages.framework", "app.pages.forms", "app.pages.render",
                 "app.pages.context", "app.pages.notices"}


def test_page_areas_import_only_the_plumbing() -> None:
    graph = import_graph()
    pages = {name for name in graph if name.startswith("app.pages.")}
    assert PAGE_PLUMBING <= pages
    for name in sorted(pages):
        reached = graph[name] & pages
        allowed = PAGE_PLUMBING - {name}
        assert reached <= allowed, f"{name} imports {sorted(reached - allowed)}"
