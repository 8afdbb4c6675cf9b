"""`tidbops info`, `tidbops catalog migrate`, `tidbops catalog rebuild`: the backup catalog from a shell.

The catalog URL comes from ``--catalog``, else ``$TIDBOPS_CATALOG_URL``, else ``~/.tidbops/catalog.db`` (to read
an Airflow deployment's catalog, point ``$TIDBOPS_CATALOG_URL`` at it, as the playground's ``airflow.env``
does). Its password is never printed. S3 credentials for
``rebuild`` come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or boto3's usual chain), the
endpoint from ``--s3-endpoint`` or ``$TIDBOPS_S3_ENDPOINT``.

Exit codes: 0 done; 1 the catalog or storage could not be used, or rebuild found errors; 2 bad usage.
``tidbops info`` is a monitoring check and answers as one (Nagios plugin codes, see ``info``): 0 OK, 1
WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from tidbops.catalog.errors import CatalogError
from tidbops.catalog.info import (
    DEFAULT_STALE_AFTER,
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_WARNING,
    exit_code,
    format_info,
    info_document,
)
from tidbops.catalog.manifest import RebuildReport, rebuild_catalog
from tidbops.catalog.store import Catalog, default_catalog_url
from tidbops.cli.render import progress
from tidbops.config import load_fleet
from tidbops.durations import parse_duration
from tidbops.errors import ConfigError, TiDBOpsError, UnknownClusterError
from tidbops.redact import redact
from tidbops.storage import Storage, StorageError, check_endpoint, storage_from_uri

catalog_app = typer.Typer(
    help="The backup catalog: schema migrations and rebuilding it from storage.", no_args_is_help=True
)

CatalogURL = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="Catalog database URL (sqlite:///path or mysql+pymysql://…); default: $TIDBOPS_CATALOG_URL, "
        "else ~/.tidbops/catalog.db",
        show_default=False,
    ),
]
ClusterName = Annotated[str | None, typer.Option("--cluster", help="Only this cluster", show_default=False)]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _db_error(exc: SQLAlchemyError) -> str:
    """The driver's own message (never the URL, which may hold a password)."""
    orig = getattr(exc, "orig", None)
    return f"{type(orig).__name__}: {orig}" if orig is not None else type(exc).__name__


@contextmanager
def _open_catalog(url: str | None, *, code: int = 1) -> Iterator[Catalog]:
    """The catalog at ``url`` (default: ``default_catalog_url``); a problem is one ``error:`` line and exit
    ``code``."""
    try:
        catalog = Catalog.from_url(url or default_catalog_url())
    except ArgumentError:
        raise _fail("the catalog URL is not a database URL (e.g. sqlite:///path or mysql+pymysql://…)", code) from None
    except (ImportError, ValueError) as exc:
        raise _fail(f"cannot use the catalog URL: {type(exc).__name__}", code) from None
    except CatalogError as exc:  # e.g. a SQLite file whose directory cannot be made
        raise _fail(str(exc), code) from None
    try:
        yield catalog
    except CatalogError as exc:
        raise _fail(str(exc), code) from None
    except SQLAlchemyError as exc:
        raise _fail(f"cannot use the catalog at {catalog.url}: {_db_error(exc)}", code) from None
    finally:
        catalog.close()


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite catalog file that does not exist yet (opening it would create it), else None."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # _open_catalog says what is wrong with it
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    if os.path.exists(database):
        return None
    parent = os.path.dirname(os.path.abspath(database))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return database if os.path.isdir(parent) else None  # under a file: a wrong path, said by _open_catalog


def _fleet_clusters(cluster: str | None) -> list[str]:
    """The fleet's backed-up clusters (listed even with no backup); none when the config cannot be read."""
    if cluster:
        return [cluster]
    try:
        fleet = load_fleet()
    except ConfigError as exc:
        typer.echo(f"note: listing clusters from the catalog only; {exc}", err=True)
        return []
    return [cluster] if cluster else [c.name for c in fleet.sources()]


INFO_HELP = f"""Every cluster's backups: status, chains (full → incrementals), sizes, ages, verification.

A monitoring check too; exit codes as Nagios plugins give them:

{EXIT_OK} OK: every cluster ok, or no backups recorded yet (no catalog, or one without tables; --json gives an empty clusters list).

{EXIT_WARNING} WARNING: a cluster has a warning (an unverified link, a failed last attempt, a broken chain), none an error.

{EXIT_CRITICAL} CRITICAL: a cluster is in error (newest restorable backup older than --stale-after, none at all, or a failed verification).

{EXIT_UNKNOWN} UNKNOWN: no check was made (the catalog does not answer or has another schema version, an unknown --cluster, a bad --stale-after).

A command line the parser refuses exits 2, as for every command.
"""  # noqa: E501 (one paragraph a line: the help keeps each exit code on its own line)


def info(
    cluster: ClusterName = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    catalog: CatalogURL = None,
    stale_after: Annotated[
        str, typer.Option("--stale-after", help="A cluster whose newest restore point is older is in error")
    ] = "36h",
) -> None:
    try:
        limit = timedelta(seconds=parse_duration(stale_after)) if stale_after else DEFAULT_STALE_AFTER
    except ValueError as exc:
        raise _fail(f"--stale-after: {exc}", EXIT_UNKNOWN) from None
    url = catalog or default_catalog_url()
    now = datetime.now(UTC)
    missing = _missing_sqlite_file(url)
    if missing is not None:
        _no_backups(f"no catalog at {missing} yet", now, limit, as_json)
    with _open_catalog(url, code=EXIT_UNKNOWN) as cat:
        if cat.schema_version() == 0:
            _no_backups(f"the catalog at {cat.url} has no tables yet", now, limit, as_json)
        backups = cat.list_backups(cluster=cluster)
    clusters = _fleet_clusters(cluster)
    if cluster and not backups and not _in_fleet(cluster):
        why = "not in the fleet config and no backup of it in the catalog"
        raise _fail(f"unknown cluster {cluster!r}: {why}", EXIT_UNKNOWN)
    doc = info_document(backups, now, clusters, stale_after=limit)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        typer.echo(format_info(backups, now, clusters, stale_after=limit), nl=False)
    raise typer.Exit(exit_code(doc))


