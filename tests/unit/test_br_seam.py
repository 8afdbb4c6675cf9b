"""No BR call bypasses the seam: only ``tidbops.br.runner`` (the ``LocalRunner``) starts a process.

An AST scan of include/ (the playground's emulator left out: it IS the fake BR and TiDB, it starts their
processes), plugins/ and dags/ fails naming every file and line that starts a process some other way
(``subprocess``, ``os.exec*``/``os.spawn*``/``os.system``/``os.popen``/``os.posix_spawn*``, ``pty.spawn``,
``asyncio.create_subprocess_*``) or calls the local runner's process functions (``runner.run``/``start``/
``wait``) instead of going through a ``BRRunner``. The scan is shown to catch planted offenders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("include", "plugins", "dags")
LEFT_OUT = ("include/tidbops_playground",)  # the emulator (a test tool): it starts the fake BR/TiDB/PD
ALLOWED = {"include/tidbops/br/runner.py"}  # the LocalRunner: the one place a BR process starts

PROCESS_MODULES = {"subprocess", "pty", "asyncio.subprocess"}
OS_CALLS = ("exec", "spawn", "system", "popen", "posix_spawn", "fork")
ASYNCIO_CALLS = ("create_subprocess_exec", "create_subprocess_shell")
RUNNER_FUNCS = {"run", "start", "wait"}


def offences(path: Path, shown: str) -> list[str]:
    """What in ``path`` starts a process, or calls the local runner's functions, as ``file:line: what``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=shown)
    runner_names: set[str] = set()  # local names bound to the module tidbops.br.runner
    found: list[str] = []

    def hit(node: ast.AST, what: str) -> None:
        found.append(f"{shown}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in PROCESS_MODULES or alias.name.split(".")[0] in {"subprocess", "pty"}:
                    hit(node, f"import {alias.name}")
                if alias.name == "tidbops.br.runner":
                    runner_names.add(alias.asname or "tidbops")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module in PROCESS_MODULES or module.split(".")[0] in {"subprocess", "pty"}:
                hit(node, f"from {module} import …")
            for alias in node.names:
                if module == "tidbops.br" and alias.name == "runner":
                    runner_names.add(alias.asname or "runner")
                if module == "tidbops.br.runner" and alias.name in RUNNER_FUNCS:
                    hit(node, f"from tidbops.br.runner import {alias.name} (use a BRRunner)")
                if module == "os" and alias.name.startswith(OS_CALLS):
                    hit(node, f"from os import {alias.name}")
                if module == "asyncio" and alias.name in ASYNCIO_CALLS:
                    hit(node, f"from asyncio import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name):
            if value.id == "os" and node.attr.startswith(OS_CALLS):
                hit(node, f"os.{node.attr}")
            elif value.id == "asyncio" and node.attr in ASYNCIO_CALLS:
                hit(node, f"asyncio.{node.attr}")
            elif value.id in runner_names and node.attr in RUNNER_FUNCS:
                hit(node, f"{value.id}.{node.attr} (the local runner's process function: use a BRRunner)")
        elif (  # tidbops.br.runner.run(...)
            isinstance(value, ast.Attribute)
            and node.attr in RUNNER_FUNCS
            and ast.unparse(value) == "tidbops.br.runner"
        ):
            hit(node, f"tidbops.br.runner.{node.attr} (use a BRRunner)")
    return found


def scan(root: Path, dirs: tuple[str, ...] = SCANNED) -> list[str]:
    found: list[str] = []
    for top in dirs:
        for path in sorted((root / top).rglob("*.py")):
            shown = path.relative_to(root).as_posix()
            if shown in ALLOWED or shown.startswith(tuple(f"{d}/" for d in LEFT_OUT)):
                continue
            found += offences(path, shown)
    return found


def test_nothing_but_the_local_runner_starts_a_process() -> None:
    assert scan(ROOT) == []


def test_the_local_runner_is_the_one_that_does() -> None:
    # the allowance is not vacuous: the scan does see runner.py's Popen
    assert any("import subprocess" in o for o in offences(ROOT / "include/tidbops/br/runner.py", "runner.py"))


PLANTED = {
    "include/tidbops/sneaky.py": (
        "import subprocess\n\ndef f():\n    return subprocess.run(['br', 'log', 'status'])\n",
        ["include/tidbops/sneaky.py:1: import subprocess"],
    ),
    "plugins/tidbops_airflow/operators/bypass.py": (
        "from tidbops.br import runner\n\ndef status(argv):\n    return runner.run(argv, timeout=5)\n",
        ["plugins/tidbops_airflow/operators/bypass.py:4: runner.run"],
    ),
    "plugins/tidbops_airflow/triggers/poll.py": (
        "import asyncio\n\nasync def f():\n    await asyncio.create_subprocess_exec('br', '-V')\n",
        ["plugins/tidbops_airflow/triggers/poll.py:4: asyncio.create_subprocess_exec"],
    ),
    "dags/exec_dag.py": ("import os\nos.execvp('br', ['br', '-V'])\n", ["dags/exec_dag.py:2: os.execvp"]),
    "include/tidbops/aliased.py": (
        "from tidbops.br import runner as r\nfrom tidbops.br.runner import start\n\nr.start(['br'])\n",
        ["include/tidbops/aliased.py:2: from tidbops.br.runner import start", "include/tidbops/aliased.py:4: r.start"],
    ),
}


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_planted_offender_is_named(tmp_path: Path, planted: str) -> None:
    source, expected = PLANTED[planted]
    (tmp_path / planted).parent.mkdir(parents=True)
    (tmp_path / planted).write_text(source)
    (tmp_path / "include/tidbops/br").mkdir(parents=True, exist_ok=True)
    (tmp_path / "include/tidbops/br/ok.py").write_text("from tidbops.br import runner\nx = runner.LocalRunner()\n")
    found = scan(tmp_path)
    for want in expected:
        assert any(o.startswith(want) for o in found), (want, found)
    assert all(o.split(":")[0] == planted for o in found), found


def test_the_emulator_is_left_out_but_only_it(tmp_path: Path) -> None:
    for rel in ("include/tidbops_playground/br/main.py", "include/tidbops_playgroundx/m.py"):
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_text("import subprocess\n")
    assert scan(tmp_path) == ["include/tidbops_playgroundx/m.py:1: import subprocess"]
