"""Migration 7 (#13) up from a version-6 catalog with data: the new columns, the backfill, the indexes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tidbops.catalog import migrations as mig
from tidbops.catalog.schema import create_catalog_engine
from tidbops.catalog.store import Catalog

pytestmark = pytest.mark.unit

T0 = "2024-07-01 01:00:00.000000"


def v6_catalog(path: Path) -> str:
    """A catalog as version-6 code left it, with rows written the way that code wrote them."""
    url = f"sqlite:///{path}"
    engine = create_catalog_engine(url)
    mig.migrate(engine, mig.MIGRATIONS[:6])
    backup = (
        "INSERT INTO backups (id, cluster, kind, status, verified, storage_uri, try_number, triggered_by, started_at)"
        " VALUES (:id, 'dev', 'full', 'succeeded', 1, 's3://b/x', 1, :by, :t)"
    )
    event = "INSERT INTO events (time, cluster, kind, backup_id, message, details) VALUES (:t, :c, :k, :b, :m, :d)"
    with engine.begin() as conn:
        conn.execute(text(backup), {"id": "dev-full-1", "by": "manual:dba", "t": T0})
        conn.execute(text(backup), {"id": "dev-full-2", "by": "scheduled", "t": T0})
        conn.execute(text(backup), {"id": "dev-full-3", "by": None, "t": T0})
        conn.execute(
            text(
                "INSERT INTO restores (id, source, target, status, requested_by, reason, requested_at, restore_point,"
                " dry_run, validate_after, updated_at) VALUES ('dev-restore-1', 'dev', 'scratch1', 'refused',"
                " 'alice', 'INC-1', :t, 'latest', 0, 0, :t)"
            ),
            {"t": T0},
        )
        conn.execute(
            text(
                "INSERT INTO drills (id, cluster, target, mode, status, started_at, try_number, updated_at, run_id)"
                " VALUES ('dev-drill-1', 'dev', 'scratch1', 'snapshot', 'passed', :t, 1, :t, 'scheduled__x')"
            ),
            {"t": T0},
        )
        rows = [
            ("dev", "backup.started", "dev-full-1", None),
            ("dev", "backup.verify_failed", "dev-full-1", None),
            ("dev", "backup.succeeded", "dev-full-2", None),
            ("dev", "backup.expired", "dev-full-3", None),
            ("scratch1", "restore.refused", None, {"restore_id": "dev-restore-1"}),
            ("dev", "drill.passed", None, {"drill_id": "dev-drill-1"}),
            ("dev", "log_backup.alert_opened", None, {"key": "checkpoint_frozen"}),
            ("dev", "storage.usage", None, None),
        ]
        for cluster, kind, backup_id, details in rows:
            conn.execute(
                text(event),
                {
                    "t": T0,
                    "c": cluster,
                    "k": kind,
                    "b": backup_id,
                    "m": kind,
                    "d": None if details is None else json.dumps(details),
                },
            )
    engine.dispose()
    return url


def test_migration_7_adds_the_audit_columns_and_backfills_them(tmp_path: Path) -> None:
    url = v6_catalog(tmp_path / "catalog.db")
    catalog = Catalog.from_url(url)
    report = catalog.migrate()
    assert report.from_version == 6 and report.to_version == mig.LATEST_VERSION
    got = {(e.kind, e.actor, e.status, e.category) for e in catalog.list_events(limit=100)}
    assert got == {
        ("backup.started", "dba", "running", "backup"),
        ("backup.verify_failed", "dba", "failed", "verification"),
        ("backup.succeeded", "schedule", "succeeded", "backup"),
        ("backup.expired", "airflow", "expired", "backup"),  # no triggered_by: the platform
        ("restore.refused", "alice", "refused", "restore"),
        ("drill.passed", "schedule", "passed", "drill"),
        ("log_backup.alert_opened", None, "open", "alert"),  # nothing to tell who
        ("storage.usage", None, "info", "other"),
    }
    record = catalog.get("dev-full-1")
    assert record is not None and record.scheduled_for is None
    indexes = {ix["name"] for ix in inspect(catalog.engine).get_indexes("events")}
    assert {"ix_events_time", "ix_events_actor_time", "ix_events_category_time", "ix_events_status_time"} <= indexes
    backup_indexes = {ix["name"] for ix in inspect(catalog.engine).get_indexes("backups")}
    assert {"ix_backups_cluster_kind_started_status", "ix_backups_cluster_verified_ts"} <= backup_indexes
    # re-runnable, as a crash between a DDL and its version row needs on MySQL
    with catalog.engine.begin() as conn:
        mig.MIGRATIONS[6].apply(conn)
    assert {(e.kind, e.actor) for e in catalog.list_events(limit=100)} == {(k, a) for k, a, _, _ in got}
    catalog.close()


def test_new_rows_after_migration_carry_the_slot(tmp_path: Path) -> None:
    from tidbops.catalog.records import BackupKind, NewBackup

    catalog = Catalog.from_url(v6_catalog(tmp_path / "catalog.db"))
    catalog.migrate()
    real = datetime(2024, 7, 1, 13, 43, tzinfo=UTC)
    slot = datetime(2024, 7, 1, 1, 0, tzinfo=UTC)
    catalog.start_backup(
        NewBackup(
            id="dev-full-20240701t134300z-1",
            cluster="dev",
            kind=BackupKind.FULL,
            storage_uri="s3://b/y",
            started_at=real,
            scheduled_for=slot,
            triggered_by="scheduled",
        )
    )
    record = catalog.get("dev-full-20240701t134300z-1")
    assert record is not None and (record.started_at, record.scheduled_for) == (real, slot)
    (started,) = catalog.list_events(backup_id=record.id)
    assert started.details is not None and started.details["scheduled_for"] == "2024-07-01T01:00:00.000Z"
    with pytest.raises(ValueError, match="scheduled_for"):
        NewBackup(
            id="x-full-1",
            cluster="x",
            kind=BackupKind.FULL,
            storage_uri="s3://b",
            started_at=real,
            scheduled_for=datetime(2024, 7, 1),
        )
    catalog.close()
