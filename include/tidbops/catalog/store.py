"""The catalog store: backups, audit events, log-backup health and restore drills in SQLite or any
MySQL-compatible database.

Every state change of a backup is one transaction that also writes an ``events`` row, so the audit
trail and the catalog never disagree. Read-then-write work locks first (``BEGIN IMMEDIATE`` on SQLite,
``SELECT … FOR UPDATE`` elsewhere) and is retried on a MySQL deadlock or a lost insert race.

Status moves: ``running → succeeded | failed``; a retry of the same id takes ``running | failed`` back
to ``running`` (the try number changes, no second row); ``succeeded → expired → deleted`` (or straight
to ``deleted``). A succeeded backup is never restarted or failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, delete, desc, func, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from tidbops import tso
from tidbops.catalog import summary
from tidbops.catalog.errors import (
    BackupNotFoundError,
    CatalogConflictError,
    CatalogSchemaError,
    CatalogStateError,
)
from tidbops.catalog.manifest import MANIFEST_ROW_FIELDS, Manifest, UpsertOutcome
from tidbops.catalog.migrations import LATEST_VERSION, MigrationReport, current_version, migrate
from tidbops.catalog.records import (
    ACTOR_MAX,
    EVENT_STATUSES,
    SYSTEM_ACTOR,
    AlertState,
    BackupKind,
    BackupRecord,
    BackupStatus,
    DrillRecord,
    DrillStatus,
    LogBackupCheck,
    NewBackup,
    RestoreRecord,
    actor_from_run_id,
    actor_from_trigger,
    chain_to,
    check_storage_uri,
    check_wrapped_key,
    event_category,
    event_message,
    event_status,
    index,
    summarise_error,
    utc,
    utcnow,
)
from tidbops.catalog.schema import (
    backup_holds,
    backups,
    create_catalog_engine,
    drills,
    events,
    log_backup_alerts,
    log_backup_checks,
    restores,
    write_transaction,
)
from tidbops.redact import redact_url
from tidbops.timefmt import iso, show

T = TypeVar("T")
_MYSQL_RETRYABLE = frozenset({1213, 1205})  # deadlock, lock wait timeout
_RECORD_FIELDS = tuple(f.name for f in fields(BackupRecord))


CATALOG_URL_ENV = "TIDBOPS_CATALOG_URL"


def default_catalog_url(environ: Mapping[str, str] | None = None) -> str:
    """Where a tool run by hand (the CLI) finds the catalog when told nothing: ``$TIDBOPS_CATALOG_URL``, else
    ``~/.tidbops/catalog.db``. The store itself takes its URL from its caller (``Catalog.from_url``); Airflow's
    glue decides its own default (``tidbops_airflow.hooks.catalog``)."""
    env = os.environ if environ is None else environ
    url = env.get(CATALOG_URL_ENV, "").strip()
    return url or f"sqlite:///{Path('~/.tidbops/catalog.db').expanduser()}"


@dataclass(frozen=True)
class Event:
    id: int
    time: datetime
    cluster: str | None
    kind: str
    backup_id: str | None
    message: str
    details: dict[str, Any] | None
    actor: str | None = None  # a user, "schedule" or "airflow" (None: an event older than #13)
    status: str | None = None
    category: str | None = None


_EVENT_FIELDS = tuple(f.name for f in fields(Event))


def _record(row: RowMapping) -> BackupRecord:
    return BackupRecord(**{name: row[name] for name in _RECORD_FIELDS})


_CHECK_FIELDS = tuple(f.name for f in fields(LogBackupCheck))
_ALERT_FIELDS = tuple(f.name for f in fields(AlertState))


def _check(row: RowMapping) -> LogBackupCheck:
    values = {name: row[name] for name in _CHECK_FIELDS}
    values["findings"] = tuple(row["findings"] or ())
    return LogBackupCheck(**values)


def _check_values(check: LogBackupCheck) -> dict[str, Any]:
    values = {name: getattr(check, name) for name in _CHECK_FIELDS if name != "id"}
    values["findings"] = [dict(f) for f in check.findings]
    values["checkpoint_time"] = check.checkpoint_time
    values["window_start_time"] = check.window_start_time
    values["window_end_time"] = check.window_end_time
    return values


def _alert(row: RowMapping) -> AlertState:
    values = {name: row[name] for name in _ALERT_FIELDS if name != "key"}
    return AlertState(key=row["alert_key"], **values)


def _alert_values(state: AlertState) -> dict[str, Any]:
    values = {name: getattr(state, name) for name in _ALERT_FIELDS if name not in ("key", "cluster", "updated_at")}
    values["details"] = _jsonable(dict(state.details)) if state.details is not None else None
    return values


def _jsonable(value: Any) -> Any:
    """Event details as plain JSON: datetimes as ISO 8601 UTC, enums as their values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def _mysql_code(exc: OperationalError) -> int | None:
    args = getattr(exc.orig, "args", None)
    return args[0] if args and isinstance(args[0], int) else None


