"""`tidbops compliance` and `tidbops cost`: each cluster's declared objectives, and what its backups cost.

``compliance`` checks ``objectives.rpo``, ``.rto``, ``.backup_every`` and ``.min_retention`` of each
backed-up cluster of the fleet config against the catalog (``tidbops.compliance``); one line per
objective, a breach naming the cluster, the objective and the measured value.

``cost`` reports snapshot and log bytes, growth over 7 and 30 days, a 30-day projection and the monthly
cost (``tidbops.cost``). It measures the storage live when it can reach it, recording the sample in the
catalog as the nightly retention run does; otherwise (or with ``--no-measure``) it uses the last recorded
sample, and says which. S3 keys come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or boto3's usual
chain), the endpoint from ``--s3-endpoint``, ``$TIDBOPS_S3_ENDPOINT`` or the cluster's ``storage.endpoint``,
as for ``tidbops catalog rebuild``.

The catalog URL comes from ``--catalog``, else ``$TIDBOPS_CATALOG_URL``, else ``~/.tidbops/catalog.db``; the
fleet config from ``--config``, else ``$TIDBOPS_FLEET_CONFIG``, else
``include/config/clusters.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tidbops.catalog.info import human_age
from tidbops.cli.catalog_cmd import CatalogURL, ClusterName, _open_catalog, checked_endpoint, open_storage
from tidbops.compliance import ComplianceReport, check_compliance
from tidbops.config import ClusterConfig, load_fleet
from tidbops.cost import GB, CostReport, Growth, amount_text, cost_from_catalog, gb_text, measure_usage, signed_gb_text
from tidbops.errors import ConfigError, UnknownClusterError
from tidbops.storage import Storage, StorageError
from tidbops.timefmt import iso

EXIT_BREACH = 3

ConfigPath = Annotated[
    Path | None, typer.Option("--config", help="Fleet config (default: $TIDBOPS_FLEET_CONFIG, else the usual)")
]
AsJSON = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _clusters(config: Path | None, cluster: str | None) -> list[ClusterConfig]:
    """``--cluster``, else every backed-up cluster of the fleet config; exit 1 (config) or 2 (unknown name)."""
    try:
        fleet = load_fleet(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if fleet.issues:
        typer.echo(
            f"note: the fleet config has {len(fleet.issues)} problem(s) (tidbops config check shows them); "
            "a cluster with errors is not listed",
            err=True,
        )
    if not cluster:
        return fleet.sources()
    try:
        return [fleet.get(cluster)]
    except UnknownClusterError as exc:
        typer.echo(f"error: --cluster: {exc}", err=True)
        raise typer.Exit(2) from None


# ------------------------------------------------------------------------------------------ compliance


def compliance(
    cluster: ClusterName = None,
    as_json: AsJSON = False,
    config: ConfigPath = None,
    catalog: CatalogURL = None,
) -> None:
    """Check each cluster's declared objectives (objectives.rpo, rto, backup_every, min_retention) against
    the catalog; an undeclared objective is reported, not a breach. Exit codes: 0 every declared objective
    met; 3 at least one breach; 1 the fleet config or the catalog could not be used; 2 bad usage."""
    now = datetime.now(UTC)
    clusters = _clusters(config, cluster)
    with _open_catalog(catalog) as cat:
        reports = [check_compliance(cat, c, now=now) for c in clusters]
    breaches = [b.line for r in reports for b in r.breaches]
    if as_json:
        doc = {
            "generated_at": iso(now, timespec="seconds"),
            "ok": not breaches,
            "breaches": breaches,
            "flags": [f for r in reports for f in r.flags],
            "clusters": [r.to_dict() for r in reports],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        _print_compliance(reports)
    raise typer.Exit(EXIT_BREACH if breaches else 0)


def _print_compliance(reports: list[ComplianceReport]) -> None:
    for report in reports:
        for check in report.checks:
            typer.echo(check.line)
        for flag in report.flags:
            typer.echo(flag)
        for note in report.notes:
            typer.echo(f"{report.cluster}: note: {note}")
    breached = [r for r in reports if not r.ok]
    if not reports:
        typer.echo("compliance: no backed-up cluster in the fleet config")
    elif breached:
        count = sum(len(r.breaches) for r in breached)
        typer.echo(f"compliance: {count} breach(es) in {len(breached)} of {len(reports)} cluster(s)")
    else:
        typer.echo(f"compliance: every declared objective met ({len(reports)} cluster(s))")


# ------------------------------------------------------------------------------------------------ cost


def _storages(c: ClusterConfig, endpoint: str | None) -> tuple[Storage, Storage]:
    """The cluster's storage root and its log storage (``measure_usage`` lists the latter only when the log
    lives outside the root; building one reads nothing)."""
    ep = endpoint or c.storage.endpoint
    return open_storage(c.storage.uri, ep, c.storage.region), open_storage(c.log_storage_uri, ep, c.storage.region)


def _source_text(report: CostReport) -> str:
    usage = report.usage
    if usage.source == "measured":
        return "measured now"
    if usage.source == "sample" and usage.at is not None:
        at = iso(usage.at, timespec="seconds")
        return f"the last recorded sample, {human_age(report.generated_at - usage.at)} old ({at})"
    if usage.source == "catalog":
        return "the catalog's backup sizes (snapshot only; no storage sample recorded)"
    return "nothing recorded"


def _money(value: float | None) -> str:
    return "-" if value is None else amount_text(value)


def _growth_line(g: Growth) -> str:
    if g.source == "none" or g.since is None:
        return f"  growth {g.days}d: unknown (no sample and no backup that old)"
    log = "" if g.log_bytes is None else f", {signed_gb_text(g.log_bytes)} log"
    since = iso(g.since, timespec="seconds")
    return f"  growth {g.days}d: {signed_gb_text(g.snapshot_bytes)} snapshot{log} (from {g.source} since {since})"


def _print_cost(report: CostReport) -> None:
    u = report.usage
    log = "log not measured" if u.log_bytes is None else f"{gb_text(u.log_bytes)} log"
    price = "no price" if report.price_per_gb_month is None else f"{report.price_per_gb_month:g} per GB-month"
    if u.total_bytes is None:
        typer.echo(f"{report.cluster}: {_source_text(report)}")
    else:
        typer.echo(
            f"{report.cluster}: {gb_text(u.total_bytes)} ({gb_text(u.snapshot_bytes)} snapshot, {log}), "
            f"{_source_text(report)}; {report.storage_class} at {price}: {_money(report.monthly_cost)} a month"
        )
    for g in report.growth:
        typer.echo(_growth_line(g))
    p = report.projection
    if p is not None:
        basis = f"at the {p.basis_days}-day rate" + (
            "" if p.log_basis_days in (None, p.basis_days) else f", log at the {p.log_basis_days}-day rate"
        )
        typer.echo(
            f"  in 30 days: {gb_text(p.total_bytes)}, {_money(report.projected_monthly_cost)} a month (linear, {basis})"
        )
    elif u.total_bytes is not None:
        typer.echo("  in 30 days: no projection (no growth known)")
    for note in report.notes:
        typer.echo(f"  note: {note}")


def cost(
    cluster: ClusterName = None,
    as_json: AsJSON = False,
    no_measure: Annotated[
        bool, typer.Option("--no-measure", help="Do not read storage: use the last recorded sample")
    ] = False,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint",
            help="S3 endpoint URL; default: $TIDBOPS_S3_ENDPOINT, else the cluster's storage.endpoint",
            show_default=False,
        ),
    ] = None,
    config: ConfigPath = None,
    catalog: CatalogURL = None,
) -> None:
    """Each cluster's backup storage: snapshot and log bytes, growth over 7 and 30 days, a linear projection
    30 days out, and the monthly cost at storage.price_per_gb_month for its storage class (GB = 10^9 bytes).
    Measures the storage when it can (and records the sample), else uses the last recorded sample. Exit
    codes: 0 shown (also when a storage could not be read: the report says so); 1 the fleet config or the
    catalog could not be used; 2 bad usage."""
    endpoint = checked_endpoint(s3_endpoint)
    now = datetime.now(UTC)
    clusters = _clusters(config, cluster)
    docs: list[dict[str, Any]] = []
    reports: list[CostReport] = []
    with _open_catalog(catalog) as cat:
        for c in clusters:
            current, problem = None, None
            if not no_measure:
                try:
                    current = measure_usage(cat, c, *_storages(c, endpoint), now=now)
                except StorageError as exc:
                    problem = f"storage not measured ({exc}); using the last recorded sample"
            report = cost_from_catalog(cat, c, now=now, current=current)
            if problem:
                report = replace(report, notes=(problem, *report.notes))
            reports.append(report)
            docs.append(report.to_dict())
    total = sum(r.usage.total_bytes or 0 for r in reports)
    monthly = [r.monthly_cost for r in reports if r.monthly_cost is not None]
    if as_json:
        doc = {
            "generated_at": iso(now, timespec="seconds"),
            "gb_bytes": GB,
            "clusters": docs,
            "total_bytes": total,
            "monthly_cost": round(sum(monthly), 4) if monthly else None,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    for report in reports:
        _print_cost(report)
    if not reports:
        typer.echo("cost: no backed-up cluster in the fleet config")
    elif len(reports) > 1:
        typer.echo(f"fleet: {gb_text(total)}, {_money(sum(monthly) if monthly else None)} a month")
    typer.echo("(GB = 10^9 bytes; prices from storage.price_per_gb_month)")