info.__doc__ = INFO_HELP


def _no_backups(why: str, now: datetime, limit: timedelta, as_json: bool) -> NoReturn:
    """A machine where nothing was backed up yet: said plainly (or an empty document), exit OK."""
    if as_json:
        typer.echo(json.dumps(info_document([], now, stale_after=limit), indent=2, sort_keys=True))
    else:
        typer.echo(f"no backups recorded ({why}; the first backup run creates it)")
    raise typer.Exit(EXIT_OK)


def _in_fleet(cluster: str) -> bool:
    try:
        return cluster in load_fleet().clusters
    except ConfigError:
        return False


@catalog_app.command("migrate")
def migrate_cmd(
    catalog: CatalogURL = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Create or upgrade the catalog's tables (idempotent; safe to run from several places at once)."""
    with _open_catalog(catalog) as cat:
        report = cat.migrate()
        where = cat.url
    if as_json:
        doc = {
            "catalog": where,
            "from_version": report.from_version,
            "to_version": report.to_version,
            "applied": list(report.applied),
        }
        typer.echo(json.dumps(doc, indent=2))
    elif report.applied:
        typer.echo(f"{where}: schema version {report.from_version} → {report.to_version}")
        for line in report.applied:
            typer.echo(f"  applied {line}")
    else:
        typer.echo(f"{where}: schema is current (version {report.to_version})")


def _storages(storage: list[str] | None, cluster: str | None, endpoint: str | None) -> list[tuple[str, str | None]]:
    """(uri, endpoint) pairs to walk: ``--storage``, else the fleet config's storage of the clusters."""
    if storage:
        return [(uri, endpoint) for uri in dict.fromkeys(storage)]
    try:
        fleet = load_fleet()
    except ConfigError as exc:
        raise _fail(f"--storage not given and the fleet config cannot be read: {exc}") from None
    try:
        chosen = [fleet.get(cluster)] if cluster else fleet.sources()
    except UnknownClusterError as exc:
        raise _fail(f"{exc}; or name the storage with --storage") from None
    return list(dict.fromkeys((c.storage.uri, endpoint or c.storage.endpoint) for c in chosen))


def checked_endpoint(option: str | None) -> str | None:
    """The S3 endpoint: ``--s3-endpoint`` (``option``), else ``$TIDBOPS_S3_ENDPOINT``, else None; exit 2 with
    one line when it is not a usable endpoint."""
    endpoint = option or os.environ.get("TIDBOPS_S3_ENDPOINT") or None
    if endpoint is not None:
        try:
            check_endpoint(endpoint)
        except StorageError as exc:
            typer.echo(f"error: {'--s3-endpoint' if option else '$TIDBOPS_S3_ENDPOINT'}: {exc}", err=True)
            raise typer.Exit(2) from None
    return endpoint


def open_storage(uri: str, endpoint: str | None, region: str | None = None) -> Storage:
    """The storage at ``uri``; S3 credentials from boto3's standard chain (``AWS_ACCESS_KEY_ID``/
    ``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws/config``, web identity,
    the instance role): the CLI has no Airflow connection. The region from ``region``, else
    ``$AWS_DEFAULT_REGION`` (or the profile's)."""
    return storage_from_uri(uri, endpoint=endpoint, region=region)


def _print_report(report: RebuildReport) -> None:
    typer.echo(report.summary())
    for err in report.errors:
        typer.echo(f"error: {err}", err=True)
    for backup_id in report.verify_failed:
        typer.echo(f"error: {backup_id} failed verification against its manifest", err=True)


@catalog_app.command("rebuild")
def rebuild(
    cluster: ClusterName = None,
    catalog: CatalogURL = None,
    storage: Annotated[
        list[str] | None,
        typer.Option(
            "--storage",
            help="Storage root (s3://bucket/prefix or local:///path), repeatable; default: the fleet config's",
            show_default=False,
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option("--s3-endpoint", help="S3 endpoint URL; default: $TIDBOPS_S3_ENDPOINT", show_default=False),
    ] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check each backup against its manifest too")] = False,
    check_hashes: Annotated[bool, typer.Option("--sha256", help="With --verify: also compare SHA-256")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Rebuild the catalog from the manifests in storage (<root>/<cluster>/{full,incr}/<id>/)."""
    endpoint = checked_endpoint(s3_endpoint)
    targets = _storages(storage, cluster, endpoint)
    reports: list[RebuildReport] = []
    doing = "cataloging and verifying backups" if verify else "cataloging backups"
    with _open_catalog(catalog) as cat, progress(None, doing) as advance:
        cat.migrate()
        for uri, ep in targets:
            try:
                root = open_storage(uri, ep)
                reports.append(
                    rebuild_catalog(
                        cat,
                        root,
                        cluster,
                        verify=verify,
                        check_hashes=check_hashes,
                        on_backup=lambda _where: advance(),
                    )
                )
            except TiDBOpsError as exc:
                if isinstance(exc, CatalogError):
                    raise
                reports.append(RebuildReport(storage_uri=redact(uri), errors=(str(exc),)))
    if as_json:
        typer.echo(json.dumps([asdict(r) | {"ok": r.ok} for r in reports], indent=2, sort_keys=True))
    else:
        for report in reports:
            _print_report(report)
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)