class Catalog:
    """The backup catalog over a SQLAlchemy engine. Build it with ``Catalog.from_url``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._schema_checked = False

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], datetime] = utcnow) -> Catalog:
        """``sqlite:///path`` (directories created) or ``mysql+pymysql://user:…@host:port/db``."""
        return cls(create_catalog_engine(url), clock=clock)

    def __repr__(self) -> str:
        return f"Catalog({self.url})"

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return redact_url(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------------------------------- schema

    def migrate(self) -> MigrationReport:
        report = migrate(self.engine)
        self._schema_checked = True
        return report

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return current_version(conn)

    def _check_schema(self) -> None:
        if self._schema_checked:
            return
        found = self.schema_version()
        if found < LATEST_VERSION:
            what = "has no schema" if found == 0 else f"has schema version {found}, older than {LATEST_VERSION}"
            raise CatalogSchemaError(f"the catalog at {self.url} {what}; run `tidbops catalog migrate`")
        if found > LATEST_VERSION:
            raise CatalogSchemaError(
                f"the catalog at {self.url} has schema version {found}, newer than this code knows "
                f"({LATEST_VERSION}); upgrade tidbops"
            )
        self._schema_checked = True

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (``tidbops.fleetview.queries``), once the schema is known to be current."""
        self._check_schema()
        with self.engine.connect() as conn:
            yield conn

    _reading = reading

    def fleet_facts(
        self, clusters: Sequence[str], *, known: Mapping[str, int] | None = None
    ) -> tuple[dict[str, summary.Facts], dict[str, int]]:
        """Per cluster, the rows its fleet row shows (``tidbops.catalog.summary``): the kept facts still
        current, the others computed again (and kept, when this catalog may be written).

        ``known``: the version of the facts the caller already holds, by cluster; those still current
        are not read again. Returns the facts read or computed, and the version of every cluster's facts
        that are kept and current (a cluster computed but not kept has none: hold nothing for it).
        """
        names = list(dict.fromkeys(clusters))
        if not names:
            return {}, {}
        known = known or {}
        with self._reading() as conn:
            versions = summary.current_versions(conn, names)
            wanted = [n for n in names if n not in versions or known.get(n) != versions[n]]
            current, _all = summary.read(conn, wanted) if wanted else ({}, {})
        versions = {n: v for n, v in versions.items() if n in current or known.get(n) == v}
        stale = [n for n in wanted if n not in current]
        if not stale:
            return current, versions

        def work(conn: Connection) -> tuple[dict[str, summary.Facts], dict[str, int]]:
            _current, seen = summary.read(conn, stale)  # the versions and the rows from one snapshot
            computed = summary.compute(conn, stale)
            summary.store(conn, computed, seen)
            return computed, summary.current_versions(conn, stale)  # those store kept, in this transaction

        try:
            computed, kept = self._write(work)
        except (OperationalError, ProgrammingError, IntegrityError):  # read-only user, busy: compute, keep nothing
            with self._reading() as conn:
                computed, kept = summary.compute(conn, stale), {}
        return {**current, **computed}, {**versions, **kept}

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction; retry on a deadlock, lock timeout or lost insert race."""
        self._check_schema()
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                with write_transaction(self.engine) as conn:
                    return work(conn)
            except IntegrityError:
                if attempt == attempts:
                    raise
            except OperationalError as exc:
                if _mysql_code(exc) not in _MYSQL_RETRYABLE or attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _locked(self, conn: Connection, backup_id: str) -> BackupRecord:
        row = conn.execute(select(backups).where(backups.c.id == backup_id).with_for_update()).mappings().first()
        if row is None:
            raise BackupNotFoundError(backup_id)
        return _record(row)

    def _event(
        self,
        conn: Connection,
        kind: str,
        message: str,
        *,
        cluster: str | None,
        backup_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
        actor: str | None = None,
        status: str | None = None,
    ) -> None:
        """One audit row: ``actor`` defaults to the platform (``airflow``), ``status`` to the kind's."""
        conn.execute(
            events.insert().values(
                time=time or self._clock(),
                cluster=cluster,
                kind=kind,
                backup_id=backup_id,
                message=event_message(message),
                details=_jsonable(dict(details)) if details is not None else None,
                actor=(actor or SYSTEM_ACTOR)[:ACTOR_MAX],
                status=status or event_status(kind),
                category=event_category(kind),
            )
        )

    def _update(self, conn: Connection, backup_id: str, values: Mapping[str, Any]) -> BackupRecord:
        conn.execute(update(backups).where(backups.c.id == backup_id).values(**values, updated_at=self._clock()))
        record = self._locked(conn, backup_id)
        summary.touch(conn, [record.cluster])
        return record

    # -------------------------------------------------------------------------------------- lifecycle

    def start_backup(self, new: NewBackup) -> BackupRecord:
        """Record a backup as running. The same id again (a retry) updates the row, it never adds one."""

        def work(conn: Connection) -> BackupRecord:
            row = conn.execute(select(backups).where(backups.c.id == new.id).with_for_update()).mappings().first()
            values: dict[str, Any] = {
                "status": BackupStatus.RUNNING.value,
                "storage_uri": new.storage_uri,
                "started_at": new.started_at,
                "base_backup_id": new.base_backup_id,
                "last_backup_ts": new.last_backup_ts,
                "encryption_method": new.encryption_method,
                "br_version": new.br_version,
                "dag_id": new.dag_id,
                "run_id": new.run_id,
                "try_number": new.try_number,
                "triggered_by": new.triggered_by,
                "scheduled_for": new.scheduled_for,
                "key_id": new.key_id,
                "wrapped_key": new.wrapped_key,
                "finished_at": None,
                "error": None,
                "backup_ts": None,
                "backup_time": None,
            }
            details: dict[str, Any] = {"try_number": new.try_number, "dag_id": new.dag_id, "run_id": new.run_id}
            if new.scheduled_for is not None:
                details["scheduled_for"] = new.scheduled_for
            if new.key_id is not None:
                details["key_id"] = new.key_id  # which owner key opens it (#17); never a key
            actor = actor_from_trigger(new.triggered_by)
            if row is None:
                conn.execute(
                    backups.insert().values(
                        id=new.id,
                        cluster=new.cluster,
                        kind=new.kind.value,
                        verified=False,
                        updated_at=self._clock(),
                        **values,
                    )
                )
                summary.touch(conn, [new.cluster])
                self._event(
                    conn,
                    "backup.started",
                    f"{new.kind.value} backup {new.id} started",
                    cluster=new.cluster,
                    backup_id=new.id,
                    details=details,
                    actor=actor,
                )
                return self._locked(conn, new.id)
            old = _record(row)
            if old.cluster != new.cluster or old.kind is not new.kind:
                raise CatalogConflictError(
                    f"backup id {new.id!r} already names a {old.kind.value} backup of cluster {old.cluster!r}"
                )
            if old.status not in (BackupStatus.RUNNING, BackupStatus.FAILED):
                raise CatalogStateError(
                    f"backup {new.id} is {old.status.value}; only a running or failed backup can be started again"
                )
            record = self._update(conn, new.id, values)
            self._event(
                conn,
                "backup.restarted",
                f"{new.kind.value} backup {new.id} started again (try {new.try_number}; was {old.status.value})",
                cluster=new.cluster,
                backup_id=new.id,
                details={**details, "previous_status": old.status.value, "previous_try": old.try_number},
                actor=actor,
            )
            return record

        return self._write(work)

    def finish_backup(
        self,
        backup_id: str,
        *,
        backup_ts: int,
        backup_time: datetime | None = None,
        size_bytes: int | None = None,
        total_kv: int | None = None,
        br_duration_s: float | None = None,
        br_version: str | None = None,
        manifest_uri: str | None = None,
        finished_at: datetime | None = None,
    ) -> BackupRecord:
        """Mark a running backup succeeded with what BR reported. Again with the same backup_ts: no-op."""
        if backup_ts <= 0:
            raise ValueError(f"backup_ts must be a positive TSO, not {backup_ts}")
        values: dict[str, Any] = {
            "status": BackupStatus.SUCCEEDED.value,
            "backup_ts": backup_ts,
            "backup_time": utc(backup_time, "backup_time") if backup_time else tso.to_datetime(backup_ts),
            "finished_at": utc(finished_at, "finished_at") if finished_at else self._clock(),
            "error": None,
        }
        optional = {
            "size_bytes": size_bytes,
            "total_kv": total_kv,
            "br_duration_s": br_duration_s,
            "br_version": br_version,
            "manifest_uri": check_storage_uri(manifest_uri) if manifest_uri else None,
        }
        values.update({k: v for k, v in optional.items() if v is not None})

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.status is BackupStatus.SUCCEEDED and old.backup_ts == backup_ts:
                return old
            if old.status is not BackupStatus.RUNNING:
                raise CatalogStateError(f"backup {backup_id} is {old.status.value}; only a running backup can finish")
            if old.last_backup_ts is not None and backup_ts <= old.last_backup_ts:
                raise CatalogStateError(
                    f"backup {backup_id}: backup_ts {backup_ts} is not after its last_backup_ts {old.last_backup_ts}"
                )
            record = self._update(conn, backup_id, values)
            self._event(
                conn,
                "backup.succeeded",
                f"{old.kind.value} backup {backup_id} succeeded at ts {backup_ts}"
                + (f", {values['size_bytes']} bytes" if values.get("size_bytes") is not None else ""),
                cluster=old.cluster,
                backup_id=backup_id,
                details={k: v for k, v in values.items() if k not in ("status", "error")},
                actor=actor_from_trigger(old.triggered_by),
            )
            return record

        return self._write(work)

    def record_manifest(self, backup_id: str, manifest_uri: str, *, size_bytes: int | None = None) -> BackupRecord:
        """After ``write_manifest``: where the manifest is, and the size when BR did not report one."""
        uri = check_storage_uri(manifest_uri)

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.status is not BackupStatus.SUCCEEDED:
                raise CatalogStateError(
                    f"backup {backup_id} is {old.status.value}; only succeeded ones have a manifest"
                )
            values: dict[str, Any] = {"manifest_uri": uri}
            if old.size_bytes is None and size_bytes is not None:
                values["size_bytes"] = size_bytes
            if all(getattr(old, k) == v for k, v in values.items()):
                return old
            record = self._update(conn, backup_id, values)
            self._event(
                conn,
                "backup.manifest",
                f"manifest of {backup_id} written to {uri}",
                cluster=old.cluster,
                backup_id=backup_id,
                details=values,
                actor=actor_from_trigger(old.triggered_by),
            )
            return record

        return self._write(work)

    def fail_backup(self, backup_id: str, error: str, *, finished_at: datetime | None = None) -> BackupRecord:
        """Mark a running (or already failed) backup failed with a summary (secrets redacted, cut short)."""
        summary = summarise_error(error) or "failed (no error text)"

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.status not in (BackupStatus.RUNNING, BackupStatus.FAILED):
                raise CatalogStateError(f"backup {backup_id} is {old.status.value}; it cannot fail now")
            record = self._update(
                conn,
                backup_id,
                {
                    "status": BackupStatus.FAILED.value,
                    "error": summary,
                    "finished_at": utc(finished_at, "finished_at") if finished_at else self._clock(),
                },
            )
            self._event(
                conn,
                "backup.failed",
                f"{old.kind.value} backup {backup_id} failed (try {old.try_number}): {summary[:300]}",
                cluster=old.cluster,
                backup_id=backup_id,
                details={"error": summary[:500], "try_number": old.try_number},
                actor=actor_from_trigger(old.triggered_by),
            )
            return record

        return self._write(work)

    def mark_verified(
        self, backup_id: str, ok: bool, reason: str, *, tier: int = 1, actor: str | None = None
    ) -> BackupRecord:
        """Record a verification of a succeeded backup at ``tier`` (#16): passed (``ok``) or failed, and why.

        Tiers: 1 the manifest and every file it lists, read back with sizes (and sha256 where recorded);
        2 BR's own check of the data (``br debug checksum``); 3 a restore drill that used the backup.
        ``verified_tier`` keeps the highest tier passed while the backup keeps passing; any failure
        clears it (the backup is unverified until a check passes again). ``actor``: who had it checked
        (default ``airflow``).
        """
        if tier not in (1, 2, 3):
            raise ValueError(f"verification tier is 1, 2 or 3, not {tier!r}")
        detail = summarise_error(reason)

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.status is not BackupStatus.SUCCEEDED:
                raise CatalogStateError(
                    f"backup {backup_id} is {old.status.value}; only a succeeded backup can be verified"
                )
            kept = (old.verified_tier or 0) if old.verified else 0
            record = self._update(
                conn,
                backup_id,
                {
                    "verified": ok,
                    "verified_at": self._clock(),
                    "verify_detail": detail,
                    "verified_tier": max(kept, tier) if ok else None,
                },
            )
            self._event(
                conn,
                "backup.verified" if ok else "backup.verify_failed",
                f"backup {backup_id} {'passed' if ok else 'FAILED'} tier-{tier} verification: {detail[:200]}",
                cluster=old.cluster,
                backup_id=backup_id,
                details={"ok": ok, "tier": tier, "reason": detail[:500]},
                actor=actor,
            )
            return record

        return self._write(work)

    def set_status(
        self, backup_id: str, status: BackupStatus, reason: str, *, actor: str | None = None
    ) -> BackupRecord:
        """Retire a backup: ``succeeded → expired → deleted`` (or ``failed → expired``, ``→ deleted``)."""
        allowed: dict[BackupStatus, frozenset[BackupStatus]] = {
            BackupStatus.EXPIRED: frozenset({BackupStatus.SUCCEEDED, BackupStatus.FAILED, BackupStatus.EXPIRED}),
            BackupStatus.DELETED: frozenset(
                {BackupStatus.SUCCEEDED, BackupStatus.FAILED, BackupStatus.EXPIRED, BackupStatus.DELETED}
            ),
        }
        status = BackupStatus(status)
        if status not in allowed:
            raise ValueError(f"set_status moves backups to expired or deleted, not {status.value}")
        detail = summarise_error(reason)

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.status is status:
                return old
            if old.status not in allowed[status]:
                raise CatalogStateError(f"backup {backup_id} is {old.status.value}; it cannot become {status.value}")
            record = self._update(conn, backup_id, {"status": status.value})
            self._event(
                conn,
                f"backup.{status.value}",
                f"backup {backup_id} {status.value}: {detail[:200]}",
                cluster=old.cluster,
                backup_id=backup_id,
                details={"previous_status": old.status.value, "reason": detail[:500]},
                actor=actor,
            )
            return record

        return self._write(work)

    def rewrap_key(
        self, backup_id: str, *, key_id: str, wrapped_key: str, expect_key_id: str, actor: str | None = None
    ) -> BackupRecord:
        """Owner-held keys (#17): the backup's data key wrapped to another public key (``tidbops keys
        rewrap``). Only a row still wrapped to ``expect_key_id`` changes (a concurrent rewrap loses);
        audited as ``backup.key_rewrapped`` with both key ids. The data is untouched."""
        check_wrapped_key(key_id, wrapped_key)

        def work(conn: Connection) -> BackupRecord:
            old = self._locked(conn, backup_id)
            if old.key_id != expect_key_id:
                raise CatalogStateError(
                    f"backup {backup_id}: its data key is wrapped for key id {old.key_id or 'none'}, "
                    f"not {expect_key_id}; not rewrapped"
                )
            record = self._update(conn, backup_id, {"key_id": key_id, "wrapped_key": wrapped_key})
            self._event(
                conn,
                "backup.key_rewrapped",
                f"data key of backup {backup_id} rewrapped from key id {expect_key_id} to {key_id}",
                cluster=old.cluster,
                backup_id=backup_id,
                details={"from_key_id": expect_key_id, "to_key_id": key_id},
                actor=actor,
                status="succeeded",
            )
            return record

        return self._write(work)

    # ------------------------------------------------------------------------------------------ reads

    def get(self, backup_id: str) -> BackupRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(backups).where(backups.c.id == backup_id)).mappings().first()
        return None if row is None else _record(row)

    def list_backups(
        self,
        cluster: str | None = None,
        status: BackupStatus | str | Iterable[BackupStatus | str] | None = None,
        kinds: Iterable[BackupKind | str] | None = None,
    ) -> list[BackupRecord]:
        """Backups, oldest first by backup_ts (those without one last, by start time)."""
        query = select(backups)
        if cluster is not None:
            query = query.where(backups.c.cluster == cluster)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(backups.c.status.in_([BackupStatus(s).value for s in statuses]))
        if kinds is not None:
            query = query.where(backups.c.kind.in_([BackupKind(k).value for k in kinds]))
        query = query.order_by(backups.c.backup_ts.is_(None), backups.c.backup_ts, backups.c.started_at, backups.c.id)
        with self._reading() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def clusters(self) -> list[str]:
        with self._reading() as conn:
            return sorted(r[0] for r in conn.execute(select(backups.c.cluster).distinct()))

    def latest_verified_full(self, cluster: str) -> BackupRecord | None:
        query = (
            select(backups)
            .where(
                and_(
                    backups.c.cluster == cluster,
                    backups.c.kind == BackupKind.FULL.value,
                    backups.c.status == BackupStatus.SUCCEEDED.value,
                    backups.c.verified.is_(True),
                )
            )
            .order_by(desc(backups.c.backup_ts))
            .limit(1)
        )
        with self._reading() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _record(row)

    def chain(self, cluster: str, upto_id: str | None = None) -> list[BackupRecord]:
        """``[full, incr…, upto]``; without ``upto_id``, the chain of the newest succeeded backup ([] if none).

        Raises ``BrokenChainError`` when a link is missing, and ``BackupNotFoundError`` for an unknown
        ``upto_id`` or one of another cluster.
        """
        rows = self.list_backups(cluster)
        by_id = index(rows)
        if upto_id is not None:
            tip = by_id.get(upto_id)
            if tip is None:
                raise BackupNotFoundError(upto_id)
        else:
            done = [b for b in rows if b.succeeded and b.backup_ts is not None]
            if not done:
                return []
            tip = done[-1]
        return chain_to(by_id, tip)

    # ------------------------------------------------------------------------------------- manifests

    def upsert_from_manifest(
        self,
        manifest: Manifest,
        *,
        storage_uri: str | None = None,
        manifest_uri: str | None = None,
        actor: str | None = None,
    ) -> tuple[BackupRecord, UpsertOutcome]:
        """Make the catalog agree with a manifest found in storage (idempotent; used by rebuild).

        ``storage_uri``/``manifest_uri``: where the manifest was actually found (storage is the source
        of truth, even when a bucket was copied). A row that is running or failed becomes succeeded (the
        manifest is written only after success); expired and deleted rows keep their status; the
        verification state is kept unless the backup's point in time changed.
        """
        values: dict[str, Any] = {name: getattr(manifest, name) for name in MANIFEST_ROW_FIELDS}
        values["kind"] = BackupKind(values["kind"]).value
        if storage_uri is not None:
            values["storage_uri"] = check_storage_uri(storage_uri)
        if manifest_uri is not None:
            values["manifest_uri"] = check_storage_uri(manifest_uri)

        def work(conn: Connection) -> tuple[BackupRecord, UpsertOutcome]:
            row = conn.execute(select(backups).where(backups.c.id == manifest.id).with_for_update()).mappings().first()
            if row is None:
                conn.execute(
                    backups.insert().values(
                        **values, status=BackupStatus.SUCCEEDED.value, verified=False, updated_at=self._clock()
                    )
                )
                summary.touch(conn, [manifest.cluster])
                self._event(
                    conn,
                    "backup.cataloged",
                    f"backup {manifest.id} added to the catalog from its manifest",
                    cluster=manifest.cluster,
                    backup_id=manifest.id,
                    details={"manifest_uri": values.get("manifest_uri")},
                    actor=actor,
                )
                return self._locked(conn, manifest.id), UpsertOutcome.INSERTED
            old = _record(row)
            if old.cluster != manifest.cluster or old.kind.value != values["kind"]:
                raise CatalogConflictError(
                    f"manifest of {manifest.id} says {values['kind']} backup of {manifest.cluster!r}; "
                    f"the catalog has a {old.kind.value} backup of {old.cluster!r}"
                )
            changes = {k: v for k, v in values.items() if k not in ("id", "cluster", "kind") and getattr(old, k) != v}
            if old.status in (BackupStatus.RUNNING, BackupStatus.FAILED):
                changes.update(status=BackupStatus.SUCCEEDED.value, error=None)
            if "backup_ts" in changes and (old.verified or old.verified_at is not None):
                changes.update(verified=False, verified_at=None, verify_detail=None)
            if not changes:
                return old, UpsertOutcome.UNCHANGED
            record = self._update(conn, manifest.id, changes)
            self._event(
                conn,
                "backup.cataloged",
                f"backup {manifest.id} updated from its manifest ({', '.join(sorted(changes))})",
                cluster=old.cluster,
                backup_id=manifest.id,
                details={"changed": sorted(changes)},
                actor=actor,
            )
            return record, UpsertOutcome.UPDATED

        return self._write(work)

    # ---------------------------------------------------------------------------- log backup (PITR) health

    def add_log_backup_check(self, check: LogBackupCheck) -> LogBackupCheck:
        """Append one check of a cluster's log backup (the RPO history); returns it with its id."""
        values = _check_values(check)

        def work(conn: Connection) -> LogBackupCheck:
            result = conn.execute(log_backup_checks.insert().values(**values))
            summary.touch(conn, [check.cluster])
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            return LogBackupCheck(**{**{n: getattr(check, n) for n in _CHECK_FIELDS}, "id": new_id})

        return self._write(work)

    def list_log_backup_checks(
        self, cluster: str, *, limit: int = 100, since: datetime | None = None
    ) -> list[LogBackupCheck]:
        """The cluster's checks, newest first (at most ``limit``; only those at or after ``since``)."""
        query = select(log_backup_checks).where(log_backup_checks.c.cluster == cluster)
        if since is not None:
            query = query.where(log_backup_checks.c.checked_at >= utc(since, "since"))
        query = query.order_by(desc(log_backup_checks.c.checked_at), desc(log_backup_checks.c.id)).limit(limit)
        with self._reading() as conn:
            return [_check(r) for r in conn.execute(query).mappings()]

    def latest_log_backup_checks(self, clusters: Iterable[str] | None = None) -> list[LogBackupCheck]:
        """The newest check of every cluster (or of ``clusters``), by cluster name: what metrics read."""
        newest = (
            select(log_backup_checks.c.cluster, func.max(log_backup_checks.c.id).label("id"))
            .group_by(log_backup_checks.c.cluster)
            .subquery()
        )
        query = select(log_backup_checks).join(newest, log_backup_checks.c.id == newest.c.id)
        if clusters is not None:
            query = query.where(log_backup_checks.c.cluster.in_(list(clusters)))
        with self._reading() as conn:
            return sorted((_check(r) for r in conn.execute(query).mappings()), key=lambda c: c.cluster)

    def prune_log_backup_checks(self, cluster: str, before: datetime) -> int:
        """Delete the cluster's checks older than ``before``; returns how many went."""
        cutoff = utc(before, "before")

        def work(conn: Connection) -> int:
            result = conn.execute(
                delete(log_backup_checks).where(
                    and_(log_backup_checks.c.cluster == cluster, log_backup_checks.c.checked_at < cutoff)
                )
            )
            if result.rowcount:
                summary.touch(conn, [cluster])
            return int(result.rowcount or 0)

        return self._write(work)

    def list_alert_states(self, cluster: str | None = None, *, open_only: bool = False) -> list[AlertState]:
        """Alert de-duplication states, by cluster and key; ``open_only``: the problems not yet resolved."""
        query = select(log_backup_alerts)
        if cluster is not None:
            query = query.where(log_backup_alerts.c.cluster == cluster)
        if open_only:
            query = query.where(log_backup_alerts.c.resolved_at.is_(None))
        query = query.order_by(log_backup_alerts.c.cluster, log_backup_alerts.c.alert_key)
        with self._reading() as conn:
            return [_alert(r) for r in conn.execute(query).mappings()]

    def update_alert_states(
        self,
        cluster: str,
        change: Callable[[Mapping[str, AlertState]], Iterable[AlertState]],
        *,
        actor: str | None = None,
    ) -> list[AlertState]:
        """Change a cluster's alert states atomically: ``change`` gets them (by key, locked) and returns
        the ones it changed or added. An episode that opens, is notified (or its recovery is) or resolves
        writes an ``events`` row (``log_backup.alert_opened`` / ``alert_notified`` /
        ``alert_recovery_notified`` / ``alert_resolved``). Returns every state of the cluster.
        """

        def work(conn: Connection) -> list[AlertState]:
            where = log_backup_alerts.c.cluster == cluster
            before = {
                s.key: s
                for s in map(_alert, conn.execute(select(log_backup_alerts).where(where).with_for_update()).mappings())
            }
            for state in change(dict(before)):
                if state.cluster != cluster:
                    raise ValueError(f"alert {state.key} belongs to cluster {state.cluster!r}, not {cluster!r}")
                values = {**_alert_values(state), "updated_at": self._clock()}
                old = before.get(state.key)
                if old is None:
                    conn.execute(log_backup_alerts.insert().values(cluster=cluster, alert_key=state.key, **values))
                else:
                    conn.execute(
                        update(log_backup_alerts)
                        .where(and_(where, log_backup_alerts.c.alert_key == state.key))
                        .values(**values)
                    )
                details = {"key": state.key, "severity": state.severity, "episode": state.episodes}
                if (old is None or not old.is_open) and state.is_open:
                    self._event(
                        conn,
                        "log_backup.alert_opened",
                        f"{cluster}: {state.key} ({state.severity}): {summarise_error(state.message)[:300]}",
                        cluster=cluster,
                        details=details,
                        time=state.first_seen,
                        actor=actor,
                    )
                elif old is not None and old.is_open and not state.is_open:
                    self._event(
                        conn,
                        "log_backup.alert_resolved",
                        f"{cluster}: {state.key} resolved (open since {show(state.first_seen)})",
                        cluster=cluster,
                        details=details,
                        time=state.resolved_at,
                        actor=actor,
                    )
                if state.notified_at is not None and (old is None or old.notified_at != state.notified_at):
                    self._event(
                        conn,
                        "log_backup.alert_notified",
                        f"{cluster}: {state.key} ({state.severity}) notified"
                        + (f" (reminder {state.notify_count - 1})" if state.notify_count > 1 else ""),
                        cluster=cluster,
                        details={**details, "notify_count": state.notify_count},
                        time=state.notified_at,
                        actor=actor,
                    )
                if state.recovery_notified_at is not None and (
                    old is None or old.recovery_notified_at != state.recovery_notified_at
                ):
                    self._event(
                        conn,
                        "log_backup.alert_recovery_notified",
                        f"{cluster}: recovery from {state.key} notified",
                        cluster=cluster,
                        details=details,
                        time=state.recovery_notified_at,
                        actor=actor,
                    )
            return [_alert(r) for r in conn.execute(select(log_backup_alerts).where(where)).mappings()]

        return self._write(work)

    # ------------------------------------------------------------------------------ restore drills (#6)

    def claim_scratch(self, drill: DrillRecord, *, stale_after: timedelta, actor: str | None = None) -> DrillRecord:
        """Record ``drill`` as running: it then holds its scratch ``target`` until it is saved passed or failed.

        Raises ``ScratchInUseError`` when another drill holds the target. Another drill's hold counts while
        its row was updated less than ``stale_after`` ago, unless it is of the same DAG (a DAG runs one run
        at a time, so that run is over): such a row is a drill that died without saying so, and is marked
        failed (abandoned). The same id again (a retry, a cleared run) takes its row back to running.
        """

        who = actor or actor_from_run_id(drill.run_id)

        def work(conn: Connection) -> DrillRecord:
            now = self._clock()
            held = conn.execute(
                select(drills)
                .where(and_(drills.c.target == drill.target, drills.c.status == DrillStatus.RUNNING.value))
                .with_for_update()
            ).mappings()
            for other in [_drill(r) for r in held]:
                if other.id == drill.id:
                    continue
                same_dag = other.dag_id is not None and other.dag_id == drill.dag_id
                age = now - (other.updated_at or other.started_at)
                if not same_dag and age < stale_after:
                    raise ScratchInUseError(
                        f"scratch cluster {drill.target} is in use by drill {other.id} of cluster {other.cluster} "
                        f"({other.dag_id or '?'} run {other.run_id or '?'}, running since "
                        f"{show(other.started_at)}); retry when it is done. If that run "
                        f"died, its hold lapses {_minutes(stale_after)} after its last update"
                    )
                why = "its DAG runs again" if same_dag else f"no update for {_minutes(age)}"
                summary.touch(conn, [other.cluster])
                conn.execute(
                    update(drills)
                    .where(drills.c.id == other.id)
                    .values(
                        status=DrillStatus.FAILED.value,
                        error=f"abandoned: the drill stopped without recording an outcome ({why})",
                        finished_at=now,
                        updated_at=now,
                    )
                )
                self._event(
                    conn,
                    "drill.abandoned",
                    f"drill {other.id} of {other.cluster} abandoned ({why}); {drill.id} takes {drill.target}",
                    cluster=other.cluster,
                    details={"drill_id": other.id, "target": other.target, "by": drill.id},
                    actor=who,
                )
            running = DrillRecord(**{**_drill_fields(drill), "status": DrillStatus.RUNNING, "finished_at": None})
            existed = self._put_drill(conn, running)
            self._event(
                conn,
                "drill.restarted" if existed else "drill.started",
                f"{drill.mode} drill {drill.id} of {drill.cluster} into {drill.target} "
                f"{'started again (try ' + str(drill.try_number) + ')' if existed else 'started'}",
                cluster=drill.cluster,
                details={"drill_id": drill.id, "target": drill.target, "dag_id": drill.dag_id, "run_id": drill.run_id},
                actor=who,
            )
            return self._get_drill(conn, drill.id)

        return self._write(work)

    def save_drill(self, drill: DrillRecord, *, actor: str | None = None) -> DrillRecord:
        """Insert or update a drill's row as given; a passed or failed one writes an ``events`` row
        (``actor``: default from the drill's run, ``schedule`` for a scheduled one)."""

        def work(conn: Connection) -> DrillRecord:
            self._put_drill(conn, drill)
            if drill.status is not DrillStatus.RUNNING:
                rto = f", RTO {drill.rto_seconds}s" if drill.rto_seconds is not None else ""
                error = f": {summarise_error(drill.error)[:300]}" if drill.error else ""
                self._event(
                    conn,
                    f"drill.{drill.status.value}",
                    f"{drill.mode} drill {drill.id} of {drill.cluster} {drill.status.value}{rto}{error}",
                    cluster=drill.cluster,
                    details={
                        "drill_id": drill.id,
                        "target": drill.target,
                        "restore_ts": drill.restore_ts,
                        "mismatches": drill.mismatches,
                        "gx_success_ratio": drill.gx_success_ratio,
                        "rto_seconds": drill.rto_seconds,
                    },
                    actor=actor or actor_from_run_id(drill.run_id),
                )
            return self._get_drill(conn, drill.id)

        return self._write(work)

    def _put_drill(self, conn: Connection, drill: DrillRecord) -> bool:
        """Upsert; True when the row was there."""
        values = _drill_values(drill)
        values["updated_at"] = self._clock()
        found = conn.execute(select(drills.c.id).where(drills.c.id == drill.id).with_for_update()).first()
        summary.touch(conn, [drill.cluster])
        if found is None:
            conn.execute(drills.insert().values(id=drill.id, **values))
            return False
        conn.execute(update(drills).where(drills.c.id == drill.id).values(**values))
        return True

    def _get_drill(self, conn: Connection, drill_id: str) -> DrillRecord:
        row = conn.execute(select(drills).where(drills.c.id == drill_id)).mappings().first()
        if row is None:  # pragma: no cover (read right after the write, in its transaction)
            raise CatalogStateError(f"drill {drill_id} vanished")
        return _drill(row)

    def get_drill(self, drill_id: str) -> DrillRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(drills).where(drills.c.id == drill_id)).mappings().first()
        return None if row is None else _drill(row)

    def list_drills(
        self,
        cluster: str | None = None,
        *,
        target: str | None = None,
        status: DrillStatus | str | None = None,
        limit: int = 100,
    ) -> list[DrillRecord]:
        """Drills, newest first (at most ``limit``)."""
        query = select(drills)
        if cluster is not None:
            query = query.where(drills.c.cluster == cluster)
        if target is not None:
            query = query.where(drills.c.target == target)
        if status is not None:
            query = query.where(drills.c.status == DrillStatus(status).value)
        query = query.order_by(desc(drills.c.started_at), desc(drills.c.id)).limit(limit)
        with self._reading() as conn:
            return [_drill(r) for r in conn.execute(query).mappings()]

    # --------------------------------------------------------------------------- on-demand restores (#7)

    def save_restore(self, restore: RestoreRecord) -> RestoreRecord:
        """Insert or replace a restore's row (a retried record task replaces it) and write its events:
        ``restore.requested`` (with the reason, at ``requested_at``) the first time, then the outcome
        (``restore.<status>``, with why when refused or failed). Both are the source cluster's, by the
        user who requested it."""

        def work(conn: Connection) -> RestoreRecord:
            values = _restore_values(restore)
            values["updated_at"] = self._clock()
            found = conn.execute(select(restores.c.id).where(restores.c.id == restore.id).with_for_update()).first()
            summary.touch(conn, [restore.source, restore.target])
            details = {
                "restore_id": restore.id,
                "source": restore.source,
                "target": restore.target,
                "restore_point": restore.restore_point,
                "restore_ts": restore.restore_ts,
                "dry_run": restore.dry_run,
            }
            who = restore.requested_by or "unknown"
            if found is None:
                conn.execute(restores.insert().values(id=restore.id, **values))
                self._event(
                    conn,
                    "restore.requested",
                    f"{who} requested restore {restore.id} of {restore.source} to {restore.restore_point} into "
                    f"{restore.target}{' (dry run)' if restore.dry_run else ''}: {restore.reason}",
                    cluster=restore.source,
                    details=details,
                    time=restore.requested_at,
                    actor=restore.requested_by,
                )
            else:
                conn.execute(update(restores).where(restores.c.id == restore.id).values(**values))
            error = f": {summarise_error(restore.error)[:300]}" if restore.error else ""
            self._event(
                conn,
                f"restore.{restore.status.value}",
                f"restore {restore.id} {restore.source} → {restore.target} {restore.status.value.replace('_', ' ')} "
                f"(requested by {who}: {restore.reason[:200]}){error}",
                cluster=restore.source,
                details=details,
                actor=restore.requested_by,
            )
            row = conn.execute(select(restores).where(restores.c.id == restore.id)).mappings().first()
            if row is None:  # pragma: no cover (read right after the write, in its transaction)
                raise CatalogStateError(f"restore {restore.id} vanished")
            return _restore(row)

        return self._write(work)

    def get_restore(self, restore_id: str) -> RestoreRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(restores).where(restores.c.id == restore_id)).mappings().first()
        return None if row is None else _restore(row)

    def list_restores(
        self, source: str | None = None, *, target: str | None = None, limit: int = 100
    ) -> list[RestoreRecord]:
        """Restore requests, newest first (at most ``limit``)."""
        query = select(restores)
        if source is not None:
            query = query.where(restores.c.source == source)
        if target is not None:
            query = query.where(restores.c.target == target)
        query = query.order_by(desc(restores.c.requested_at), desc(restores.c.id)).limit(limit)
        with self._reading() as conn:
            return [_restore(r) for r in conn.execute(query).mappings()]

    # ------------------------------------------------------------------------------- holds (#16)

    def hold_backups(self, cluster: str, backup_ids: Iterable[str], holder: str, *, ttl: timedelta) -> None:
        """``holder`` (a drill id, a restore id) uses these backups until it releases them or ``ttl`` passes.

        Retention never expires a held backup. Taking holds again under the same holder replaces its
        earlier ones (a retried task), so a holder never piles up rows.
        """
        ids = sorted(set(backup_ids))
        if not holder or len(holder) > 250:
            raise ValueError("a holder is 1 to 250 characters")
        if ttl <= timedelta(0):
            raise ValueError(f"a hold's ttl must be positive, not {ttl}")

        def work(conn: Connection) -> None:
            conn.execute(delete(backup_holds).where(backup_holds.c.holder == holder))
            now = self._clock()
            for backup_id in ids:
                conn.execute(
                    backup_holds.insert().values(
                        cluster=cluster, backup_id=backup_id, holder=holder, taken_at=now, expires_at=now + ttl
                    )
                )

        self._write(work)

    def release_holds(self, holder: str) -> int:
        """Drop every hold of ``holder``; how many there were."""

        def work(conn: Connection) -> int:
            return int(conn.execute(delete(backup_holds).where(backup_holds.c.holder == holder)).rowcount or 0)

        return self._write(work)

    def held_backups(self, cluster: str) -> dict[str, list[str]]:
        """Backups of ``cluster`` held now (unexpired holds), with their holders."""
        query = (
            select(backup_holds.c.backup_id, backup_holds.c.holder)
            .where(and_(backup_holds.c.cluster == cluster, backup_holds.c.expires_at > self._clock()))
            .order_by(backup_holds.c.backup_id, backup_holds.c.holder)
        )
        held: dict[str, list[str]] = {}
        with self._reading() as conn:
            for backup_id, holder in conn.execute(query):
                held.setdefault(backup_id, []).append(holder)
        return held

    # ---------------------------------------------------------------------------------------- events

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        cluster: str | None = None,
        backup_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
        actor: str | None = None,
        status: str | None = None,
    ) -> None:
        """Append an audit event (log-backup checks, retention, storage usage, …). No secrets.

        ``actor``: who (a user, ``schedule``; default ``airflow``); ``status``: the state it records
        (default from the kind, ``records.event_status``; one of ``records.EVENT_STATUSES``)."""
        if not kind or len(kind) > 64:
            raise ValueError("an event kind is 1 to 64 characters")
        if status is not None and status not in EVENT_STATUSES:
            raise ValueError(f"event status {status!r} is not one of {', '.join(EVENT_STATUSES)}")
        when = utc(time, "time") if time else None

        def work(conn: Connection) -> None:
            self._event(
                conn,
                kind,
                summarise_error(message),
                cluster=cluster,
                backup_id=backup_id,
                details=details,
                time=when,
                actor=actor,
                status=status,
            )

        self._write(work)

    def list_events(
        self,
        cluster: str | None = None,
        kind: str | None = None,
        backup_id: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events, oldest first (the newest ``limit`` of them)."""
        query = select(events)
        if cluster is not None:
            query = query.where(events.c.cluster == cluster)
        if kind is not None:
            query = query.where(events.c.kind == kind)
        if backup_id is not None:
            query = query.where(events.c.backup_id == backup_id)
        if since is not None:
            query = query.where(events.c.time >= utc(since, "since"))
        query = query.order_by(desc(events.c.time), desc(events.c.id)).limit(limit)
        with self._reading() as conn:
            rows = list(conn.execute(query).mappings())
        return [Event(**{k: r[k] for k in _EVENT_FIELDS}) for r in reversed(rows)]


# ------------------------------------------------------------------------------ restore drills (#6)


class ScratchInUseError(CatalogStateError):
    """Another drill holds the scratch cluster (its row is running and recent)."""


_DRILL_FIELDS = tuple(f.name for f in fields(DrillRecord))


def _minutes(delta: timedelta) -> str:
    return f"{round(delta.total_seconds() / 60)} min"


def _drill_fields(drill: DrillRecord) -> dict[str, Any]:
    return {name: getattr(drill, name) for name in _DRILL_FIELDS}


def _drill(row: RowMapping) -> DrillRecord:
    values = {name: row[name] for name in _DRILL_FIELDS}
    values["backups_used"] = tuple(row["backups_used"] or ())
    return DrillRecord(**values)


def _drill_values(drill: DrillRecord) -> dict[str, Any]:
    values = {name: getattr(drill, name) for name in _DRILL_FIELDS if name not in ("id", "updated_at")}
    values["status"] = drill.status.value
    values["backups_used"] = list(drill.backups_used)
    values["restore_time"] = drill.restore_time
    values["error"] = summarise_error(drill.error) if drill.error else None
    values["details"] = _jsonable(dict(drill.details)) if drill.details is not None else None
    values["basis"] = _jsonable(dict(drill.basis)) if drill.basis is not None else None
    return values


_RESTORE_FIELDS = tuple(f.name for f in fields(RestoreRecord))


def _restore(row: RowMapping) -> RestoreRecord:
    values = {name: row[name] for name in _RESTORE_FIELDS}
    values["tables"] = tuple(row["tables"] or ())
    values["backups_used"] = tuple(row["backups_used"] or ())
    values["request"] = dict(row["request"] or {})
    return RestoreRecord(**values)


def _restore_values(restore: RestoreRecord) -> dict[str, Any]:
    values = {name: getattr(restore, name) for name in _RESTORE_FIELDS if name != "id"}
    values["status"] = restore.status.value
    values["tables"] = list(restore.tables)
    values["backups_used"] = list(restore.backups_used)
    values["restore_time"] = restore.restore_time
    values["request"] = _jsonable(dict(restore.request))
    values["plan"] = _jsonable(dict(restore.plan)) if restore.plan is not None else None
    values["error"] = summarise_error(restore.error) if restore.error else None
    return values
