"""The lazy ``tidbops`` group: the table, the entry points, ``--help``, ``--version`` and mistyped names."""

from __future__ import annotations

import json
from importlib import metadata
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from tidbops.cli import app, commands, run
from tidbops.cli.commands import COMMANDS, ENTRY_POINT_GROUP, LazyGroup, to_command

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture
def group() -> LazyGroup:
    command = typer.main.get_command(app)
    assert isinstance(command, LazyGroup)
    return command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_of_the_table_loads_under_its_name_with_its_line(group: LazyGroup, name: str) -> None:
    ctx = typer.Context(group)
    command = group.get_command(ctx, name)
    assert command is not None and command.name == name
    assert command.get_short_help_str(limit=200) == COMMANDS[name].help
    assert group.get_command(ctx, name) is command  # loaded once


def test_the_playground_plugs_in_through_its_entry_point() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert points.get("playground") == "tidbops_playground.cli:playground_app"  # installed from pyproject.toml
    result = runner.invoke(app, ["playground", "--help"])
    assert result.exit_code == 0
    assert all(name in result.stdout for name in ("up", "down", "status", "fault"))


def test_help_lists_every_command_and_the_plugins() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, spec in COMMANDS.items():
        assert any(name in line and spec.help in line for line in result.stdout.splitlines()), name
    assert "playground" in result.stdout and "--version" in result.stdout


def test_version_is_the_installed_distributions() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"tidbops {metadata.version('tidbops')}\n"


def test_a_mistyped_command_is_a_usage_error_naming_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["windw"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'windw'" in err and "Did you mean 'window'?" in err


@pytest.fixture
def extra_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two more entry points: one that loads, one whose module does not exist, and one shadowing ``info``."""
    points = {
        **commands.plugins(),
        "fleet-config": EntryPoint("fleet-config", "tidbops.cli.config_cmd:config_app", ENTRY_POINT_GROUP),
        "broken": EntryPoint("broken", "tidbops_no_such_module:app", ENTRY_POINT_GROUP),
        "info": EntryPoint("info", "tidbops_no_such_module:info", ENTRY_POINT_GROUP),
    }
    monkeypatch.setattr(commands, "plugins", lambda: points)


@pytest.mark.usefixtures("extra_plugins")
def test_plugins_load_by_name_and_never_shadow_a_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("version: 1\nclusters: []\n")
    assert run(["fleet-config", "check", str(fleet), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert run(["info", "--catalog", f"sqlite:///{tmp_path}/none.db", "--json"]) == 0  # ours, not the plugin's
    assert json.loads(capsys.readouterr().out)["clusters"] == []


@pytest.mark.usefixtures("extra_plugins")
def test_a_broken_plugin_is_one_error_line_and_does_not_break_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["broken"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ModuleNotFoundError: No module named 'tidbops_no_such_module'")
    assert len(err.splitlines()) == 1
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "(cannot be loaded from tidbops_no_such_module:app: ModuleNotFoundError)" in result.stdout


def test_to_command_makes_groups_of_typers_and_commands_of_functions() -> None:
    single = typer.Typer()

    @single.command("only")
    def only() -> None:
        typer.echo("ran")

    group = to_command(single, "one")
    assert isinstance(group, TyperGroup) and group.name == "one" and list(group.commands) == ["only"]

    def hello(name: str = "you") -> None:
        """Say hello."""
        typer.echo(f"hello {name}")

    command = to_command(hello, "hello")
    assert command.name == "hello" and not isinstance(command, TyperGroup)
    with pytest.raises(TypeError, match="not a Typer, a function or a click command"):
        to_command(42, "answer")


def test_every_command_takes_json(group: LazyGroup) -> None:
    ctx = typer.Context(group)
    missing: list[str] = []

    def walk(command: Any, path: str) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        elif not any("--json" in param.opts for param in command.params):
            missing.append(path)

    for name in [*COMMANDS, "playground"]:
        walk(group.get_command(ctx, name), name)
    assert missing == []
