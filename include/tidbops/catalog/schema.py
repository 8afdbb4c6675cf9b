"""The catalog's tables (SQLAlchemy Core) as the latest migration leaves them, and the engine factory.

Portable across SQLite and MySQL-compatible servers (TiDB, MySQL, MariaDB):

- TSOs are ``BIGINT`` (signed: a TSO stays below 2^63 until the year 3000 and beyond).
- Times are ``DATETIME`` holding naive UTC (microseconds on MySQL: ``DATETIME(6)``); ``UTCDateTime``
  refuses naive datetimes on the way in and returns aware UTC on the way out.
- JSON is stored as ``TEXT`` (``JSONText``), with sorted keys.
- Strings have lengths (MySQL needs them); utf8mb4 index keys stay under InnoDB's 3072 bytes.

The tables here describe the *current* schema, for queries. Migrations (``migrations.py``) create and
change the real tables; a test checks that migrating a fresh database yields exactly these tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.types import TypeDecorator, TypeEngine

from tidbops.catalog.errors import CatalogError
from tidbops.catalog.records import CLUSTER_MAX, ID_MAX, NAME_MAX, SHORT_MAX, TASK_NAME_MAX, URI_MAX
from tidbops.redact import redact

SCHEMA_VERSION_TABLE = "tidbops_schema_version"
SCHEMA_LOCK_TABLE = "tidbops_schema_lock"
SQLITE_BEGIN = "tidbops_sqlite_begin"  # execution option: DEFERRED (default) or IMMEDIATE
_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone; the catalog stores UTC and needs aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class RedactedText(TypeDecorator[str]):
    """Free text (errors, messages, reasons, SQL samples) as a TEXT column, redacted on the way in: the
    catalog never holds a credential, whoever wrote the row (``tidbops.redact``)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else redact(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value


class JSONText(TypeDecorator[Any]):
    """A JSON document in a TEXT column (portable; MySQL's JSON type is not everywhere), redacted on the
    way in like ``RedactedText`` (the redaction keeps JSON valid)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return redact(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def id_column(name: str, **kwargs: Any) -> Column[str]:
    return Column(name, String(ID_MAX), **kwargs)


def event_id_type() -> TypeEngine[int]:
    """BIGINT auto-increment, except on SQLite where only INTEGER PRIMARY KEY is the rowid."""
    return BigInteger().with_variant(Integer(), "sqlite")


metadata = MetaData()

backups = Table(
    "backups",
    metadata,
    id_column("id", primary_key=True),
    Column("cluster", String(CLUSTER_MAX), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("verified", Boolean(), nullable=False, default=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("verify_detail", RedactedText(), nullable=True),
    Column("backup_ts", BigInteger(), nullable=True),
    Column("backup_time", UTCDateTime(), nullable=True),
    id_column("base_backup_id", nullable=True),
    Column("last_backup_ts", BigInteger(), nullable=True),
    Column("storage_uri", String(URI_MAX), nullable=False),
    Column("size_bytes", BigInteger(), nullable=True),
    Column("total_kv", BigInteger(), nullable=True),
    Column("br_duration_s", Double(), nullable=True),
    Column("br_version", String(SHORT_MAX), nullable=True),
    Column("encryption_method", String(32), nullable=True),
    Column("dag_id", String(NAME_MAX), nullable=True),
    Column("run_id", String(NAME_MAX), nullable=True),
    Column("try_number", Integer(), nullable=False, default=1),
    Column("triggered_by", String(SHORT_MAX), nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("error", RedactedText(), nullable=True),
    Column("manifest_uri", String(URI_MAX), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=True),
    Column("verified_tier", Integer(), nullable=True),  # 1 files, 2 BR's checksum, 3 a drill (#16)
    Column("scheduled_for", UTCDateTime(), nullable=True),  # the run's schedule slot (#13); None: not scheduled
    Column("key_id", String(32), nullable=True),  # owner-key (#17): the public key the data key is wrapped to
    Column("wrapped_key", Text(), nullable=True),  # owner-key: the data key, wrapped (never the clear key)
    Index("ix_backups_cluster_status_ts", "cluster", "status", "backup_ts"),
    Index("ix_backups_base", "base_backup_id"),
    Index("ix_backups_dag_run", "dag_id", "run_id"),
    Index("ix_backups_cluster_kind_started_status", "cluster", "kind", "started_at", "status"),
    Index("ix_backups_cluster_verified_ts", "cluster", "status", "verified", "backup_ts", "size_bytes"),
)

events = Table(
    "events",
    metadata,
    Column("id", event_id_type(), primary_key=True, autoincrement=True),
    Column("time", UTCDateTime(), nullable=False),
    Column("cluster", String(CLUSTER_MAX), nullable=True),
    Column("kind", String(64), nullable=False),
    id_column("backup_id", nullable=True),
    Column("message", RedactedText(), nullable=False),
    Column("details", JSONText(), nullable=True),
    Column("actor", String(NAME_MAX), nullable=True),  # who (#13): a user, "schedule" or "airflow"
    Column("status", String(16), nullable=True),  # the state the transition left (records.EVENT_STATUSES)
    Column("category", String(16), nullable=True),  # what it is about (records.EVENT_CATEGORIES)
    Index("ix_events_cluster_time", "cluster", "time"),
    Index("ix_events_kind_time", "kind", "time"),
    Index("ix_events_time", "time"),
    Index("ix_events_actor_time", "actor", "time"),
    Index("ix_events_category_time", "category", "time"),
    Index("ix_events_status_time", "status", "time"),
)

# Slow-query harvest (``tidbops.slowlog.store``): one row per (cluster, UTC day, digest, plan, db, user).
# ``stats`` is the exact, mergeable ``DigestStats`` JSON; the other metric columns are derived from it
# for SQL queries (times in seconds).
slow_query_daily = Table(
    "slow_query_daily",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("plan_digest", String(64), primary_key=True),
    Column("db", String(64), primary_key=True),
    Column("user", String(64), primary_key=True),
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
    Column("sample_sql", RedactedText(), nullable=False),
    Column("instances", JSONText(), nullable=False),
    Column("stats", JSONText(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_slow_query_daily_cluster_digest", "cluster", "digest", "day"),
)

slow_query_digests = Table(
    "slow_query_digests",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("first_seen", UTCDateTime(), nullable=True),
    Column("last_seen", UTCDateTime(), nullable=True),
    Column("sample_sql", RedactedText(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

slow_query_watermarks = Table(
    "slow_query_watermarks",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("source", String(255), primary_key=True),
    Column("watermark", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

slow_query_reports = Table(
    "slow_query_reports",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("report", JSONText(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Log backup (PITR) health (``tidbops.logbackup``): one row per check of a cluster's log backup — the RPO
# history, and what metrics read (latest row per cluster: status, lag, window) — and the alert
# de-duplication state, one row per (cluster, alert key), reused episode after episode.
log_backup_checks = Table(
    "log_backup_checks",
    metadata,
    Column("id", event_id_type(), primary_key=True, autoincrement=True),
    Column("cluster", String(CLUSTER_MAX), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=False),
    Column("task_name", String(TASK_NAME_MAX), nullable=True),
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
    Column("dag_id", String(NAME_MAX), nullable=True),
    Column("run_id", String(NAME_MAX), nullable=True),
    Index("ix_log_backup_checks_cluster_time", "cluster", "checked_at"),
)

log_backup_alerts = Table(
    "log_backup_alerts",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("alert_key", String(64), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("message", RedactedText(), nullable=False),
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

# Restore drills (``tidbops.drill``, issue #6): one row per drill run — restore point, backups used, RTO
# (restore and validation seconds), what was checked and what differed, the expectations' success ratio,
# where the Data Docs and the drill report are. A ``running`` row holds its scratch ``target`` (a lease).
drills = Table(
    "drills",
    metadata,
    id_column("id", primary_key=True),
    Column("cluster", String(CLUSTER_MAX), nullable=False),
    Column("target", String(CLUSTER_MAX), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("restore_ts", BigInteger(), nullable=True),
    Column("restore_time", UTCDateTime(), nullable=True),
    Column("point_reason", RedactedText(), nullable=True),
    Column("point_seed", BigInteger(), nullable=True),
    Column("backups_used", JSONText(), nullable=True),
    Column("restore_seconds", Double(), nullable=True),
    Column("validation_seconds", Double(), nullable=True),
    Column("tables_checked", Integer(), nullable=True),
    Column("rows_checked", BigInteger(), nullable=True),
    Column("mismatches", Integer(), nullable=True),
    Column("gx_evaluated", Integer(), nullable=True),
    Column("gx_success_ratio", Double(), nullable=True),
    Column("data_docs_uri", String(URI_MAX), nullable=True),
    Column("report_uri", String(URI_MAX), nullable=True),
    Column("scratch_dropped", Boolean(), nullable=True),
    Column("error", RedactedText(), nullable=True),
    Column("details", JSONText(), nullable=True),
    Column("dag_id", String(NAME_MAX), nullable=True),
    Column("run_id", String(NAME_MAX), nullable=True),
    Column("try_number", Integer(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("basis", JSONText(), nullable=True),  # what the verdict stood on (#16: drill freshness)
    Index("ix_drills_cluster_started", "cluster", "started_at"),
    Index("ix_drills_target_status", "target", "status"),
    Index("ix_drills_cluster_status_started", "cluster", "status", "started_at"),
)

# Holds (#16): a drill or a restore that uses a backup holds it; retention never expires a held backup.
# A hold past ``expires_at`` (its holder died) no longer counts.
backup_holds = Table(
    "backup_holds",
    metadata,
    Column("id", event_id_type(), primary_key=True, autoincrement=True),
    Column("cluster", String(CLUSTER_MAX), nullable=False),
    id_column("backup_id", nullable=False),
    Column("holder", String(NAME_MAX), nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_backup_holds_cluster", "cluster", "expires_at"),
    Index("ix_backup_holds_holder", "holder"),
)

restores = Table(
    "restores",
    metadata,
    id_column("id", primary_key=True),
    Column("source", String(CLUSTER_MAX), nullable=False),
    Column("target", String(CLUSTER_MAX), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(NAME_MAX), nullable=True),
    Column("reason", RedactedText(), nullable=False),
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
    Column("error", RedactedText(), nullable=True),
    Column("dag_id", String(NAME_MAX), nullable=True),
    Column("run_id", String(NAME_MAX), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_restores_source_requested", "source", "requested_at"),
    Index("ix_restores_target_requested", "target", "requested_at"),
)

# Bookkeeping, created by ``migrate`` before any migration runs (never changed by one).
# The fleet summary (#13, ``tidbops.catalog.summary``): per cluster, the ids of the rows its fleet row
# shows, versioned: writers bump ``version``; ``slots`` holds what was computed at ``computed_version``.
fleet_summary = Table(
    "fleet_summary",
    metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("version", BigInteger(), nullable=False),
    Column("computed_version", BigInteger(), nullable=True),
    Column("slots", JSONText(), nullable=True),
)

# Owner-key log backup (#17, ``tidbops.keys.logkeys``): one row per ``br log start`` of an owner-key cluster,
# the log task's data key wrapped to the owner's public key (never the clear key) and the TS range it encrypts
# (``start_ts``: the task's start TS as BR chose it, None until BR is known to have started with it;
# ``end_ts``: the next start's, None for the current key).
log_keys = Table(
    "log_keys",
    metadata,
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
)

schema_version = Table(
    SCHEMA_VERSION_TABLE,
    metadata,
    Column("version", Integer(), primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)

schema_lock = Table(
    SCHEMA_LOCK_TABLE,
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=True),
    Column("acquired_at", UTCDateTime(), nullable=True),
)


# --------------------------------------------------------------------------------------------- engine


def create_catalog_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``sqlite:///path`` (parent directories created) or ``mysql+pymysql://…``.

    SQLite gets real transactions (``BEGIN`` issued by us, ``BEGIN IMMEDIATE`` for writers, so two
    processes serialise instead of failing to upgrade a read lock) and a 30 s busy timeout. MySQL-family
    servers get ``pool_pre_ping`` and utf8mb4.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        database = u.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogError(
                    f"catalog file {path}: cannot create its directory {path.parent}: {exc.strerror or exc}; "
                    "use a writable path (sqlite:////absolute/path.db) or a database URL"
                ) from None
            u = u.set(database=str(path))
        connect_args = {"timeout": 30.0, "check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(u, connect_args=connect_args, **kwargs)
        install_sqlite_transactions(engine)
        return engine
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 3600)
    engine = create_engine(u, **kwargs)
    if engine.dialect.name in ("mysql", "mariadb"):
        _tolerate_old_isolation_variable(engine)
    return engine


_MYSQL_UNKNOWN_SYSTEM_VARIABLE = 1193


def _tolerate_old_isolation_variable(engine: Engine) -> None:
    """Servers that report a MySQL 8 version but only know ``@@tx_isolation``: fall back to it.

    SQLAlchemy reads ``@@transaction_isolation`` from servers that say they are MySQL >= 5.7.20. A
    MariaDB before 11.1 started with a TiDB-like ``--version`` (as the playground runs its clusters)
    says so but lacks the variable; without this, the first connection fails.
    """
    dialect = engine.dialect
    probe = dialect.get_default_isolation_level

    def get_default_isolation_level(dbapi_connection: Any) -> Any:
        try:
            return probe(dbapi_connection)
        except Exception as exc:
            if not exc.args or exc.args[0] != _MYSQL_UNKNOWN_SYSTEM_VARIABLE:
                raise
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT @@tx_isolation")
            value = cursor.fetchone()[0]
        finally:
            cursor.close()
        return (value.decode() if isinstance(value, bytes) else str(value)).upper().replace("-", " ")

    dialect.get_default_isolation_level = get_default_isolation_level  # type: ignore[method-assign,assignment]


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's own transaction handling is off: we BEGIN


def _sqlite_on_begin(conn: Connection) -> None:
    mode = str(conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")).upper()
    if mode not in _SQLITE_BEGIN_MODES:
        raise ValueError(f"{SQLITE_BEGIN}={mode!r}; use one of {', '.join(sorted(_SQLITE_BEGIN_MODES))}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def install_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's recipe for SQLite transactions that include DDL and can take the write lock up front."""
    if engine.dialect.name != "sqlite" or event.contains(engine, "begin", _sqlite_on_begin):
        return
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    engine.dispose()  # connections made before the listeners would keep the driver's behaviour


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for read-then-write work: ``BEGIN IMMEDIATE`` on SQLite; on MySQL, use FOR UPDATE."""
    install_sqlite_transactions(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with conn.begin():
            yield conn
