"""Versioned schema migrations: an ordered list of functions, applied once each, safe when processes race.

``tidbops_schema_version`` holds one row per applied migration (version, name, applied_at); the current
version is the highest. ``migrate(engine)`` applies the missing ones, in order, and is idempotent.

Racing processes (two Airflow tasks starting at once) are serialised:

- **SQLite**: everything happens in one ``BEGIN IMMEDIATE`` transaction (SQLite's DDL is transactional),
  so the second process waits, then finds nothing left to do.
- **MySQL, TiDB, MariaDB**: DDL commits implicitly there, which would release any lock taken in the same
  session. So one connection holds ``SELECT … FOR UPDATE`` on the row of ``tidbops_schema_lock`` while a
  second connection runs the migrations and records each one. Because a crash can land between a DDL
  statement and the version row, every migration is written to be re-runnable (``*_if_missing`` helpers).

A later issue adds a migration by appending ``Migration(n + 1, "what it does", function)`` to
``MIGRATIONS`` and updating the tables in ``schema.py``; a test checks that the two agree. Migration
functions define the table shapes *of their own version* (never import the current ones from
``schema``), so replaying history always builds the same database.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.schema import CreateColumn, CreateTable

from tidbops.catalog.errors import CatalogSchemaError
from tidbops.catalog.records import (
    CLUSTER_MAX,
    NAME_MAX,
    SYSTEM_ACTOR,
    URI_MAX,
    actor_from_run_id,
    actor_from_trigger,
    event_category,
    event_status,
    utcnow,
)
from tidbops.catalog.schema import (
    JSONText,
    UTCDateTime,
    event_id_type,
    id_column,
    schema_lock,
    schema_version,
    write_transaction,
)

_LOCK_NAME = "migrate"
_MYSQL_LOCK_WAIT_TIMEOUT = 1205


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True)
class MigrationReport:
    from_version: int
    to_version: int
    applied: tuple[str, ...]  # "<version>: <name>" for each migration this call applied

    @property
    def changed(self) -> bool:
        return bool(self.applied)


# ------------------------------------------------------------------------------------ re-runnable DDL


def create_table_if_missing(conn: Connection, table: Table) -> None:
    """Create ``table`` and its indexes; for an existing table, create only the missing indexes."""
    inspector = inspect(conn)
    if not inspector.has_table(table.name):
        table.create(conn)
        return
    existing = {ix["name"] for ix in inspector.get_indexes(table.name)}
    for ix in table.indexes:
        if ix.name not in existing:
            ix.create(conn)


def add_column_if_missing(conn: Connection, table_name: str, column: Column[object]) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless the column exists. ``column`` must be nullable or have a default."""
    names = {c["name"] for c in inspect(conn).get_columns(table_name)}
    if column.name in names:
        return
    if column.table is None:
        Table(table_name, MetaData(), column)  # CreateColumn compiles a column of some table
    ddl = CreateColumn(column).compile(dialect=conn.dialect)
    table = conn.dialect.identifier_preparer.quote(table_name)
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {ddl}")


def create_index_if_missing(conn: Connection, index: Index) -> None:
    table = index.table
    if table is None:
        raise ValueError(f"index {index.name!r} is not bound to a table")
    if index.name not in {ix["name"] for ix in inspect(conn).get_indexes(table.name)}:
        index.create(conn)


# ----------------------------------------------------------------------------------------- migrations


