"""The `tidbops` command line."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Data protection for fleets of TiDB clusters.")

# Each module registers its commands on `app` when imported.
COMMAND_MODULES = (
    "tidbops.cli.config_cmd",
    "tidbops.cli.br_cmd",
    "tidbops.cli.catalog_cmd",
    "tidbops.cli.slowlog_cmd",
    "tidbops.cli.window_cmd",
    "tidbops.cli.restore_cmd",
)


def main() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    try:  # the playground ships with the repository, not with a production install
        from tidbops_playground.cli import playground_app
    except ImportError:
        pass
    else:
        app.add_typer(playground_app, name="playground", help="Emulated TiDB clusters for tests and the demo.")
    app()
