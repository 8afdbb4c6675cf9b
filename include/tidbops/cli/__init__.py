"""The `tidbops` command line."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Data protection for fleets of TiDB clusters.")


def main() -> None:
    from tidbops.cli import config_cmd  # noqa: F401  (registers commands)

    app()
