"""The walls between the layers, read from the source and proven by importing it.

* The pure core (include/tidbops) imports nothing from Airflow, directly or through its imports.
* The playground (``tidbops_playground``, a test tool) is imported by none of the core, the glue (plugins/) and
  ``dags/``, at any level (inside functions too), and importing every glue module loads none of it.
* Imports inside ``tidbops`` and ``tidbops_airflow`` go one way: no circle, counting imports made inside
  functions (an import moved into a function to dodge a circle is still the circle); only what a
  ``if TYPE_CHECKING:`` block imports for type hints is left out.
* The core takes the catalog's URL from its caller: it never reads ``$AIRFLOW_HOME``.
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

import tidbops

pytestmark = pytest.mark.unit

CORE = Path(tidbops.__file__).resolve().parent
REPO = CORE.parent.parent
PLUGINS = REPO / "plugins"
GLUE = PLUGINS / "tidbops_airflow"
DAGS = REPO / "dags"
PLAYGROUND = "tidbops_playground"


def module_files(package: str, root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package at ``root``."""
    return {
        ".".join((package, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in sorted(root.rglob("*.py"))
    }


def core_modules() -> list[str]:
    return sorted(module_files("tidbops", CORE))


def glue_modules() -> list[str]:
    return sorted([*module_files("tidbops_airflow", GLUE), "tidbops_plugin"])


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, *, type_checking: bool) -> Iterator[ast.AST]:
    """Every node of ``tree`` at any depth; without ``type_checking``, not what ``if TYPE_CHECKING:`` holds."""
    todo: deque[ast.AST] = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        if not type_checking and isinstance(node, ast.If) and _type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def import_statements(
    path: Path, module: str, *, type_checking: bool = False
) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """``(module, names taken from it, line)`` for everything ``path`` imports, at any depth (in functions
    too), relative imports resolved against ``module``: ``import a.b`` is ``("a.b", (), line)``, ``from a
    import b, c`` is ``("a", ("b", "c"), line)``, ``importlib.import_module("x")`` and ``__import__("x")``
    with a literal name are ``("x", (), line)``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in _nodes(tree, type_checking=type_checking):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            yield base, tuple(alias.name for alias in node.names), node.lineno
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.args[0].value, (), node.lineno


def imports(path: Path, module: str, *, type_checking: bool = False) -> Iterator[tuple[str, int]]:
    """``(dotted name, line)`` of every module ``path`` may import: ``from a import b`` gives ``a`` and ``a.b``."""
    for base, names, line in import_statements(path, module, type_checking=type_checking):
        yield base, line
        for name in names:
            yield f"{base}.{name}", line


# ------------------------------------------------------------------------------------------ circles


def import_graph(files: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {module it imports: first line}}`` among ``files``' modules.

    ``from pkg import sub`` is an edge to ``pkg.sub`` when that is a module, else to ``pkg``. Importing a
    submodule also runs its packages' ``__init__``; that implicit step is not an edge (else a package whose
    ``__init__`` imports one of its modules would make a circle of every sibling that imports another)."""
    graph: dict[str, dict[str, int]] = {m: {} for m in files}
    for module, path in files.items():
        for base, names, line in import_statements(path, module):
            targets = [f"{base}.{n}" if f"{base}.{n}" in files else base for n in names] if names else [base]
            for target in targets:
                if target in files and target != module:
                    graph[module].setdefault(target, line)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest circle (``[a, b, …, a]``) through each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; a few hundred modules, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for group in groups:
        start = min(group)
        came_from: dict[str, str] = {}
        todo = deque([start])
        while todo:  # breadth first inside the group: the shortest way back to ``start``
            v = todo.popleft()
            if start in graph[v]:
                path = [start]
                while v != start:
                    path.append(v)
                    v = came_from[v]
                found.append([start, *reversed(path[1:]), start])
                break
            for w in sorted(graph[v]):
                if w in group and w not in came_from and w != start:
                    came_from[w] = v
                    todo.append(w)
    return sorted(found)


def describe(circle: list[str], graph: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(circle)) + f" -> {circle[-1]}"


def test_no_import_circles_in_the_core_and_the_glue() -> None:
    files = {**module_files("tidbops", CORE), **module_files("tidbops_airflow", GLUE)}
    graph = import_graph(files)
    found = [describe(c, graph) for c in circles(graph)]
    assert not found, "import circles (module-level and in-function imports):\n" + "\n".join(found)


def test_the_circle_finder_finds_a_circle_through_a_function_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("def f():\n    from pkg.sub import b  # lazily: not a circle\n")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("import os\n\ndef late():\n    from .. import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n"
                              "else:\n    import pkg.a\n")  # fmt: skip
    (pkg / "d.py").write_text("from pkg import c\n")
    graph = import_graph(module_files("pkg", pkg))
    assert graph["pkg.a"] == {"pkg.sub.b": 1} and graph["pkg.c"] == {"pkg.a": 5}  # not d: only for type hints
    assert circles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert describe(circles(graph)[0], graph) == "pkg.a (line 1) -> pkg.sub.b (line 4) -> pkg.c (line 5) -> pkg.a"


# -------------------------------------------------------------------------------------- the walls


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_no_airflow_import_in_source(path: Path) -> None:
    module = ".".join(("tidbops", *path.relative_to(CORE).with_suffix("").parts)).removesuffix(".__init__")
    for name, line in imports(path, module, type_checking=True):
        assert name.split(".")[0] not in {"airflow", "tidbops_airflow"}, f"{path}:{line} imports {name}"


def _playground_free_files() -> list[Path]:
    return sorted([*CORE.rglob("*.py"), *PLUGINS.rglob("*.py"), *DAGS.rglob("*.py")])


@pytest.mark.parametrize("path", _playground_free_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_playground_import_from_the_core_the_glue_or_dags(path: Path) -> None:
    """The playground is a test tool: the product never imports it, not even inside a function."""
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for name, line in imports(path, path.stem, type_checking=True)
        if name.split(".")[0] == PLAYGROUND
    ]
    assert not bad, bad


def test_the_playground_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def cli():\n    import importlib\n    importlib.import_module('tidbops_playground.cli')\n"
                    "    from tidbops_playground import demo\n")  # fmt: skip
    assert sorted((n, line) for n, line in imports(path, "m") if n.startswith(PLAYGROUND)) == [
        ("tidbops_playground", 4),
        ("tidbops_playground.cli", 3),
        ("tidbops_playground.demo", 4),
    ]


