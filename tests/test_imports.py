"""tfcompress has no import cycle, and does not import its own modules inside functions.

The graph is read from the sources with `ast`, so it sees every import, whether or not a
test runs the code. An edge `a -> b` means module `a` imports module `b` (at module level or
inside a function); `from package import name` is an edge to `package.name` when that is a
module, else to `package`. Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`;
those implicit edges are left out, since a package's `__init__` imports its own modules and
Python handles a partly initialized parent package. Imports under `if TYPE_CHECKING:` count
like any other: a cycle that only type hints need is still a cycle.

An import of a tfcompress module inside a function is the usual way to dodge a cycle, so it
is reported unless `DEFERRED_IMPORTS` lists it with its reason.
"""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (importing module, imported module): why that import has to run inside a function. Empty:
# an optional dependency that is not a tfcompress module (matplotlib) needs no entry.
DEFERRED_IMPORTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement: `importer` imports `imported` at `line`, maybe inside a function."""

    importer: str
    imported: str
    line: int
    in_function: bool


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names of the modules (or packages) an import statement may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: `from . import x` in `a.b.c` (or in package `a.b`) is `a.b.x`
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import node of a module, with whether it sits inside a function body."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def package_imports(root: pathlib.Path, package: str) -> list[Import]:
    """Every import of one of `package`'s own modules, in the sources under `root/package`."""
    files = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    found = []
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, in_function in _imports(tree):
            targets = _targets(node, module, is_package)
            if isinstance(node, ast.ImportFrom):  # the package, or the submodules named
                targets = [t for t in targets[1:] if t in files] or targets[:1]
            for target in targets:
                if target in files and target != module:
                    found.append(Import(module, target, node.lineno, in_function))
    return found


def import_graph(root: pathlib.Path, package: str) -> dict[str, set[str]]:
    """`{module: modules it imports}` over the modules of `package` under `root`."""
    graph: dict[str, set[str]] = {}
    for imp in package_imports(root, package):
        graph.setdefault(imp.importer, set()).add(imp.imported)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component (BFS)."""
    start = min(component)
    parents = {start: None}
    queue = [start]
    for node in queue:
        for succ in sorted(graph.get(node, set()) & component):
            if succ == start:
                path = [node]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if succ not in parents:
                parents[succ] = node
                queue.append(succ)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def deferred_imports(root: pathlib.Path, package: str, allowed=DEFERRED_IMPORTS) -> list[str]:
    """`module:line imports target` for each in-function import of the package not allowed."""
    return [
        f"{imp.importer}:{imp.line} imports {imp.imported} inside a function"
        for imp in package_imports(root, package)
        if imp.in_function and (imp.importer, imp.imported) not in allowed
    ]


def test_no_import_cycle():
    cycles = find_cycles(import_graph(ROOT, "tfcompress"))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_inside_a_function():
    found = deferred_imports(ROOT, "tfcompress")
    assert not found, "move the shared piece down a layer instead:\n" + "\n".join(found)


def test_every_allowed_deferred_import_exists():
    deferred = {(i.importer, i.imported) for i in package_imports(ROOT, "tfcompress")}
    assert set(DEFERRED_IMPORTS) <= deferred, set(DEFERRED_IMPORTS) - deferred


def _write(root: pathlib.Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_graph_finds_a_cycle(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "from pkg.sub import b\nA = 1\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/b.py": "from ..c import C\n",
            "pkg/c.py": "import json\n\ndef f():\n    import pkg.a\n",
            "pkg/d.py": "import pkg.c\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.c"},
        "pkg.c": {"pkg.a"},
        "pkg.d": {"pkg.c"},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert deferred_imports(tmp_path, "pkg", allowed={}) == [
        "pkg.c:4 imports pkg.a inside a function"
    ]
    assert deferred_imports(tmp_path, "pkg", allowed={("pkg.c", "pkg.a"): "test"}) == []


@pytest.mark.parametrize(
    "source, imported",
    [
        ("from pkg import a\n", "pkg.a"),  # a submodule named in `from ... import`
        ("from pkg import VALUE\n", "pkg"),  # a name from the package's __init__
        ("from . import a\n", "pkg.a"),
        ("from .a import A\n", "pkg.a"),
        ("import pkg.a as alias\n", "pkg.a"),
    ],
)
def test_graph_resolves_import_forms(tmp_path, source, imported):
    _write(tmp_path, {"pkg/__init__.py": "VALUE = 1\n", "pkg/a.py": "A = 1\n", "pkg/b.py": source})
    assert import_graph(tmp_path, "pkg")["pkg.b"] == {imported}


def test_no_cycle_in_a_chain(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "\n"})
    assert find_cycles(import_graph(tmp_path, "pkg")) == []
