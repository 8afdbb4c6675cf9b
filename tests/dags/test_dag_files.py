"""One convention for every file in ``dags/``: it documents its pipeline and calls a builder, nothing more.

A DAG file holds the pipeline's documentation (its docstring is the DAGs' ``doc_md``), its name
(``PIPELINE``, the file's name) and a loop over ``clusters_for(PIPELINE)`` that calls one
``build_<x>_dag`` of ``plugins/tidbops_airflow/<x>_dag.py``; the tasks, operators and their wiring live in
the builder. Read from each file's syntax tree, so a new pipeline file that wires tasks itself fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
BUILDERS = REPO / "plugins" / "tidbops_airflow"
DAGBUILDER = "tidbops_airflow.dagbuilder"


def is_builder_module(module: str) -> bool:
    """``tidbops_airflow.<x>_dag``: a module of the glue that builds one pipeline's DAGs."""
    package, _, name = module.rpartition(".")
    return package == "tidbops_airflow" and name.endswith("_dag")


def convention_problems(source: str, stem: str) -> list[str]:
    """What in a ``dags/`` file breaks the convention (empty: it follows it)."""
    tree = ast.parse(source)
    problems: list[str] = []
    names: dict[str, str] = {}  # imported name -> its module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems.append(f"line {node.lineno}: `import {node.names[0].name}`: import from a builder instead")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "__future__":
                continue
            if node.level or not (module == DAGBUILDER or is_builder_module(module)):
                problems.append(f"line {node.lineno}: imports {module!r}: only {DAGBUILDER} and tidbops_airflow.*_dag")
            names.update({alias.asname or alias.name: module for alias in node.names})
        elif isinstance(node, ast.With | ast.AsyncWith):
            problems.append(f"line {node.lineno}: a `with` block: DAGs are built in a builder")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            problems.append(f"line {node.lineno}: defines a function or class: it belongs in a builder")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift | ast.LShift):
            problems.append(f"line {node.lineno}: wires tasks (>> / <<): the builder does")
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name) or func.id not in names:
                problems.append(
                    f"line {node.lineno}: calls {ast.unparse(func)}: only what dagbuilder or a builder gives"
                )
    if ast.get_docstring(tree) is None:
        problems.append("no module docstring: the pipeline's documentation (its DAGs' doc_md) lives here")
    builds = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and is_builder_module(names.get(_name(n), ""))]
    for call in builds:
        if not _name(call).startswith("build_") or not _name(call).endswith("_dag"):
            problems.append(f"line {call.lineno}: {_name(call)}: a builder is called build_<pipeline>_dag")
        doc = [k for k in call.keywords if k.arg == "doc_md"]
        if not doc or not (isinstance(doc[0].value, ast.Name) and doc[0].value.id == "__doc__"):
            problems.append(f"line {call.lineno}: {_name(call)} without doc_md=__doc__")
    if len({_name(c) for c in builds}) > 1:
        problems.append("calls more than one builder: one pipeline per file")
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "PIPELINE" for t in targets):
            value = node.value  # type: ignore[union-attr]
            if not (isinstance(value, ast.Constant) and value.value == stem):
                problems.append(f"line {node.lineno}: PIPELINE must be the file's name, {stem!r}")
    return problems


def _name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else ""


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_every_dag_file_only_calls_a_builder(path: Path) -> None:
    assert convention_problems(path.read_text(), path.stem) == []


def test_every_pipeline_file_calls_one_builder_that_exists() -> None:
    built = {}
    for path in DAG_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and is_builder_module(node.module):
                for alias in node.names:
                    if alias.name.startswith("build_"):
                        built[path.name] = (node.module, alias.name)
    # every file but the fleet-config one builds DAGs, each through a function its builder module defines
    assert set(built) == {p.name for p in DAG_FILES} - {"tidbops_fleet_config.py"}
    for module, function in built.values():
        source = (BUILDERS / (module.rpartition(".")[2] + ".py")).read_text()
        assert f"\ndef {function}(" in source, (module, function)


WIRED_IN_THE_DAG_FILE = '''"""A pipeline."""
from __future__ import annotations

from airflow.sdk import DAG

from tidbops_airflow.dagbuilder import clusters_for, dag_args
from tidbops_airflow.operators.tidb import TiDBCheckClusterOperator

PIPELINE = "tidb_x"

for cluster in clusters_for(PIPELINE, include=lambda c: True):
    with DAG(schedule=None, **dag_args(PIPELINE, cluster, doc_md=__doc__, tags=[], description="x")):
        a = TiDBCheckClusterOperator(task_id="a", cluster=cluster.name, tidb_conn_id="x")
        a >> TiDBCheckClusterOperator(task_id="b", cluster=cluster.name, tidb_conn_id="x")
'''


def test_a_file_that_wires_its_own_tasks_is_caught() -> None:
    problems = convention_problems(WIRED_IN_THE_DAG_FILE, "tidb_x")
    assert any("imports 'airflow.sdk'" in p for p in problems)
    assert any("imports 'tidbops_airflow.operators.tidb'" in p for p in problems)
    assert any("a `with` block" in p for p in problems)
    assert any("defines a function" in p for p in problems)  # the lambda
    assert any("wires tasks" in p for p in problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('PIPELINE = "tidb_x"\n', "no module docstring"),
        ('"""d"""\nimport os\n', "`import os`"),
        ('"""d"""\nPIPELINE = "tidb_y"\n', "PIPELINE must be the file's name, 'tidb_x'"),
        (
            '"""d"""\nfrom tidbops_airflow.x_dag import build_x_dag\nbuild_x_dag("tidb_x", None, None)\n',
            "build_x_dag without doc_md=__doc__",
        ),
        (
            '"""d"""\nfrom tidbops_airflow.x_dag import make_x\nmake_x(doc_md=__doc__)\n',
            "make_x: a builder is called build_<pipeline>_dag",
        ),
        (
            '"""d"""\nfrom tidbops_airflow.a_dag import build_a_dag\nfrom tidbops_airflow.b_dag import build_b_dag\n'
            "build_a_dag(doc_md=__doc__)\nbuild_b_dag(doc_md=__doc__)\n",
            "more than one builder",
        ),
        ('"""d"""\nprint("hello")\n', "calls print"),
        ('"""d"""\nfrom tidbops_airflow import dagbuilder\n', "imports 'tidbops_airflow'"),
    ],
    ids=[
        "no-docstring",
        "plain-import",
        "pipeline-name",
        "no-doc-md",
        "builder-name",
        "two-builders",
        "other-call",
        "package",
    ],
)
def test_each_break_of_the_convention_is_named(source: str, expected: str) -> None:
    assert any(expected in p for p in convention_problems(source, "tidb_x")), convention_problems(source, "tidb_x")
