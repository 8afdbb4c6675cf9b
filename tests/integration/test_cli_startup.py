"""The installed ``tidbops`` imports only what the command line it runs needs.

Each case runs the console script in a fresh process with a ``sitecustomize`` on ``PYTHONPATH`` that
writes ``sys.modules`` to a file as the process exits (``-X importtime`` leaves out a module imported by
``importlib.import_module``, as lazy commands are). Module sets, not timings: timings depend on the
machine (README, "The `tidbops` CLI", has them and the commands that measure them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from tidbops.cli.commands import COMMANDS
from tidbops_playground.slowlog_gen import generate

pytestmark = pytest.mark.integration
TIDBOPS = Path(sys.executable).with_name("tidbops")
SAMPLES = Path(__file__).resolve().parents[1] / "unit" / "tidbops" / "br" / "samples"
HOOK = """
import atexit, json, os, sys


def _dump():
    with open(os.environ["TIDBOPS_TEST_MODULES"], "w") as fh:
        json.dump(sorted(sys.modules), fh)


atexit.register(_dump)
"""

HEAVY = {"sqlalchemy", "pydantic", "pydantic_core", "tidbops_playground", "pymysql", "boto3", "botocore"}
TYPER_PYDANTIC = "typer._adapters"  # typer's pydantic-based conversion, which tidbops.cli.params replaces
COMMAND_MODULES = {spec.module for spec in COMMANDS.values()}
Imported = Callable[..., tuple[subprocess.CompletedProcess[str], set[str]]]


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tidb-slow.log"
    generate(path, entries=4, days=1, start=date(2026, 11, 1), seed=7, truncated_tail=False)
    assert path.stat().st_size < 20_000
    return path


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hook")
    (directory / "sitecustomize.py").write_text(HOOK)
    return directory


@pytest.fixture
def imported(hook: Path, tmp_path: Path) -> Imported:
    def run(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        """Run the installed tidbops; its result and the names of every module it imported."""
        out = tmp_path / f"modules-{len(list(tmp_path.iterdir()))}.json"
        path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, "TIDBOPS_TEST_MODULES": str(out), "COLUMNS": "120"}
        env.pop("TIDBOPS_DEBUG", None)
        proc = subprocess.run([str(TIDBOPS), *args], capture_output=True, text=True, env=env, timeout=120, check=False)
        names = set(json.loads(out.read_text()))
        assert {"sitecustomize", "tidbops.cli"} <= names  # the hook ran, in the command's process
        return proc, names

    return run


def test_slowlog_digest_of_a_tiny_file_imports_only_the_digest(tiny_log: Path, imported: Imported) -> None:
    proc, names = imported("slowlog", "digest", str(tiny_log), "--format", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["overall"]["count"] > 0
    assert not names & HEAVY
    assert TYPER_PYDANTIC not in names and "rich" not in names  # no table printed: rich stays out
    assert names & COMMAND_MODULES == {"tidbops.cli.slowlog_cmd"}
    assert not {n for n in names if n.startswith(("tidbops.catalog", "tidbops.config", "tidbops.storage"))}


def test_slowlog_digest_as_text_needs_no_more(tiny_log: Path, imported: Imported) -> None:
    proc, names = imported("slowlog", "digest", str(tiny_log))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not names & HEAVY and TYPER_PYDANTIC not in names
    assert names & COMMAND_MODULES == {"tidbops.cli.slowlog_cmd"}


def test_version_imports_no_command(imported: Imported) -> None:
    proc, names = imported("--version")
    assert proc.returncode == 0 and re.fullmatch(r"tidbops \S+\n", proc.stdout), proc.stdout
    assert not names & (HEAVY | COMMAND_MODULES | {"rich", TYPER_PYDANTIC})


def test_help_lists_the_commands_without_importing_them(imported: Imported) -> None:
    proc, names = imported("--help")
    assert proc.returncode == 0
    assert all(name in proc.stdout for name in COMMANDS)
    assert not names & COMMAND_MODULES
    assert not names & {"sqlalchemy", "pydantic", "boto3", TYPER_PYDANTIC}
    assert "tidbops_playground.cli" in names  # the entry point's plugin is asked for its help line


def test_br_parse_imports_the_parser_and_not_the_catalog(imported: Imported) -> None:
    proc, names = imported("br", "parse", str(SAMPLES / "v8_full_backup_success.txt"), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["success"] is True
    assert not names & (HEAVY | {"rich", TYPER_PYDANTIC})
    assert names & COMMAND_MODULES == {"tidbops.cli.br_cmd"}


def test_the_playground_runs_through_its_entry_point(tmp_path: Path) -> None:
    env = {**os.environ, "TIDBOPS_PLAYGROUND_HOME": str(tmp_path / "pg")}
    proc = subprocess.run(
        [str(TIDBOPS), "playground", "status", "--json", "--no-counts"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["exists"] is False
