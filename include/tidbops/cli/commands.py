"""Which module holds each ``tidbops`` command, and the group that imports only the one asked for.

``tidbops slowlog digest f.log`` imports ``tidbops.cli.slowlog_cmd`` and what it needs, nothing of the
catalog, SQLAlchemy or pydantic. ``tidbops --help`` lists every command from :data:`COMMANDS` without
importing any. A command module holds a Typer (a group of commands) or a function (one command); it does
not register itself anywhere.

Commands from other distributions plug in through the ``tidbops.commands`` entry point group (the
playground's ``tidbops playground`` is one): an entry point names a Typer, a function or a click command.
They are looked up only for a name that is not in :data:`COMMANDS`, and for ``--help``; a name in the
table always wins.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from typing import TYPE_CHECKING, Any

import typer
from typer import _click  # typer's own copy of click, which its groups are made of
from typer.core import TyperCommand, TyperGroup

from tidbops.cli.params import install

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "tidbops.commands"


@dataclass(frozen=True)
class CommandSpec:
    """Where a command lives: ``attribute`` of ``module``, and its line in ``tidbops --help``."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, CommandSpec] = {
    "info": CommandSpec(
        "tidbops.cli.catalog_cmd",
        "info",
        "Every cluster's backups: status, chains (full → incrementals), sizes, ages, verification.",
    ),
    "window": CommandSpec(
        "tidbops.cli.window_cmd",
        "window",
        "Each cluster's restorable window (PITR and snapshot points), last log backup check, lag history.",
    ),
    "restore": CommandSpec(
        "tidbops.cli.restore_cmd",
        "restore_cmd",
        "Check a restore request against every guardrail and print its plan (nothing is changed).",
    ),
    "verify": CommandSpec(
        "tidbops.cli.verify_cmd",
        "verify_cmd",
        "Verify retained backups now: tier 1 (files read back) and tier 2 (br debug checksum, when due).",
    ),
    "compliance": CommandSpec(
        "tidbops.cli.compliance_cmd",
        "compliance",
        "Check each cluster's declared objectives (RPO, RTO, backup_every, min_retention) against the catalog.",
    ),
    "cost": CommandSpec(
        "tidbops.cli.compliance_cmd",
        "cost",
        "Each cluster's backup storage: bytes, growth, a 30-day projection and the monthly cost.",
    ),
    "config": CommandSpec("tidbops.cli.config_cmd", "config_app", "Fleet config."),
    "br": CommandSpec("tidbops.cli.br_cmd", "br_app", "BR (backup & restore) tools: read what BR printed."),
    "catalog": CommandSpec(
        "tidbops.cli.catalog_cmd",
        "catalog_app",
        "The backup catalog: schema migrations and rebuilding it from storage.",
    ),
    "slowlog": CommandSpec("tidbops.cli.slowlog_cmd", "slowlog_app", "TiDB slow logs: offline digest reports."),
    "keys": CommandSpec(
        "tidbops.cli.keys_cmd",
        "keys_app",
        "Owner-held backup keys: key ids, and rewrapping every retained backup's data key to a new public key.",
    ),
    "expectations": CommandSpec(
        "tidbops.cli.expectations_cmd",
        "expectations_app",
        "Great Expectations suites that drills run against restored clusters.",
    ),
}


def to_command(obj: Any, name: str) -> _click.Command:
    """A Typer (a group), a function (one command) or a click command, as the click command ``name``."""
    command: _click.Command
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    elif isinstance(obj, _click.Command):
        command = obj
    elif callable(obj):
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    else:
        raise TypeError(f"command {name!r} is a {type(obj).__name__}, not a Typer, a function or a click command")
    command.name = name
    install(command)  # its values converted without pydantic (tidbops.cli.params)
    return command


@cache
def plugins() -> dict[str, EntryPoint]:
    """The ``tidbops.commands`` entry points of the installed distributions, by name."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class LazyGroup(TyperGroup):
    """The ``tidbops`` group: a command's module is imported when that command is asked for."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        install(self)  # --version and --help converted without pydantic too

    def list_commands(self, ctx: _click.Context) -> list[str]:
        names = [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]
        return [*names, *sorted(n for n in plugins() if n not in names)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        loaded = self.commands.get(cmd_name)
        if loaded is not None:
            return loaded
        spec = COMMANDS.get(cmd_name)
        if spec is not None:
            if self._listing:  # --help: the table's line is all that is shown
                return TyperCommand(cmd_name, help=spec.help)
            command = self._load(cmd_name, lambda: getattr(importlib.import_module(spec.module), spec.attribute))
            command.short_help = command.short_help or spec.help
            return command
        entry = plugins().get(cmd_name)
        if entry is None:
            return None
        if self._listing:
            try:
                return self._load(cmd_name, entry.load)
            except Exception as exc:  # a broken plugin must not break --help
                return TyperCommand(cmd_name, help=f"(cannot be loaded from {entry.value}: {type(exc).__name__})")
        return self._load(cmd_name, entry.load)

    def _load(self, name: str, load: Callable[[], Any]) -> _click.Command:
        command = to_command(load(), name)
        self.commands[name] = command
        return command

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        """As typer's, with "Did you mean" taken from every command, loaded or not."""
        try:
            return self._click_resolve_command(ctx, args)
        except _click.exceptions.UsageError as exc:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args and self.suggest_commands else []
            if matches:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"
            raise
