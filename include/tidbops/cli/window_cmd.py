"""`tidbops window [--cluster X] [--json]`: each cluster's restorable window, from the catalog.

Per cluster: the PITR window (start and end, in UTC and as TSOs, and the full backup it starts from), the
snapshot restore points (every succeeded full or incremental backup whose chain is whole), the last log
backup check (status, checkpoint lag, open alerts) and the lag history of the last ``--checks`` checks.

The window is computed now (``tidbops.pitr``) from the catalog's backups and the log range the last
check read (``br log metadata``): a backup taken since that check counts; the log's end is as of that
check (its age is shown). The catalog URL comes from ``--catalog``, else ``$TIDBOPS_CATALOG_URL``, else
``~/.tidbops/catalog.db``.

Exit codes: 0 shown; 1 the catalog could not be used; 2 bad usage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from tidbops.catalog.info import human_age
from tidbops.catalog.logkeys import window_within_log_keys
from tidbops.catalog.records import AlertState, BackupRecord, LogBackupCheck
from tidbops.catalog.store import Catalog
from tidbops.cli.catalog_cmd import CatalogURL, ClusterName, _fleet_clusters, _open_catalog
from tidbops.cli.render import table
from tidbops.pitr import LogRange, PitrWindow, compute_window
from tidbops.timefmt import iso, show, show_tso

DEFAULT_CHECKS = 12


def _show(dt: datetime | None, ms: bool = False) -> str:
    return show(dt, ms=ms, missing="-")


def human_age_seconds(seconds: float) -> str:
    """``2d 3h``, ``5m 3s``; under a second with a decimal (``0.4s``)."""
    return human_age(timedelta(seconds=seconds)) if seconds >= 1 else f"{max(seconds, 0.0):.1f}s"


def _lag(seconds: float | None) -> str:
    return "-" if seconds is None else human_age_seconds(seconds)


def window_of(
    cluster: str, backups: list[BackupRecord], last: LogBackupCheck | None, catalog: Catalog | None = None
) -> PitrWindow:
    """The window now, from the catalog's backups and the log range the last check read (cut to the current
    owner-key log key segment when ``catalog`` holds log keys of the cluster, #17)."""
    log: LogRange | None = None
    if last is not None and last.log_min_ts and last.log_max_ts and last.log_max_ts >= last.log_min_ts:
        log = LogRange(last.log_min_ts, last.log_max_ts, "status" if last.log_range_source == "status" else "metadata")
    return window_within_log_keys(catalog, compute_window(cluster, backups, log))


def _report(
    cluster: str, window: PitrWindow, checks: list[LogBackupCheck], alerts: list[AlertState], now: datetime
) -> dict[str, Any]:
    last = checks[0] if checks else None
    return {
        "cluster": cluster,
        "window": window.to_dict(),
        "last_check": last.to_dict() if last else None,
        "last_check_age_seconds": round((now - last.checked_at).total_seconds(), 3) if last else None,
        "open_alerts": [
            {
                "key": a.key,
                "severity": a.severity,
                "message": a.message,
                "since": iso(a.first_seen, timespec="microseconds"),
                "checks": a.occurrences,
                "notified": a.notified_at is not None,
            }
            for a in alerts
            if a.is_open
        ],
        "history": [
            {
                "checked_at": c.to_dict()["checked_at"],
                "status": c.status,
                "checkpoint_ts": c.checkpoint_ts,
                "lag_seconds": c.lag_seconds,
                "healthy": c.healthy,
                "findings": list(c.finding_keys),
            }
            for c in checks
        ],
    }