def _loaded_after_importing(modules: list[str], top_level: tuple[str, ...]) -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {top_level!r})\n"
        "assert not bad, bad\n"
    )
    path = os.pathsep.join([str(PLUGINS), str(DAGS), os.environ.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path})


def test_importing_the_whole_core_loads_no_airflow_and_no_playground() -> None:
    _loaded_after_importing(core_modules(), ("airflow", "great_expectations", "pandas", PLAYGROUND))


def test_importing_every_glue_module_loads_no_playground() -> None:
    _loaded_after_importing(glue_modules(), (PLAYGROUND,))


# -------------------------------------------------------------------------- the core's environment


def _reads_airflow_home(path: Path) -> list[str]:
    """Where ``path`` names the variable ``AIRFLOW_HOME`` as a key (``os.environ["AIRFLOW_HOME"]``,
    ``os.getenv("AIRFLOW_HOME")``, ``env.get("AIRFLOW_HOME")``, a constant holding it …); prose that
    mentions ``$AIRFLOW_HOME`` is not a read."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip() == "AIRFLOW_HOME"
    ]


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_the_core_never_reads_airflow_home(path: Path) -> None:
    """Where the catalog lies by default is the caller's business: Airflow's glue (``CatalogHook``) or the
    CLI (``--catalog``, ``$TIDBOPS_CATALOG_URL``, ``~/.tidbops/catalog.db``)."""
    assert not _reads_airflow_home(path)


def test_the_airflow_home_check_finds_a_read(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text('"""Uses $AIRFLOW_HOME."""\nimport os\nHOME = "AIRFLOW_HOME"\nos.getenv("AIRFLOW_HOME")\n')
    assert _reads_airflow_home(path) == [f"{path}:3", f"{path}:4"]
