"""tidbops.cli.params converts command-line values as typer does (typer's own conversion is the oracle),
and every parameter of every tidbops command is converted by it, so none needs pydantic."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import typer
from typer.core import TyperGroup, _TyperParameter
from typer.testing import CliRunner

from tidbops.cli import app
from tidbops.cli.commands import COMMANDS, LazyGroup
from tidbops.cli.params import PlainRuntimeParam, install

pytestmark = pytest.mark.unit
runner = CliRunner()


class Shape(StrEnum):
    text = "text"
    json = "json"


class PlainGroup(TyperGroup):
    """A group whose parameters are converted by tidbops.cli.params."""

    installed = 0

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        PlainGroup.installed = install(self)


def probe(cls: type[TyperGroup] = TyperGroup) -> typer.Typer:
    """A command taking one option of each kind our commands use; it prints what it received."""
    toy = typer.Typer(cls=cls)

    @toy.command()
    def show(
        paths: Annotated[list[Path] | None, typer.Argument()] = None,
        top: Annotated[int, typer.Option(min=1, max=50)] = 20,
        count: Annotated[int | None, typer.Option()] = None,
        ratio: Annotated[float, typer.Option(min=0.0)] = 0.5,
        name: Annotated[str | None, typer.Option()] = None,
        tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
        shape: Annotated[Shape, typer.Option()] = Shape.text,
        mode: Annotated[Literal["fast", "slow"], typer.Option()] = "fast",
        config: Annotated[Path | None, typer.Option()] = None,
        must: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
        verbose: Annotated[bool, typer.Option("--verbose")] = False,
    ) -> None:
        values: dict[str, Any] = dict(
            paths=paths, top=top, count=count, ratio=ratio, name=name, tags=tags, shape=shape, mode=mode,
            config=config, must=must, verbose=verbose,
        )  # fmt: skip
        typer.echo(repr(values))

    @toy.command()
    def other() -> None:  # two commands: a group, as ours are
        typer.echo("other")

    return toy


CASES = [
    pytest.param([], id="defaults"),
    pytest.param(["a.log", "b/c.log"], id="paths"),
    pytest.param(["--top", "7", "--count", "-3", "--ratio", "2.5"], id="numbers"),
    pytest.param(["--top", " 8 "], id="int-with-blanks"),
    pytest.param(["--top", "+9"], id="int-with-sign"),
    pytest.param(["--top", "4.0"], id="int-with-zero-fraction"),
    pytest.param(["--top", "1_0"], id="int-with-underscore"),
    pytest.param(["--top", "0"], id="below-min"),
    pytest.param(["--top", "51"], id="above-max"),
    pytest.param(["--top", "x"], id="not-an-int"),
    pytest.param(["--top", "1.5"], id="fraction"),
    pytest.param(["--top", "3."], id="bare-point"),
    pytest.param(["--top", "1__0"], id="double-underscore"),
    pytest.param(["--top", ""], id="empty-int"),
    pytest.param(["--ratio", "-0.1"], id="float-below-min"),
    pytest.param(["--ratio", "abc"], id="not-a-float"),
    pytest.param(["--ratio", "1e3"], id="float-exponent"),
    pytest.param(["--count", "123456789012345678901234567890"], id="big-int"),
    pytest.param(["--count", "\u0663"], id="non-ascii-digit"),
    pytest.param(["--count", "0x10"], id="hex"),
    pytest.param(["--ratio", "inf"], id="float-inf"),
    pytest.param(["--ratio", "nan"], id="float-nan"),
    pytest.param(["--ratio", "1_0.5"], id="float-underscore"),
    pytest.param(["--ratio", "\u0663"], id="float-non-ascii-digit"),
    pytest.param(["--name", "x y", "--tag", "a", "--tag", "b"], id="strings"),
    pytest.param(["--name", ""], id="empty-string"),
    pytest.param(["--shape", "json", "--mode", "slow"], id="choices"),
    pytest.param(["--shape", "JSON"], id="choice-case"),
    pytest.param(["--shape", "xml"], id="bad-enum"),
    pytest.param(["--mode", "medium"], id="bad-literal"),
    pytest.param(["--config", "some/where.yaml"], id="path"),
    pytest.param(["--must", "/nonexistent/x"], id="path-must-exist"),
    pytest.param(["--must", "/"], id="path-not-a-dir"),
    pytest.param(["--must", __file__], id="path-exists"),
    pytest.param(["--verbose"], id="flag"),
    pytest.param(["--help"], id="help"),
]


def invoke(application: typer.Typer, args: list[str]) -> tuple[int, str]:
    result = runner.invoke(application, ["show", *args], env={"COLUMNS": "300"})
    return result.exit_code, result.output


@pytest.mark.parametrize("args", CASES)
def test_values_and_messages_are_typers(args: list[str]) -> None:
    typers = invoke(probe(), args)
    ours = invoke(probe(PlainGroup), args)
    assert PlainGroup.installed == 11 + 1 + 1 + 1  # show's options and --help, other's --help, the group's --help
    assert ours[0] == typers[0]
    if "Value error, " in typers[1]:  # pydantic's prefix on a bad choice is left out (and the box is narrower)
        assert " ".join(ours[1].split()) == " ".join(typers[1].replace("Value error, ", "").split())
    else:
        assert ours[1] == typers[1]


def test_every_parameter_of_every_command_is_converted_here() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    ctx = typer.Context(group)
    left: list[str] = []

    def walk(command: Any, path: str) -> None:
        params = [*command.params, command.get_help_option(typer.Context(command))]
        for param in params:
            if isinstance(param, _TyperParameter) and not isinstance(param._runtime_param, PlainRuntimeParam):
                left.append(f"{path} {param.name}")
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    for name in [*COMMANDS, "playground"]:
        walk(group.get_command(ctx, name), name)
    walk(group, "tidbops")
    assert left == []