def _print(
    cluster: str, window: PitrWindow, checks: list[LogBackupCheck], alerts: list[AlertState], now: datetime
) -> None:
    last = checks[0] if checks else None
    if window.exists and window.start_ts is not None and window.end_ts is not None:
        typer.echo(
            f"{cluster}: PITR window {_show(window.start_time)} → {_show(window.end_time)} "
            f"({human_age_seconds(window.seconds or 0.0)})"
        )
        base = window.base
        assert base is not None
        flag = "verified" if base.verified else "not verified yet"
        typer.echo(
            f"  start  TSO {window.start_ts}  {_show(window.start_time, ms=True)}  full backup {base.backup_id} "
            f"({flag})"
        )
        age = f", as of the check {human_age(now - last.checked_at)} ago" if last else ""
        typer.echo(f"  end    TSO {window.end_ts}  {_show(window.end_time, ms=True)}  log checkpoint{age}")
    else:
        typer.echo(f"{cluster}: {window.reason}")
    if window.log is not None:
        via = "br log metadata" if window.log.source == "metadata" else "the task's status"
        typer.echo(f"  log    {show_tso(window.log.min_ts)} → {show_tso(window.log.max_ts)} (from {via})")
    for note in window.notes:
        typer.echo(f"  note: {note}")
    if last is None:
        typer.echo("  no log backup check recorded yet (DAG tidb_log_backup_check__" + cluster + ")")
    else:
        state = "healthy" if last.healthy else "UNHEALTHY: " + ", ".join(last.finding_keys)
        typer.echo(
            f"  last check {_show(last.checked_at)} ({human_age(now - last.checked_at)} ago): {last.status}, "
            f"task {last.task_name or '-'}, checkpoint lag {_lag(last.lag_seconds)}, {state}"
        )
    for a in alerts:
        if a.is_open:
            typer.echo(
                f"  open alert {a.key} ({a.severity}) since {_show(a.first_seen)}, {a.occurrences} checks: {a.message}"
            )
    points = window.snapshot_points
    if points:
        older = f"; {len(points) - 10} older: --json lists them all" if len(points) > 10 else ""
        table(
            ["KIND", "BACKUP", "TIME", "TSO", "VERIFIED", "CHAIN"],
            [
                (
                    p.kind.value,
                    p.backup_id,
                    _show(p.backup_time),
                    p.backup_ts,
                    "yes" if p.verified else "no",
                    " → ".join(p.chain) if len(p.chain) > 1 else "",
                )
                for p in points[-10:]
            ],
            title=f"{cluster}: snapshot restore points: {len(points)} (newest last{older})",
        )
    else:
        typer.echo(f"{cluster}: snapshot restore points: 0")
    if checks:
        table(
            ["CHECKED", "STATUS", "LAG", "CHECKPOINT", "FINDINGS"],
            [
                (
                    _show(c.checked_at),
                    c.status,
                    _lag(c.lag_seconds),
                    _show(c.checkpoint_time),
                    ", ".join(c.finding_keys) or "ok",
                )
                for c in checks
            ],
            title=f"{cluster}: lag history (newest first, last {len(checks)} checks)",
            right=(2,),
        )


def window(
    cluster: ClusterName = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    checks: Annotated[int, typer.Option("--checks", min=1, max=10000, help="How many checks of lag history")] = (
        DEFAULT_CHECKS
    ),
    catalog: CatalogURL = None,
) -> None:
    """Each cluster's restorable window (PITR and snapshot points), last log backup check, lag history."""
    now = datetime.now(UTC)
    reports: list[dict[str, Any]] = []
    with _open_catalog(catalog) as cat:
        names = _fleet_clusters(cluster)
        if not cluster:
            names = sorted({*names, *(c.cluster for c in cat.latest_log_backup_checks())}, key=names_order(names))
        for i, name in enumerate(names):
            history = cat.list_log_backup_checks(name, limit=checks)
            backups = cat.list_backups(name)
            alerts = cat.list_alert_states(name)
            w = window_of(name, backups, history[0] if history else None, cat)
            if as_json:
                reports.append(_report(name, w, history, alerts, now))
            else:
                if i:
                    typer.echo("")
                _print(name, w, history, alerts, now)
    if as_json:
        typer.echo(json.dumps({"generated_at": iso(now, timespec="microseconds"), "clusters": reports}, indent=2))


def names_order(names: list[str]) -> Any:
    """Fleet order first, then the rest by name."""
    position = {n: i for i, n in enumerate(names)}
    return lambda n: (position.get(n, len(position)), n)
