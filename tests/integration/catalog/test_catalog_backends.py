"""One catalog test suite, run against SQLite (a file) and a real MySQL-compatible server (private MariaDB)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, String, inspect
from sqlalchemy.engine import Connection

from tidbops import tso
from tidbops.catalog import migrations as mig
from tidbops.catalog.errors import (
    BackupNotFoundError,
    BrokenChainError,
    CatalogConflictError,
    CatalogSchemaError,
    CatalogStateError,
)
from tidbops.catalog.manifest import Manifest, ManifestFile
from tidbops.catalog.records import (
    AlertState,
    BackupKind,
    BackupRecord,
    BackupStatus,
    DrillRecord,
    DrillStatus,
    LogBackupCheck,
    NewBackup,
    RestoreRecord,
    RestoreStatus,
    make_backup_id,
    make_restore_id,
)
from tidbops.catalog.schema import create_catalog_engine, metadata
from tidbops.catalog.store import Catalog, ScratchInUseError, UpsertOutcome
from tidbops_playground.mariadb import MariaDBInstance

pytestmark = pytest.mark.integration

DB = "tidbops_catalog"
T0 = datetime(2024, 7, 1, 1, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "mariadb", "mariadb_as_tidb"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog/tidbops_catalog.db"
    server: MariaDBInstance = request.getfixturevalue(request.param)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
    return f"mysql+pymysql://{server.user}:{server.password}@127.0.0.1:{server.port}/{DB}"


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    cat = Catalog.from_url(catalog_url)
    cat.migrate()
    yield cat
    cat.close()


def new(
    backup_id: str,
    *,
    cluster: str = "dev",
    base: str | None = None,
    base_ts: int | None = None,
    try_number: int = 1,
    started: datetime = T0,
) -> NewBackup:
    return NewBackup(
        id=backup_id,
        cluster=cluster,
        kind=BackupKind.INCREMENTAL if base else BackupKind.FULL,
        storage_uri=f"s3://tidbops-backups/{cluster}/{'incr' if base else 'full'}/{backup_id}",
        started_at=started,
        base_backup_id=base,
        last_backup_ts=base_ts,
        encryption_method="aes256-ctr",
        br_version="v8.5.1",
        dag_id=f"backup__{cluster}",
        run_id=f"scheduled__{backup_id}",
        try_number=try_number,
        triggered_by="schedule",
    )


def ts(hours: float) -> int:
    return tso.from_datetime(T0 + timedelta(hours=hours))


def done(
    catalog: Catalog,
    backup_id: str,
    hours: float,
    *,
    base: str | None = None,
    verified: bool = True,
    cluster: str = "dev",
) -> BackupRecord:
    base_ts = catalog.get(base).backup_ts if base else None  # type: ignore[union-attr]
    started = T0 + timedelta(hours=hours - 0.1)
    catalog.start_backup(new(backup_id, cluster=cluster, base=base, base_ts=base_ts, started=started))
    catalog.finish_backup(backup_id, backup_ts=ts(hours), size_bytes=1000 + int(hours))
    return catalog.mark_verified(backup_id, verified, "ok" if verified else "1 missing")


# -------------------------------------------------------------------------------------------- migrations


def test_the_server_is_what_the_test_says(catalog_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["catalog_url"]
    engine = create_catalog_engine(catalog_url)
    try:
        with engine.connect():
            pass
        identity = "mariadb" if getattr(engine.dialect, "is_mariadb", False) else engine.dialect.name
    finally:
        engine.dispose()
    # the TiDB look-alike passes for MySQL 8, and still works (see schema._tolerate_old_isolation_variable)
    assert identity == {"sqlite": "sqlite", "mariadb": "mariadb", "mariadb_as_tidb": "mysql"}[backend]


def test_migrate_fresh_then_rerun(catalog_url: str) -> None:
    cat = Catalog.from_url(catalog_url)
    with pytest.raises(CatalogSchemaError, match="has no schema; run `tidbops catalog migrate`"):
        cat.list_backups()
    first = cat.migrate()
    latest = mig.LATEST_VERSION
    assert (first.from_version, first.to_version) == (0, latest)
    assert first.applied == tuple(f"{m.version}: {m.name}" for m in mig.MIGRATIONS)
    assert first.applied[0] == "1: backups and events tables"
    again = Catalog.from_url(catalog_url).migrate()
    assert (again.from_version, again.to_version, again.changed) == (latest, latest, False)
    assert cat.schema_version() == mig.LATEST_VERSION
    assert cat.list_backups() == []


def test_migrated_schema_is_the_declared_schema(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        insp = inspect(conn)
        assert set(insp.get_table_names()) == set(metadata.tables)
        for table in metadata.tables.values():
            columns = {c["name"]: c for c in insp.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            for col in table.columns:
                assert columns[col.name]["nullable"] == col.nullable, f"{table.name}.{col.name}"
            assert {ix["name"] for ix in insp.get_indexes(table.name)} == {ix.name for ix in table.indexes}


def test_concurrent_migrate_applies_each_migration_once(catalog_url: str) -> None:
    calls: list[str] = []

    def slow_v1(conn: Connection) -> None:
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # hold the lock long enough for the other process to queue behind it
        mig.MIGRATIONS[0].apply(conn)

    migrations = (mig.Migration(1, "slow v1", slow_v1),)
    barrier = threading.Barrier(2)
    reports: list[mig.MigrationReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        engine = create_catalog_engine(catalog_url)
        try:
            barrier.wait()
            reports.append(mig.migrate(engine, migrations))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, name=f"migrator-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(calls) == 1
    assert sorted(len(r.applied) for r in reports) == [0, 1]
    cat = Catalog.from_url(catalog_url)
    assert cat.schema_version() == 1  # only the (slow) v1 of this test's list was applied, once
    assert cat.migrate().applied == tuple(f"{m.version}: {m.name}" for m in mig.MIGRATIONS[1:])
    assert cat.list_backups() == []


def test_a_later_migration_extends_the_schema(catalog: Catalog, catalog_url: str) -> None:
    def add_note(conn: Connection) -> None:
        mig.add_column_if_missing(conn, "backups", Column("note", String(100), nullable=True))

    nxt = mig.LATEST_VERSION + 1
    extended = (*mig.MIGRATIONS, mig.Migration(nxt, "backups.note", add_note))
    report = mig.migrate(catalog.engine, extended)
    assert report.applied == (f"{nxt}: backups.note",)
    assert mig.migrate(catalog.engine, extended).applied == ()
    add_note_again = mig.Migration(nxt, "backups.note", add_note)
    with catalog.engine.begin() as conn:
        add_note_again.apply(conn)  # re-runnable, as after a crash before the version row
        assert "note" in {c["name"] for c in inspect(conn).get_columns("backups")}
    # this code knows only up to LATEST_VERSION: it refuses a newer catalog rather than guess
    with pytest.raises(CatalogSchemaError, match="newer than this code knows"):
        mig.migrate(catalog.engine)
    with pytest.raises(CatalogSchemaError, match="upgrade tidbops"):
        Catalog.from_url(catalog_url).get("x")


def test_migration_versions_must_be_in_order(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="must run 1, 2, 3"):
        mig.migrate(catalog.engine, (mig.Migration(2, "skips one", mig.MIGRATIONS[0].apply),))


# --------------------------------------------------------------------------------------------- lifecycle


def test_start_finish_verify(catalog: Catalog) -> None:
    running = catalog.start_backup(new("dev-full-1"))
    assert running.status is BackupStatus.RUNNING and running.backup_ts is None and not running.verified
    assert running.started_at == T0  # microseconds survive the round trip
    finished = catalog.finish_backup(
        "dev-full-1",
        backup_ts=ts(1),
        size_bytes=5 * 1024**4,
        total_kv=10**12,
        br_duration_s=3601.25,
        br_version="v8.5.2",
        finished_at=T0 + timedelta(hours=1, minutes=2),
    )
    assert finished.status is BackupStatus.SUCCEEDED
    assert (finished.backup_ts, finished.backup_time) == (ts(1), T0.replace(microsecond=123000) + timedelta(hours=1))
    assert (finished.size_bytes, finished.total_kv, finished.br_duration_s) == (5 * 1024**4, 10**12, 3601.25)
    assert finished.br_version == "v8.5.2" and finished.encryption_method == "aes256-ctr"
    assert finished.finished_at == T0 + timedelta(hours=1, minutes=2)
    assert catalog.finish_backup("dev-full-1", backup_ts=ts(1)) == finished  # a retried finish is a no-op
    verified = catalog.mark_verified("dev-full-1", True, "ok: 6 files")
    assert verified.verified and verified.verified_at is not None and verified.verify_detail == "ok: 6 files"
    failed_check = catalog.mark_verified("dev-full-1", False, "1 missing (backupmeta)")
    assert failed_check.verify_failed and catalog.get("dev-full-1") == failed_check
    kinds = [e.kind for e in catalog.list_events(backup_id="dev-full-1")]
    assert kinds == ["backup.started", "backup.succeeded", "backup.verified", "backup.verify_failed"]


def test_fail_and_invalid_moves(catalog: Catalog) -> None:
    catalog.start_backup(new("dev-full-1"))
    failed = catalog.fail_backup(
        "dev-full-1", "br exited 1: s3://b/x?access-key=AKIAABCDEFGHIJKLMNOP&secret-access-key=abc"
    )
    assert failed.status is BackupStatus.FAILED and failed.finished_at is not None
    assert failed.error is not None and "abc" not in failed.error and "AKIAABCDEFGHIJKLMNOP" not in failed.error
    with pytest.raises(CatalogStateError, match="only a running backup can finish"):
        catalog.finish_backup("dev-full-1", backup_ts=ts(1))
    with pytest.raises(CatalogStateError, match="only a succeeded backup can be verified"):
        catalog.mark_verified("dev-full-1", True, "ok")
    with pytest.raises(BackupNotFoundError):
        catalog.fail_backup("nope", "x")
    catalog.fail_backup("dev-full-1", "x" * 10_000)
    assert len(catalog.get("dev-full-1").error or "") == 4000  # type: ignore[union-attr]


def test_retire(catalog: Catalog) -> None:
    done(catalog, "dev-full-1", 1)
    assert catalog.set_status("dev-full-1", BackupStatus.EXPIRED, "retention").status is BackupStatus.EXPIRED
    assert catalog.set_status("dev-full-1", BackupStatus.DELETED, "files removed").status is BackupStatus.DELETED
    with pytest.raises(CatalogStateError):
        catalog.set_status("dev-full-1", BackupStatus.EXPIRED, "again")
    with pytest.raises(ValueError, match="expired or deleted"):
        catalog.set_status("dev-full-1", BackupStatus.SUCCEEDED, "undo")


def test_a_retry_updates_its_row(catalog: Catalog) -> None:
    backup_id = make_backup_id("dev", BackupKind.FULL, T0, dag_id="backup__dev", run_id="scheduled__x")
    assert backup_id == make_backup_id("dev", BackupKind.FULL, T0, dag_id="backup__dev", run_id="scheduled__x")
    catalog.start_backup(new(backup_id))
    catalog.fail_backup(backup_id, "connection reset")
    retried = catalog.start_backup(new(backup_id, try_number=2, started=T0 + timedelta(minutes=5)))
    assert len(catalog.list_backups()) == 1
    assert (retried.status, retried.try_number, retried.error, retried.finished_at) == (
        BackupStatus.RUNNING,
        2,
        None,
        None,
    )
    assert retried.started_at == T0 + timedelta(minutes=5)
    catalog.finish_backup(backup_id, backup_ts=ts(1))
    with pytest.raises(CatalogStateError, match="succeeded; only a running or failed backup can be started again"):
        catalog.start_backup(new(backup_id, try_number=3))
    with pytest.raises(CatalogConflictError, match="already names a full backup of cluster 'dev'"):
        catalog.start_backup(replace(new(backup_id), cluster="uat"))
    assert [e.kind for e in catalog.list_events(backup_id=backup_id)] == [
        "backup.started",
        "backup.failed",
        "backup.restarted",
        "backup.succeeded",
    ]


def test_concurrent_starts_of_one_id_make_one_row(catalog_url: str, catalog: Catalog) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start(i: int) -> None:
        cat = Catalog.from_url(catalog_url)
        try:
            barrier.wait()
            cat.start_backup(new("dev-full-race", try_number=i + 1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = catalog.list_backups()
    assert [r.id for r in rows] == ["dev-full-race"] and rows[0].status is BackupStatus.RUNNING


# ------------------------------------------------------------------------------------------------ queries


def test_listing_order_and_filters(catalog: Catalog) -> None:
    hours = list(range(1, 9))
    random.Random(7).shuffle(hours)
    for h in hours:  # inserted out of order
        done(catalog, f"dev-full-{h}", h)
    catalog.start_backup(new("dev-full-running", started=T0 + timedelta(hours=20)))
    catalog.start_backup(new("dev-full-failed", started=T0 + timedelta(hours=10)))
    catalog.fail_backup("dev-full-failed", "boom")
    done(catalog, "uat-full-1", 0.5, cluster="uat")
    catalog.start_backup(new("uat-x", cluster="uat"))
    dev = [r.id for r in catalog.list_backups("dev")]
    assert dev == [f"dev-full-{h}" for h in range(1, 9)] + ["dev-full-failed", "dev-full-running"]
    assert [r.id for r in catalog.list_backups(status="running")] == ["uat-x", "dev-full-running"]
    assert [r.id for r in catalog.list_backups("dev", status=["failed", BackupStatus.RUNNING])] == [
        "dev-full-failed",
        "dev-full-running",
    ]
    assert catalog.list_backups(kinds=["incremental"]) == []
    assert catalog.list_backups()[0].id == "uat-full-1"
    assert catalog.clusters() == ["dev", "uat"]


def test_chains(catalog: Catalog) -> None:
    done(catalog, "f1", 1)
    done(catalog, "i2", 2, base="f1")
    done(catalog, "i3", 3, base="i2")
    done(catalog, "f4", 4, verified=False)
    done(catalog, "i5", 5, base="f4")
    assert [b.id for b in catalog.chain("dev")] == ["f4", "i5"]
    assert [b.id for b in catalog.chain("dev", "i3")] == ["f1", "i2", "i3"]
    assert [b.id for b in catalog.chain("dev", "f1")] == ["f1"]
    assert catalog.chain("uat") == []
    assert catalog.latest_verified_full("dev").id == "f1"  # type: ignore[union-attr]
    assert catalog.latest_verified_full("uat") is None
    with pytest.raises(BackupNotFoundError):
        catalog.chain("dev", "nope")
    with pytest.raises(BackupNotFoundError):
        catalog.chain("uat", "f1")  # another cluster's backup
    catalog.start_backup(new("i6", base="gone", base_ts=ts(1)))
    with pytest.raises(BrokenChainError, match="its base 'gone' is not in the catalog"):
        catalog.chain("dev", "i6")


def test_large_tso_and_naive_times(catalog: Catalog) -> None:
    catalog.start_backup(new("dev-full-1"))
    big = 999999999999999999  # 2090-11-18: still far below 2^63
    assert catalog.finish_backup("dev-full-1", backup_ts=big).backup_ts == big
    with pytest.raises(ValueError, match="no time zone"):
        catalog.start_backup(replace(new("dev-full-2"), started_at=datetime(2024, 1, 1)))


# ---------------------------------------------------------------------------------------------- manifests


def manifest_of(backup_id: str, hours: float, *, base: str | None = None, base_ts: int | None = None) -> Manifest:
    return Manifest(
        id=backup_id,
        cluster="dev",
        kind=BackupKind.INCREMENTAL if base else BackupKind.FULL,
        backup_ts=ts(hours),
        backup_time=tso.to_datetime(ts(hours)),
        storage_uri=f"s3://old-bucket/dev/{'incr' if base else 'full'}/{backup_id}",
        started_at=T0 + timedelta(hours=hours - 0.1),
        files=(ManifestFile("backupmeta", 10, "00" * 32), ManifestFile("store1/1.sst", 4096, "11" * 32)),
        base_backup_id=base,
        last_backup_ts=base_ts,
        size_bytes=4106,
        total_kv=77,
        br_duration_s=12.5,
        br_version="v8.5.1",
        encryption_method=None,
        dag_id="backup__dev",
        run_id=f"r-{backup_id}",
        try_number=1,
        triggered_by="alice",
        finished_at=T0 + timedelta(hours=hours),
        created_at=T0 + timedelta(hours=hours),
    )


def test_upsert_from_manifest_is_idempotent(catalog: Catalog) -> None:
    m = manifest_of("dev-full-1", 1)
    where = "s3://new-bucket/dev/full/dev-full-1"
    row, outcome = catalog.upsert_from_manifest(m, storage_uri=where, manifest_uri=f"{where}/tidbops-manifest.json")
    assert outcome is UpsertOutcome.INSERTED
    assert (row.status, row.verified, row.storage_uri, row.triggered_by) == (
        BackupStatus.SUCCEEDED,
        False,
        where,
        "alice",
    )
    assert (row.backup_time, row.started_at) == (m.backup_time, m.started_at)
    same, outcome = catalog.upsert_from_manifest(m, storage_uri=where, manifest_uri=f"{where}/tidbops-manifest.json")
    assert outcome is UpsertOutcome.UNCHANGED and same == row
    catalog.mark_verified("dev-full-1", True, "ok")
    changed, outcome = catalog.upsert_from_manifest(replace(m, total_kv=78), storage_uri=where)
    assert outcome is UpsertOutcome.UPDATED and changed.total_kv == 78 and changed.verified  # verification kept
    moved, outcome = catalog.upsert_from_manifest(replace(m, total_kv=78, backup_ts=ts(1.5)), storage_uri=where)
    assert outcome is UpsertOutcome.UPDATED and not moved.verified  # another point in time: check it again
    inc = manifest_of("dev-incr-2", 2, base="dev-full-1", base_ts=ts(1.5))
    assert catalog.upsert_from_manifest(inc)[1] is UpsertOutcome.INSERTED
    assert [b.id for b in catalog.chain("dev")] == ["dev-full-1", "dev-incr-2"]
    assert len(catalog.list_backups()) == 2
    with pytest.raises(CatalogConflictError):
        catalog.upsert_from_manifest(replace(m, cluster="uat"))


def test_upsert_completes_a_running_row_and_keeps_retired_ones(catalog: Catalog) -> None:
    catalog.start_backup(new("dev-full-1"))
    row, outcome = catalog.upsert_from_manifest(manifest_of("dev-full-1", 1))
    assert outcome is UpsertOutcome.UPDATED and row.status is BackupStatus.SUCCEEDED
    catalog.set_status("dev-full-1", BackupStatus.EXPIRED, "retention")
    row, outcome = catalog.upsert_from_manifest(manifest_of("dev-full-1", 1))
    assert outcome is UpsertOutcome.UNCHANGED and row.status is BackupStatus.EXPIRED


def test_events(catalog: Catalog) -> None:
    catalog.add_event("logbackup.lag", "checkpoint 12m behind", cluster="dev", details={"lag_s": 720})
    catalog.add_event("drill.ok", "restored", cluster="uat", time=T0)
    events = catalog.list_events()
    assert [(e.kind, e.cluster) for e in events] == [("drill.ok", "uat"), ("logbackup.lag", "dev")]
    assert catalog.list_events(cluster="dev")[0].details == {"lag_s": 720}
    assert catalog.list_events(since=T0 + timedelta(seconds=1), kind="drill.ok") == []
    with pytest.raises(ValueError):
        catalog.add_event("", "no kind")


def test_start_many_is_quick(catalog: Catalog) -> None:
    started = time.monotonic()
    for i in range(30):
        done(catalog, f"dev-full-{i:02d}", i)
    assert len(catalog.list_backups("dev", status="succeeded")) == 30
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------------------ log backup health (PITR)


def a_check(cluster: str, minutes: float, **kw: object) -> LogBackupCheck:
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "cluster": cluster,
        "checked_at": at,
        "status": "NORMAL",
        "healthy": True,
        "task_name": f"pitr-{cluster}",
        "status_source": "json+text",
        "checkpoint_ts": tso.from_datetime(at - timedelta(seconds=3)),
        "lag_seconds": 3.25,
        "log_min_ts": ts(-10),
        "log_max_ts": tso.from_datetime(at - timedelta(seconds=3)),
        "window_start_ts": ts(-5),
        "window_end_ts": tso.from_datetime(at - timedelta(seconds=3)),
        "window_base_backup_id": f"{cluster}-full-1",
        "gc_safe_point": at - timedelta(minutes=10),
        "gc_hold_seconds": 600.0,
        "dag_id": f"tidb_log_backup_check__{cluster}",
        "run_id": f"scheduled__{minutes}",
    }
    values.update(kw)
    return LogBackupCheck(**values)  # type: ignore[arg-type]


def test_log_backup_checks_history_latest_and_prune(catalog: Catalog) -> None:
    frozen = {"key": "checkpoint_frozen", "severity": "critical", "message": "stuck since 01:05 — ünïcode"}
    for m in range(0, 30, 5):
        stored = catalog.add_log_backup_check(a_check("dev", m))
        assert stored.id is not None and stored.checked_at == T0 + timedelta(minutes=m)
    catalog.add_log_backup_check(
        a_check("dev", 31, status="PAUSE", healthy=False, findings=(frozen,), checkpoint_ts=None, lag_seconds=None)
    )
    catalog.add_log_backup_check(a_check("uat", 7, status="ABSENT", task_name=None, window_start_ts=None))
    history = catalog.list_log_backup_checks("dev")
    assert [c.checked_at.minute for c in history] == [31, 25, 20, 15, 10, 5, 0]
    newest = history[0]
    assert (newest.status, newest.healthy, newest.findings, newest.checkpoint_time) == ("PAUSE", False, (frozen,), None)
    full = history[1]
    assert full.checked_at == T0 + timedelta(minutes=25), "microseconds survive"
    assert full.gc_safe_point == T0 + timedelta(minutes=15)
    assert (full.lag_seconds, full.gc_hold_seconds, full.window_base_backup_id) == (3.25, 600.0, "dev-full-1")
    assert full.window_start_time == tso.to_datetime(ts(-5)) and full.checkpoint_time is not None
    assert [c.checked_at.minute for c in catalog.list_log_backup_checks("dev", limit=2)] == [31, 25]
    since = catalog.list_log_backup_checks("dev", since=T0 + timedelta(minutes=20))
    assert [c.checked_at.minute for c in since] == [31, 25, 20]
    latest = catalog.latest_log_backup_checks()
    assert [(c.cluster, c.status) for c in latest] == [("dev", "PAUSE"), ("uat", "ABSENT")]
    assert [c.cluster for c in catalog.latest_log_backup_checks(["uat", "prod"])] == ["uat"]
    assert catalog.prune_log_backup_checks("dev", T0 + timedelta(minutes=12)) == 3
    assert len(catalog.list_log_backup_checks("dev")) == 4 and len(catalog.list_log_backup_checks("uat")) == 1
    with catalog.engine.connect() as conn:  # what a metrics exporter reads: plain columns, times in UTC
        row = conn.exec_driver_sql(
            "SELECT status, lag_seconds, window_start_time, window_end_time FROM log_backup_checks "
            "WHERE cluster = 'dev' ORDER BY checked_at DESC LIMIT 1 OFFSET 1"
        ).one()
    assert row[0] == "NORMAL" and row[1] == 3.25 and row[2] is not None and row[3] is not None


def alert(cluster: str, key: str, minutes: float, **kw: object) -> AlertState:
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "cluster": cluster,
        "key": key,
        "severity": "critical",
        "message": f"{key} at {minutes}",
        "first_seen": at,
        "last_seen": at,
        "details": {"lag_seconds": 12.5, "when": at},
    }
    values.update(kw)
    return AlertState(**values)  # type: ignore[arg-type]


def test_alert_states_upsert_resolve_and_events(catalog: Catalog) -> None:
    opened = catalog.update_alert_states(
        "dev", lambda s: [alert("dev", "checkpoint_frozen", 0), alert("dev", "gc_held", 0)]
    )
    assert [s.key for s in opened] == ["checkpoint_frozen", "gc_held"]
    assert opened[0].details == {"lag_seconds": 12.5, "when": "2024-07-01T01:00:00.123Z"}  # event details: timefmt.iso
    assert catalog.update_alert_states("uat", lambda s: [alert("uat", "task_error", 1)])[0].cluster == "uat"

    def notify_and_extend(states: Mapping[str, AlertState]) -> list[AlertState]:
        frozen = states["checkpoint_frozen"]
        return [
            replace(frozen, last_seen=T0 + timedelta(minutes=5), occurrences=2, notified_at=T0, notify_count=1),
            replace(states["gc_held"], resolved_at=T0 + timedelta(minutes=5)),
        ]

    after = {s.key: s for s in catalog.update_alert_states("dev", notify_and_extend)}
    frozen = after["checkpoint_frozen"]
    assert (frozen.occurrences, frozen.notified_at, frozen.notify_count, frozen.is_open) == (2, T0, 1, True)
    assert frozen.updated_at is not None and not after["gc_held"].is_open
    assert [s.key for s in catalog.list_alert_states("dev", open_only=True)] == ["checkpoint_frozen"]
    assert [(s.cluster, s.key) for s in catalog.list_alert_states(open_only=True)] == [
        ("dev", "checkpoint_frozen"),
        ("uat", "task_error"),
    ]
    # a new episode of a resolved alert reuses its row
    reopened = replace(after["gc_held"], first_seen=T0 + timedelta(minutes=9), resolved_at=None, episodes=2)
    catalog.update_alert_states("dev", lambda s: [reopened])
    assert len(catalog.list_alert_states("dev")) == 2
    kinds = [(e.kind, (e.details or {}).get("key")) for e in catalog.list_events(cluster="dev")]
    assert kinds == [
        ("log_backup.alert_opened", "checkpoint_frozen"),
        ("log_backup.alert_opened", "gc_held"),
        ("log_backup.alert_notified", "checkpoint_frozen"),  # at notified_at (#13: the audit shows it)
        ("log_backup.alert_resolved", "gc_held"),
        ("log_backup.alert_opened", "gc_held"),
    ]
    with pytest.raises(ValueError, match="belongs to cluster 'uat'"):
        catalog.update_alert_states("dev", lambda s: [alert("uat", "task_error", 2)])


def test_concurrent_alert_updates_make_one_row(catalog_url: str, catalog: Catalog) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def bump(i: int) -> None:
        cat = Catalog.from_url(catalog_url)
        try:
            barrier.wait()

            def change(states: Mapping[str, AlertState]) -> list[AlertState]:
                old = states.get("checkpoint_lag")
                if old is None:
                    return [alert("dev", "checkpoint_lag", i)]
                return [replace(old, occurrences=old.occurrences + 1)]

            cat.update_alert_states("dev", change)
        except BaseException as exc:
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [state] = catalog.list_alert_states("dev")
    assert state.occurrences == 4, "each update saw the one before it"


def test_migration_3_upgrades_a_catalog_in_use(catalog_url: str) -> None:
    engine = create_catalog_engine(catalog_url)
    try:
        assert mig.migrate(engine, mig.MIGRATIONS[:2]).to_version == 2
        with engine.begin() as conn:  # a row written by the version-2 code (today's rows have later columns)
            values = {"cluster": "dev", "kind": "full", "status": "running", "verified": False, "try_number": 1}
            conn.execute(
                metadata.tables["backups"]
                .insert()
                .values(id="dev-full-1", storage_uri="s3://b/dev", started_at=T0, **values)
            )
        report = mig.migrate(engine)
        assert report.applied[0].startswith("3: log backup checks") and report.from_version == 2
        cat = Catalog(engine)
        assert [b.id for b in cat.list_backups()] == ["dev-full-1"]
        assert cat.list_log_backup_checks("dev") == [] and cat.list_alert_states() == []
        with engine.connect() as conn:
            assert {"log_backup_checks", "log_backup_alerts"} <= set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ restore drills (#6)


def drill(drill_id: str, cluster: str, target: str = "scratch1", **kw: object) -> DrillRecord:
    values: dict[str, object] = {
        "id": drill_id,
        "cluster": cluster,
        "target": target,
        "mode": "snapshot",
        "status": DrillStatus.RUNNING,
        "started_at": T0,
        "dag_id": f"tidb_restore_drill__{cluster}",
        "run_id": f"scheduled__{drill_id}",
    }
    values.update(kw)
    return DrillRecord(**values)  # type: ignore[arg-type]


def test_a_drill_holds_its_scratch_until_recorded(catalog: Catalog) -> None:
    held = catalog.claim_scratch(
        drill("dev-drill-1", "dev", restore_ts=ts(1), backups_used=("a", "b")), stale_after=timedelta(hours=6)
    )
    assert (
        held.status is DrillStatus.RUNNING
        and held.backups_used == ("a", "b")
        and held.restore_time == tso.to_datetime(ts(1))
    )
    with pytest.raises(
        ScratchInUseError, match="scratch cluster scratch1 is in use by drill dev-drill-1 of cluster dev"
    ):
        catalog.claim_scratch(drill("prod-drill-1", "prod"), stale_after=timedelta(hours=6))
    # another scratch cluster is free; a retry of the same drill takes its own row back
    assert catalog.claim_scratch(drill("prod-drill-2", "prod", target="scratch2"), stale_after=timedelta(hours=6))
    assert (
        catalog.claim_scratch(drill("dev-drill-1", "dev", try_number=2), stale_after=timedelta(hours=6)).try_number == 2
    )
    done = replace(
        held,
        status=DrillStatus.PASSED,
        restore_seconds=12.5,
        validation_seconds=4.0,
        tables_checked=7,
        rows_checked=123_456_789_012,
        mismatches=0,
        gx_evaluated=53,
        gx_success_ratio=1.0,
        data_docs_uri="s3://tidbops-backups/dev/drills/dev-drill-1/data_docs/index.html",
        scratch_dropped=True,
        details={"tables": [{"table": "shop.orders", "ok": True}], "cleared": ["shop"]},
        finished_at=T0 + timedelta(minutes=3),
    )
    saved = catalog.save_drill(done)
    assert saved.rto_seconds == 16.5 and saved.rows_checked == 123_456_789_012 and saved.details == done.details
    assert catalog.get_drill("dev-drill-1") == saved
    assert catalog.claim_scratch(drill("prod-drill-1", "prod"), stale_after=timedelta(hours=6)).holds_target
    kinds = [e.kind for e in catalog.list_events(cluster="dev")]
    assert kinds == ["drill.started", "drill.restarted", "drill.passed"]


def test_a_dead_drill_lets_go_of_its_scratch(catalog: Catalog) -> None:
    catalog.claim_scratch(drill("prod-drill-1", "prod"), stale_after=timedelta(hours=6))
    taken = catalog.claim_scratch(drill("dev-drill-1", "dev"), stale_after=timedelta(0))  # prod's hold lapsed
    assert taken.holds_target
    dead = catalog.get_drill("prod-drill-1")
    assert dead is not None and dead.status is DrillStatus.FAILED and dead.error and "abandoned" in dead.error
    # the same DAG running again: its earlier run is over, whatever the age of its row
    catalog.claim_scratch(drill("dev-drill-2", "dev", run_id="scheduled__2"), stale_after=timedelta(hours=6))
    assert catalog.get_drill("dev-drill-1").status is DrillStatus.FAILED  # type: ignore[union-attr]
    assert [d.id for d in catalog.list_drills(target="scratch1", status="running")] == ["dev-drill-2"]
    assert any(e.kind == "drill.abandoned" for e in catalog.list_events(cluster="prod"))


def test_failed_drills_keep_their_error_redacted_and_list_newest_first(catalog: Catalog) -> None:
    for i in range(3):
        catalog.save_drill(
            drill(
                f"dev-drill-{i}",
                "dev",
                status=DrillStatus.FAILED,
                started_at=T0 + timedelta(days=i),
                error=f"restore: BRError: s3://b/x?secret-access-key=abc{i} refused",
            )
        )
    listed = catalog.list_drills("dev", limit=2)
    assert [d.id for d in listed] == ["dev-drill-2", "dev-drill-1"]
    assert listed[0].error == "restore: BRError: s3://b/x?secret-access-key=*** refused"
    assert catalog.list_drills("prod") == [] and catalog.get_drill("nope") is None


def test_concurrent_claims_give_the_scratch_to_one_drill(catalog_url: str, catalog: Catalog) -> None:
    barrier = threading.Barrier(3)
    won: list[str] = []
    errors: list[BaseException] = []

    def claim(name: str) -> None:
        cat = Catalog.from_url(catalog_url)
        try:
            barrier.wait()
            cat.claim_scratch(drill(f"{name}-drill-1", name), stale_after=timedelta(hours=6))
            won.append(name)
        except ScratchInUseError:
            pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("dev", "uat", "prod")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(won) == 1
    assert [d.cluster for d in catalog.list_drills(target="scratch1", status="running")] == won


# ------------------------------------------------------------------------------------- restores (#7)


def restore(restore_id: str, **kw: object) -> RestoreRecord:
    values: dict[str, object] = {
        "id": restore_id,
        "source": "dev",
        "target": "scratch1",
        "status": RestoreStatus.SUCCEEDED,
        "requested_by": "dba",
        "reason": "INC-1: bad DELETE",
        "requested_at": T0,
        "restore_point": "2024-07-01T02:41:07+01:00",
        "restore_ts": tso.from_datetime(T0),
        "mode": "pitr",
        "tables": ("shop.orders", "crm.*"),
        "dry_run": False,
        "validate_after": True,
        "backups_used": ("dev-full-1",),
        "request": {"source_cluster": "dev", "tables": ["shop.orders", "crm.*"], "dry_run": False},
        "plan": {"commands": ["br restore point --pd 127.0.0.1:1 ..."], "expected_seconds": 12.5},
        "restore_seconds": 9.5,
        "validation_seconds": 2.25,
        "validation_ok": True,
        "rows_checked": 6000,
        "dag_id": "tidb_restore",
        "run_id": "manual__1",
        "finished_at": T0 + timedelta(minutes=1),
        **kw,
    }
    return RestoreRecord(**values)  # type: ignore[arg-type]


def test_a_restore_round_trips_and_a_retried_record_replaces_it(catalog: Catalog) -> None:
    rid = make_restore_id("dev", T0, dag_id="tidb_restore", run_id="manual__1")
    assert rid == make_restore_id("dev", T0, dag_id="tidb_restore", run_id="manual__1")  # every try: one id
    assert rid.startswith("dev-restore-20240701t010000z-")
    error = "restore: BRError: ?secret-access-key=abc"
    first = restore(rid, status=RestoreStatus.FAILED, error=error, restore_seconds=None)
    saved = catalog.save_restore(first)
    assert saved.status is RestoreStatus.FAILED and saved.error == "restore: BRError: ?secret-access-key=***"
    again = catalog.save_restore(restore(rid))
    assert again == restore(rid) and again.rto_seconds == 11.75
    assert catalog.get_restore(rid) == restore(rid) and catalog.get_restore("nope") is None
    assert [r.id for r in catalog.list_restores("dev")] == [rid]
    events = [e for e in catalog.list_events(cluster="dev") if e.kind.startswith("restore.")]
    assert sorted(e.kind for e in events) == ["restore.failed", "restore.requested", "restore.succeeded"]


def test_restores_list_newest_first_by_source_and_target(catalog: Catalog) -> None:
    for i, (source, target) in enumerate((("dev", "scratch1"), ("dev", "scratch2"), ("prod", "prod"))):
        refused = {"status": RestoreStatus.REFUSED, "plan": None, "restore_ts": None, "mode": None}
        at = T0 + timedelta(hours=i)
        catalog.save_restore(restore(f"{source}-restore-{i}", source=source, target=target, requested_at=at, **refused))
    assert [r.id for r in catalog.list_restores()] == ["prod-restore-2", "dev-restore-1", "dev-restore-0"]
    assert [r.id for r in catalog.list_restores("dev")] == ["dev-restore-1", "dev-restore-0"]
    assert [r.id for r in catalog.list_restores(target="prod")] == ["prod-restore-2"]
    assert catalog.list_restores(limit=1)[0].plan is None


def test_a_slow_query_harvest_with_names_past_the_key_columns_is_stored(catalog: Catalog) -> None:
    """A forged slow log's 100-character DB and user names: a strict MySQL-family server stores them cut."""
    from tidbops.slowlog.aggregate import DailyAggregates
    from tidbops.slowlog.parser import SlowQueryEntry
    from tidbops.slowlog.store import load_with_baseline, save_harvest

    day = datetime(2026, 11, 10, tzinfo=UTC)
    table = DailyAggregates(since=day.timestamp(), until=(day + timedelta(days=1)).timestamp(), day_tz=UTC)
    for i, db in enumerate(("d" * 100, "d" * 99 + "x")):
        table.add_entry(SlowQueryEntry(
            time=(day + timedelta(hours=i)).timestamp(), day="2026-11-10", utc_offset=0, query_time=1.5,
            digest="ab" * 32, plan_digest="", db=db, user="u" * 100, host="h", sql="SELECT 1;",
        ), "tidb-0")  # fmt: skip
    save_harvest(catalog, "dev", "files:x", table, start=day, end=day + timedelta(days=1))
    stored = load_with_baseline(catalog, "dev", "2026-11-10", 0).stats
    assert len(stored) == 2 and all(len(k.db) == 64 and len(k.user) == 64 for k in stored)
