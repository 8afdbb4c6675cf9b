"""`tidbops restore --dry-run --source X --target Y --point … --reason …`: plan an on-demand restore.

The same request as the ``tidb_restore`` DAG's trigger form, checked by the same guardrails and planned
by the same code (``tidbops.restore``), from the fleet config and the catalog. It only plans: the restore
itself runs in Airflow (the DAG, or ``POST /api/v2/dags/tidb_restore/dagRuns``), where the connections
are. So two checks are left to the DAG, which makes them right before it plans: that the target is
empty (or scratch), and that no log backup task runs on it. The PITR window uses the log range the last
log backup check read (``tidbops window`` shows it), not a live ``br log metadata``.

Exit codes: 0 planned; 3 refused by a guardrail (the message says what would be valid); 1 the config
or the catalog could not be used; 2 bad usage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from tidbops.catalog.records import DrillStatus, make_restore_id
from tidbops.cli.catalog_cmd import CatalogURL, _open_catalog
from tidbops.cli.options import FleetConfigPath
from tidbops.cli.window_cmd import window_of
from tidbops.config import load_fleet
from tidbops.errors import ConfigError
from tidbops.restore import (
    RestoreRefused,
    RestoreRequest,
    check_request,
    check_scratch_free,
    check_target_databases,
    plan_restore,
    render_plan,
    resolve_point,
)

LEFT_TO_THE_DAG = (
    "not checked here (the DAG checks them right before it plans): that the target is empty or scratch, "
    "and that no log backup task runs on it"
)


def restore_cmd(
    source: Annotated[str, typer.Option("--source", help="The cluster whose backups are restored")],
    target: Annotated[str, typer.Option("--target", help="The cluster the data lands in")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the restores audit)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Required: this command only plans")] = False,
    point: Annotated[
        str, typer.Option("--point", help="latest, a datetime with a zone (2026-11-22T10:41:07+01:00), or a backup id")
    ] = "latest",
    tables: Annotated[
        list[str] | None, typer.Option("--table", "-f", help="BR table filter, repeatable (shop.orders, 'crm.*')")
    ] = None,
    confirm: Annotated[str, typer.Option("--confirm", help="The target's name (production targets)")] = "",
    validate_after: Annotated[bool, typer.Option("--validate-after", help="Plan a validation after")] = False,
    config: FleetConfigPath = None,
    catalog: CatalogURL = None,
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON")] = False,
) -> None:
    """Check a restore request against every guardrail and print its plan (nothing is changed)."""
    if not dry_run:
        typer.echo(
            "error: tidbops restore only plans; pass --dry-run. Run the restore itself from the tidb_restore DAG "
            "(the Airflow UI's trigger form, or POST /api/v2/dags/tidb_restore/dagRuns)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        fleet = load_fleet(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    request = RestoreRequest(source, target, point, tuple(tables or ()), True, confirm, validate_after, reason)
    now = datetime.now(UTC)
    try:
        checked = check_request(request, fleet.clusters)
        with _open_catalog(catalog) as cat:
            backups = cat.list_backups(checked.source.name)
            drills = cat.list_drills(checked.source.name, limit=50)
            running = cat.list_drills(target=checked.target.name, status=DrillStatus.RUNNING)
            checks = cat.list_log_backup_checks(checked.source.name, limit=1)
            window = window_of(checked.source.name, backups, checks[0] if checks else None, cat)
        resolved = resolve_point(
            checked.point, checked.source, backups, window if checked.source.log_backup.enabled else None
        )
        if checked.target.scratch:
            check_scratch_free(checked.target, running)
        plan = plan_restore(
            checked,
            restore_id=make_restore_id(checked.source.name, now, dag_id=None, run_id=None),
            resolved=resolved,
            wipe=check_target_databases(checked.target, ()),
            drills=drills,
            now=now,
        )
    except RestoreRefused as exc:
        typer.echo(f"refused ({exc.guardrail}): {exc}", err=True)
        raise typer.Exit(3) from None
    if as_json:
        typer.echo(json.dumps({**plan.to_dict(), "not_checked": LEFT_TO_THE_DAG}, indent=2))
        return
    typer.echo(render_plan(plan))
    typer.echo(f"note: {LEFT_TO_THE_DAG}")
