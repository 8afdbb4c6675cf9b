"""The wall: the pure core (include/tidbops) imports nothing from Airflow, directly or through its imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tidbops

pytestmark = pytest.mark.unit

CORE = Path(tidbops.__file__).resolve().parent


def core_modules() -> list[str]:
    return sorted(
        ".".join(("tidbops", *p.relative_to(CORE).with_suffix("").parts)).removesuffix(".__init__")
        for p in CORE.rglob("*.py")
    )


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_no_airflow_import_in_source(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in {"airflow", "tidbops_airflow"}, f"{path}:{node.lineno} imports {name}"


def test_importing_the_whole_core_loads_no_airflow() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'great_expectations', 'pandas'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