def _m001_backups_and_events(conn: Connection) -> None:
    md = MetaData()
    backups = Table(
        "backups",
        md,
        id_column("id", primary_key=True),
        Column("cluster", String(64), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("verified", Boolean(), nullable=False, default=False),
        Column("verified_at", UTCDateTime(), nullable=True),
        Column("verify_detail", Text(), nullable=True),
        Column("backup_ts", BigInteger(), nullable=True),
        Column("backup_time", UTCDateTime(), nullable=True),
        id_column("base_backup_id", nullable=True),
        Column("last_backup_ts", BigInteger(), nullable=True),
        Column("storage_uri", String(1024), nullable=False),
        Column("size_bytes", BigInteger(), nullable=True),
        Column("total_kv", BigInteger(), nullable=True),
        Column("br_duration_s", Double(), nullable=True),
        Column("br_version", String(255), nullable=True),
        Column("encryption_method", String(32), nullable=True),
        Column("dag_id", String(250), nullable=True),
        Column("run_id", String(250), nullable=True),
        Column("try_number", Integer(), nullable=False, default=1),
        Column("triggered_by", String(255), nullable=True),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("finished_at", UTCDateTime(), nullable=True),
        Column("error", Text(), nullable=True),
        Column("manifest_uri", String(1024), nullable=True),
        Column("updated_at", UTCDateTime(), nullable=True),
        Index("ix_backups_cluster_status_ts", "cluster", "status", "backup_ts"),
        Index("ix_backups_base", "base_backup_id"),
        Index("ix_backups_dag_run", "dag_id", "run_id"),
    )
    events = Table(
        "events",
        md,
        Column("id", event_id_type(), primary_key=True, autoincrement=True),
        Column("time", UTCDateTime(), nullable=False),
        Column("cluster", String(64), nullable=True),
        Column("kind", String(64), nullable=False),
        id_column("backup_id", nullable=True),
        Column("message", Text(), nullable=False),
        Column("details", JSONText(), nullable=True),
        Index("ix_events_cluster_time", "cluster", "time"),
        Index("ix_events_kind_time", "kind", "time"),
    )
    create_table_if_missing(conn, backups)
    create_table_if_missing(conn, events)


def _m002_slow_queries(conn: Connection) -> None:
    md = MetaData()
    key = (
        Column("cluster", String(64), primary_key=True),
        Column("day", String(10), primary_key=True),
        Column("digest", String(64), primary_key=True),
        Column("plan_digest", String(64), primary_key=True),
        Column("db", String(64), primary_key=True),
        Column("user", String(64), primary_key=True),
    )
    daily = Table(
        "slow_query_daily",
        md,
        *key,
        Column("count", BigInteger(), nullable=False),
        Column("total_query_time", Double(), nullable=False),
        Column("avg_query_time", Double(), nullable=False),
        Column("p95_query_time", Double(), nullable=False),
        Column("max_query_time", Double(), nullable=False),
        Column("process_time", Double(), nullable=False),
        Column("wait_time", Double(), nullable=False),
        Column("backoff_time", Double(), nullable=False),
        Column("process_keys", BigInteger(), nullable=False),
        Column("total_keys", BigInteger(), nullable=False),
        Column("result_rows", BigInteger(), nullable=False),
        Column("max_mem", BigInteger(), nullable=False),
        Column("errors", BigInteger(), nullable=False),
        Column("first_seen", UTCDateTime(), nullable=True),
        Column("last_seen", UTCDateTime(), nullable=True),
        Column("sample_sql", Text(), nullable=False),
        Column("instances", JSONText(), nullable=False),
        Column("stats", JSONText(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Index("ix_slow_query_daily_cluster_digest", "cluster", "digest", "day"),
    )
    digests = Table(
        "slow_query_digests",
        md,
        Column("cluster", String(64), primary_key=True),
        Column("digest", String(64), primary_key=True),
        Column("first_seen", UTCDateTime(), nullable=True),
        Column("last_seen", UTCDateTime(), nullable=True),
        Column("sample_sql", Text(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    watermarks = Table(
        "slow_query_watermarks",
        md,
        Column("cluster", String(64), primary_key=True),
        Column("source", String(255), primary_key=True),
        Column("watermark", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    reports = Table(
        "slow_query_reports",
        md,
        Column("cluster", String(64), primary_key=True),
        Column("day", String(10), primary_key=True),
        Column("report", JSONText(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
    )
    for table in (daily, digests, watermarks, reports):
        create_table_if_missing(conn, table)


def _m003_log_backup_health(conn: Connection) -> None:
    md = MetaData()
    checks = Table(
        "log_backup_checks",
        md,
        Column("id", event_id_type(), primary_key=True, autoincrement=True),
        Column("cluster", String(64), nullable=False),
        Column("checked_at", UTCDateTime(), nullable=False),
        Column("task_name", String(128), nullable=True),
        Column("status", String(16), nullable=False),
        Column("status_source", String(16), nullable=True),
        Column("checkpoint_ts", BigInteger(), nullable=True),
        Column("checkpoint_time", UTCDateTime(), nullable=True),
        Column("lag_seconds", Double(), nullable=True),
        Column("log_min_ts", BigInteger(), nullable=True),
        Column("log_max_ts", BigInteger(), nullable=True),
        Column("log_range_source", String(16), nullable=True),
        Column("window_start_ts", BigInteger(), nullable=True),
        Column("window_start_time", UTCDateTime(), nullable=True),
        Column("window_end_ts", BigInteger(), nullable=True),
        Column("window_end_time", UTCDateTime(), nullable=True),
        id_column("window_base_backup_id", nullable=True),
        Column("gc_safe_point", UTCDateTime(), nullable=True),
        Column("gc_hold_seconds", Double(), nullable=True),
        Column("healthy", Boolean(), nullable=False),
        Column("findings", JSONText(), nullable=True),
        Column("dag_id", String(250), nullable=True),
        Column("run_id", String(250), nullable=True),
        Index("ix_log_backup_checks_cluster_time", "cluster", "checked_at"),
    )
    alerts = Table(
        "log_backup_alerts",
        md,
        Column("cluster", String(64), primary_key=True),
        Column("alert_key", String(64), primary_key=True),
        Column("severity", String(16), nullable=False),
        Column("message", Text(), nullable=False),
        Column("details", JSONText(), nullable=True),
        Column("first_seen", UTCDateTime(), nullable=False),
        Column("last_seen", UTCDateTime(), nullable=False),
        Column("occurrences", Integer(), nullable=False),
        Column("episodes", Integer(), nullable=False),
        Column("notified_at", UTCDateTime(), nullable=True),
        Column("notify_count", Integer(), nullable=False),
        Column("resolved_at", UTCDateTime(), nullable=True),
        Column("recovery_notified_at", UTCDateTime(), nullable=True),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    create_table_if_missing(conn, checks)
    create_table_if_missing(conn, alerts)


def _m004_drills(conn: Connection) -> None:
    """Restore drills (issue #6): one row per drill run; a running row holds its scratch target."""
    md = MetaData()
    drills = Table(
        "drills",
        md,
        id_column("id", primary_key=True),
        Column("cluster", String(64), nullable=False),
        Column("target", String(64), nullable=False),
        Column("mode", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("restore_ts", BigInteger(), nullable=True),
        Column("restore_time", UTCDateTime(), nullable=True),
        Column("point_reason", Text(), nullable=True),
        Column("point_seed", BigInteger(), nullable=True),
        Column("backups_used", JSONText(), nullable=True),
        Column("restore_seconds", Double(), nullable=True),
        Column("validation_seconds", Double(), nullable=True),
        Column("tables_checked", Integer(), nullable=True),
        Column("rows_checked", BigInteger(), nullable=True),
        Column("mismatches", Integer(), nullable=True),
        Column("gx_evaluated", Integer(), nullable=True),
        Column("gx_success_ratio", Double(), nullable=True),
        Column("data_docs_uri", String(1024), nullable=True),
        Column("report_uri", String(1024), nullable=True),
        Column("scratch_dropped", Boolean(), nullable=True),
        Column("error", Text(), nullable=True),
        Column("details", JSONText(), nullable=True),
        Column("dag_id", String(250), nullable=True),
        Column("run_id", String(250), nullable=True),
        Column("try_number", Integer(), nullable=False),
        Column("finished_at", UTCDateTime(), nullable=True),
        Column("updated_at", UTCDateTime(), nullable=False),
        Index("ix_drills_cluster_started", "cluster", "started_at"),
        Index("ix_drills_target_status", "target", "status"),
    )
    create_table_if_missing(conn, drills)


def _m005_restores(conn: Connection) -> None:
    """On-demand restores (issue #7): one row per request (refused, dry run or real): the audit."""
    md = MetaData()
    restores = Table(
        "restores",
        md,
        id_column("id", primary_key=True),
        Column("source", String(64), nullable=False),
        Column("target", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("requested_by", String(250), nullable=True),
        Column("reason", Text(), nullable=False),
        Column("requested_at", UTCDateTime(), nullable=False),
        Column("restore_point", String(255), nullable=False),
        Column("restore_ts", BigInteger(), nullable=True),
        Column("restore_time", UTCDateTime(), nullable=True),
        Column("mode", String(16), nullable=True),
        Column("tables", JSONText(), nullable=True),
        Column("dry_run", Boolean(), nullable=False),
        Column("validate_after", Boolean(), nullable=False),
        Column("backups_used", JSONText(), nullable=True),
        Column("request", JSONText(), nullable=True),
        Column("plan", JSONText(), nullable=True),
        Column("restore_seconds", Double(), nullable=True),
        Column("validation_seconds", Double(), nullable=True),
        Column("validation_ok", Boolean(), nullable=True),
        Column("rows_checked", BigInteger(), nullable=True),
        Column("error", Text(), nullable=True),
        Column("dag_id", String(250), nullable=True),
        Column("run_id", String(250), nullable=True),
        Column("finished_at", UTCDateTime(), nullable=True),
        Column("updated_at", UTCDateTime(), nullable=False),
        Index("ix_restores_source_requested", "source", "requested_at"),
        Index("ix_restores_target_requested", "target", "requested_at"),
    )
    create_table_if_missing(conn, restores)


def _m006_retention_verification(conn: Connection) -> None:
    """Retention and verification (issue #16): the tier a backup was verified at, what a drill's verdict
    stood on (versions, encryption, storage: a change makes the drill stale), and holds that keep a
    backup from expiring while a drill or a restore uses it."""
    add_column_if_missing(conn, "backups", Column("verified_tier", Integer(), nullable=True))
    add_column_if_missing(conn, "drills", Column("basis", JSONText(), nullable=True))
    md = MetaData()
    holds = Table(
        "backup_holds",
        md,
        Column("id", event_id_type(), primary_key=True, autoincrement=True),
        Column("cluster", String(64), nullable=False),
        id_column("backup_id", nullable=False),
        Column("holder", String(250), nullable=False),
        Column("taken_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
        Index("ix_backup_holds_cluster", "cluster", "expires_at"),
        Index("ix_backup_holds_holder", "holder"),
    )
    create_table_if_missing(conn, holds)


def _m007_audit(conn: Connection) -> None:
    """The audit and the fleet view (#13): who did what (``events.actor``), the state it left
    (``events.status``) and what it is about (``events.category``); the schedule slot of a backup
    (``backups.scheduled_for``: ``started_at`` is when it really ran); the indexes the fleet page and
    the audit read through at a million rows. Existing events get what can be known of them."""
    add_column_if_missing(conn, "backups", Column("scheduled_for", UTCDateTime(), nullable=True))
    add_column_if_missing(conn, "events", Column("actor", String(250), nullable=True))
    add_column_if_missing(conn, "events", Column("status", String(16), nullable=True))
    add_column_if_missing(conn, "events", Column("category", String(16), nullable=True))
    md = MetaData()
    backups = Table(
        "backups",
        md,
        id_column("id", primary_key=True),
        Column("cluster", String(64)),
        Column("kind", String(16)),
        Column("status", String(16)),
        Column("verified", Boolean()),
        Column("backup_ts", BigInteger()),
        Column("size_bytes", BigInteger()),
        Column("started_at", UTCDateTime()),
        Column("triggered_by", String(255)),
    )
    events = Table(
        "events",
        md,
        Column("id", event_id_type(), primary_key=True),
        Column("time", UTCDateTime()),
        Column("cluster", String(64)),
        Column("kind", String(64)),
        id_column("backup_id"),
        Column("details", JSONText()),
        Column("actor", String(250)),
        Column("status", String(16)),
        Column("category", String(16)),
    )
    drills = Table(
        "drills",
        md,
        id_column("id", primary_key=True),
        Column("cluster", String(64)),
        Column("status", String(16)),
        Column("started_at", UTCDateTime()),
        Column("run_id", String(250)),
    )
    restores = Table("restores", md, id_column("id", primary_key=True), Column("requested_by", String(250)))
    for ix in (
        Index(
            "ix_backups_cluster_kind_started_status",
            backups.c.cluster,
            backups.c.kind,
            backups.c.started_at,
            backups.c.status,
        ),
        Index(
            "ix_backups_cluster_verified_ts",
            backups.c.cluster,
            backups.c.status,
            backups.c.verified,
            backups.c.backup_ts,
            backups.c.size_bytes,  # covers the storage sum of the fleet view
        ),
        Index("ix_events_time", events.c.time),
        Index("ix_events_actor_time", events.c.actor, events.c.time),
        Index("ix_events_category_time", events.c.category, events.c.time),
        Index("ix_events_status_time", events.c.status, events.c.time),
        Index("ix_drills_cluster_status_started", drills.c.cluster, drills.c.status, drills.c.started_at),
    ):
        create_index_if_missing(conn, ix)
    _backfill_audit(conn, backups, events, drills, restores)


def _backfill_audit(conn: Connection, backups: Table, events: Table, drills: Table, restores: Table) -> None:
    """Status and category from each event's kind; the actor from the backup's ``triggered_by``, the
    restore's ``requested_by`` or the drill's run (scheduled or not). Only rows not filled yet."""
    kinds = [k for (k,) in conn.execute(select(events.c.kind).where(events.c.status.is_(None)).distinct())]
    for kind in kinds:
        conn.execute(
            update(events)
            .where(events.c.kind == kind, events.c.status.is_(None))
            .values(status=event_status(kind), category=event_category(kind))
        )
    triggers = [t for (t,) in conn.execute(select(backups.c.triggered_by).distinct())]
    for trigger in triggers:
        ids = select(backups.c.id).where(
            backups.c.triggered_by.is_(None) if trigger is None else backups.c.triggered_by == trigger
        )
        conn.execute(
            update(events)
            .where(events.c.actor.is_(None), events.c.backup_id.in_(ids))
            .values(actor=actor_from_trigger(trigger))
        )
    requested = {rid: who for rid, who in conn.execute(select(restores.c.id, restores.c.requested_by))}
    runs = {did: run for did, run in conn.execute(select(drills.c.id, drills.c.run_id))}
    pending = conn.execute(
        select(events.c.id, events.c.kind, events.c.details).where(
            events.c.actor.is_(None), events.c.kind.like("restore.%") | events.c.kind.like("drill.%")
        )
    ).all()
    for event_id, kind, details in pending:
        details = details if isinstance(details, dict) else {}
        if kind.startswith("restore.") and details.get("restore_id") in requested:
            actor = requested[details["restore_id"]] or SYSTEM_ACTOR
        elif kind.startswith("drill.") and details.get("drill_id") in runs:
            actor = actor_from_run_id(runs[details["drill_id"]])
        else:
            continue
        conn.execute(update(events).where(events.c.id == event_id).values(actor=actor))


def _m008_fleet_summary(conn: Connection) -> None:
    """The fleet summary (``tidbops.catalog.summary``): one versioned row per cluster with the ids its
    fleet row shows, so the fleet page and ``/metrics`` read 500 clusters without 6,000 index probes.
    Empty at first: readers compute each cluster once and keep it."""
    md = MetaData()
    create_table_if_missing(
        conn,
        Table(
            "fleet_summary",
            md,
            Column("cluster", String(64), primary_key=True),
            Column("version", BigInteger(), nullable=False),
            Column("computed_version", BigInteger(), nullable=True),
            Column("slots", JSONText(), nullable=True),
        ),
    )


def _m009_owner_keys(conn: Connection) -> None:
    """Owner-held keys (#17): an owner-key backup's data key, wrapped to the owner's public key
    (``wrapped_key``, base64 of an age file), and that key's id (``key_id``). Never the clear key."""
    add_column_if_missing(conn, "backups", Column("key_id", String(32), nullable=True))
    add_column_if_missing(conn, "backups", Column("wrapped_key", Text(), nullable=True))


def _m010_log_keys(conn: Connection) -> None:
    """Owner-key log backup (#17): the wrapped data key of each ``br log start`` and the TS range it
    encrypts (``tidbops.keys.logkeys``). Additive: a new table."""
    md = MetaData()
    create_table_if_missing(
        conn,
        Table(
            "log_keys",
            md,
            id_column("id", primary_key=True),
            Column("cluster", String(CLUSTER_MAX), nullable=False),
            Column("task_name", String(NAME_MAX), nullable=False),
            Column("storage_uri", String(URI_MAX), nullable=False),
            Column("method", String(32), nullable=False),
            Column("key_id", String(32), nullable=False),
            Column("wrapped_key", Text(), nullable=False),
            Column("created_at", UTCDateTime(), nullable=False),
            Column("start_ts", BigInteger(), nullable=True),
            Column("end_ts", BigInteger(), nullable=True),
            Column("updated_at", UTCDateTime(), nullable=True),
            Index("ix_log_keys_cluster_start", "cluster", "start_ts"),
        ),
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "backups and events tables", _m001_backups_and_events),
    Migration(2, "slow query daily aggregates, digests, watermarks and reports", _m002_slow_queries),
    Migration(
        3, "log backup checks (RPO history, PITR window) and alert de-duplication state", _m003_log_backup_health
    ),
    Migration(4, "restore drills", _m004_drills),
    Migration(5, "on-demand restores (audit)", _m005_restores),
    Migration(6, "verification tiers, drill basis, backup holds (retention)", _m006_retention_verification),
    Migration(7, "audit actor, status and category of events; backup schedule slot; fleet indexes", _m007_audit),
    Migration(8, "fleet summary (versioned per-cluster ids of the fleet view)", _m008_fleet_summary),
    Migration(9, "owner-held keys: wrapped data key and key id of each backup", _m009_owner_keys),
    Migration(10, "owner-key log backup: the wrapped data key of each log task start", _m010_log_keys),
)
LATEST_VERSION = MIGRATIONS[-1].version


# ------------------------------------------------------------------------------------------- running


def current_version(conn: Connection) -> int:
    """The highest applied migration; 0 for a database never migrated."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one())


def _check_sequence(migrations: Sequence[Migration]) -> int:
    for expected, m in enumerate(migrations, start=1):
        if m.version != expected:
            raise ValueError(f"migration {m.name!r} has version {m.version}; versions must run 1, 2, 3, … in order")
    return len(migrations)


def _refuse_newer(found: int, latest: int) -> None:
    if found > latest:
        raise CatalogSchemaError(
            f"the catalog's schema is at version {found}, newer than this code knows ({latest}); "
            "upgrade tidbops before using this catalog"
        )


def _bookkeeping(conn: Connection) -> None:
    for table in (schema_version, schema_lock):
        conn.execute(CreateTable(table, if_not_exists=True))


def _apply_pending(
    conn: Connection, migrations: Sequence[Migration], latest: int, *, commit_each: bool
) -> tuple[int, tuple[str, ...]]:
    found = current_version(conn)
    _refuse_newer(found, latest)
    applied: list[str] = []
    for m in migrations[found:]:
        m.apply(conn)
        conn.execute(insert(schema_version).values(version=m.version, name=m.name, applied_at=utcnow()))
        if commit_each:
            conn.commit()
        applied.append(f"{m.version}: {m.name}")
    return found, tuple(applied)


def migrate(
    engine: Engine, migrations: Sequence[Migration] = MIGRATIONS, *, lock_timeout: float = 600.0
) -> MigrationReport:
    """Bring the catalog's schema to the last of ``migrations``. Idempotent; safe when processes race."""
    latest = _check_sequence(migrations)
    with engine.connect() as conn:
        found = current_version(conn)
    _refuse_newer(found, latest)
    if found == latest:
        return MigrationReport(found, found, ())
    if engine.dialect.name == "sqlite":
        with write_transaction(engine) as conn:
            _bookkeeping(conn)
            found, applied = _apply_pending(conn, migrations, latest, commit_each=False)
        return MigrationReport(found, latest, applied)
    return _migrate_with_lock_row(engine, migrations, latest, lock_timeout)


def _migrate_with_lock_row(
    engine: Engine, migrations: Sequence[Migration], latest: int, lock_timeout: float
) -> MigrationReport:
    with engine.connect() as boot:
        _bookkeeping(boot)
        boot.commit()
        try:
            boot.execute(insert(schema_lock).values(name=_LOCK_NAME))
            boot.commit()
        except IntegrityError:
            boot.rollback()  # another process made the row first
    deadline = time.monotonic() + lock_timeout
    holder = f"{socket.gethostname()}:{os.getpid()}"[:255]
    with engine.connect() as lock_conn:
        while True:
            try:
                lock_conn.execute(select(schema_lock).where(schema_lock.c.name == _LOCK_NAME).with_for_update())
                break
            except OperationalError as exc:
                lock_conn.rollback()
                code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
                if code != _MYSQL_LOCK_WAIT_TIMEOUT or time.monotonic() > deadline:
                    raise
        lock_conn.execute(
            update(schema_lock).where(schema_lock.c.name == _LOCK_NAME).values(holder=holder, acquired_at=utcnow())
        )
        with engine.connect() as work:
            found, applied = _apply_pending(work, migrations, latest, commit_each=True)
            work.commit()
        lock_conn.commit()  # releases the lock
    return MigrationReport(found, latest, applied)
