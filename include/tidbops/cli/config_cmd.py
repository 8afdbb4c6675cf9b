"""`tidbops config check [FILE] [--json]`: validate the fleet config, one line per problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tidbops.config import default_config_path, load_fleet
from tidbops.errors import ConfigError

config_app = typer.Typer(help="Fleet config.", no_args_is_help=True)


@config_app.command("check")
def check(
    file: Annotated[
        Path | None,
        typer.Argument(help="Fleet config (default: $TIDBOPS_FLEET_CONFIG or include/config/clusters.yaml)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Validate the fleet config: exit 0 when every entry is valid, 1 otherwise."""
    path = file or default_config_path()
    try:
        fleet = load_fleet(path)
    except ConfigError as exc:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ok": False,
                        "path": str(path),
                        "clusters": [],
                        "issues": [{"cluster": None, "field": "", "message": str(exc)}],
                    }
                )
            )
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": fleet.ok,
                    "path": str(path),
                    "clusters": [
                        {"name": c.name, "env": c.env, "scratch": c.scratch, "production": c.is_production}
                        for c in fleet.clusters.values()
                    ],
                    "issues": [{"cluster": i.cluster, "field": i.field, "message": i.message} for i in fleet.issues],
                },
                indent=2,
            )
        )
    else:
        for issue in fleet.issues:
            typer.echo(f"error: {issue}", err=True)
        names = ", ".join(fleet.clusters) or "none"
        status = "ok" if fleet.ok else f"{len(fleet.issues)} problem(s)"
        typer.echo(f"{path}: {status}; {len(fleet.clusters)} valid cluster(s): {names}")
    raise typer.Exit(0 if fleet.ok else 1)
