"""The ``restores`` table (on-demand restores, #7) on SQLite: records, round trip, upsert, listing, migration 5.

The same round trip runs against MariaDB in ``tests/integration/catalog/test_catalog_backends.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from tidbops import tso
from tidbops.catalog import migrations as mig
from tidbops.catalog.errors import CatalogSchemaError
from tidbops.catalog.records import (
    BACKUP_ID,
    BackupKind,
    RestoreRecord,
    RestoreStatus,
    make_backup_id,
    make_restore_id,
)
from tidbops.catalog.schema import backups, metadata
from tidbops.catalog.store import Catalog

pytestmark = pytest.mark.unit

T0 = datetime(2024, 7, 1, 1, 0, 0, 123456, tzinfo=UTC)


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/catalog/tidbops_catalog.db"


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog.from_url(url(tmp_path))
    cat.migrate()
    yield cat
    cat.close()


def restore(restore_id: str = "dev-restore-1", **kw: Any) -> RestoreRecord:
    values: dict[str, Any] = {
        "id": restore_id,
        "source": "dev",
        "target": "scratch1",
        "status": RestoreStatus.SUCCEEDED,
        "requested_by": "dba",
        "reason": "INC-1: a bad DELETE on shop.orders",
        "requested_at": T0,
        "restore_point": "2024-07-01T02:41:07+01:00",
        "restore_ts": tso.from_datetime(T0),
        "mode": "pitr",
        "tables": ("shop.orders", "crm.*"),
        "dry_run": False,
        "validate_after": True,
        "backups_used": ("dev-full-1", "dev-incr-2"),
        "request": {"source_cluster": "dev", "tables": ["shop.orders", "crm.*"], "dry_run": False, "n": 1.5},
        "plan": {"commands": [["br", "restore", "point", "--pd", "127.0.0.1:1"]], "expected_seconds": 12.5},
        "restore_seconds": 9.5,
        "validation_seconds": 2.25,
        "validation_ok": True,
        "rows_checked": 6000,
        "error": None,
        "dag_id": "tidb_restore",
        "run_id": "manual__2024-07-01T01:00:00+00:00",
        "finished_at": T0 + timedelta(minutes=1, microseconds=7),
        **kw,
    }
    return RestoreRecord(**values)


# --------------------------------------------------------------------------------------------- records


def test_status_values() -> None:
    assert [s.value for s in RestoreStatus] == ["dry_run", "refused", "succeeded", "failed"]
    assert RestoreStatus("dry_run") is RestoreStatus.DRY_RUN
    assert restore(status="refused").status is RestoreStatus.REFUSED  # a plain string is coerced


def test_record_times_in_utc_and_sequences_as_tuples() -> None:
    plus2 = timezone(timedelta(hours=2))
    r = restore(requested_at=T0.astimezone(plus2), tables=["a.b"], backups_used=["x"])
    assert r.requested_at == T0 and r.requested_at.tzinfo is UTC
    assert r.tables == ("a.b",) and r.backups_used == ("x",)
    assert r.restore_time is not None and abs(r.restore_time - T0) < timedelta(milliseconds=1)
    with pytest.raises(ValueError, match="no time zone"):
        restore(requested_at=datetime(2024, 7, 1))
    with pytest.raises(ValueError, match="no time zone"):
        restore(finished_at=datetime(2024, 7, 1))


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"id": "Not/A/Path"}, "not a valid backup id"),
        ({"mode": "logical"}, "restore mode 'logical' is not one of"),
        ({"restore_ts": 0}, "positive TSO"),
        ({"source": "s" * 65}, "source is 65 characters long"),
        ({"status": "running"}, "is not a valid RestoreStatus"),
    ],
)
def test_record_refuses(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        restore(**kw)


def test_rto_is_restore_plus_validation_when_the_restore_ran() -> None:
    assert restore().rto_seconds == 11.75
    assert restore(validation_seconds=None).rto_seconds == 9.5
    assert restore(restore_seconds=None, status=RestoreStatus.REFUSED).rto_seconds is None


def test_restore_ids_are_one_per_run_and_safe_in_paths() -> None:
    rid = make_restore_id("Dev", T0, dag_id="tidb_restore", run_id="manual__1")
    assert rid == make_restore_id("Dev", T0 + timedelta(0), dag_id="tidb_restore", run_id="manual__1")
    assert rid != make_restore_id("Dev", T0, dag_id="tidb_restore", run_id="manual__2")
    assert rid.startswith("dev-restore-20240701t010000z-") and BACKUP_ID.match(rid)
    assert "/" not in rid and rid == rid.lower()
    # without a run: random, still valid
    a, b = (make_restore_id("dev", T0, dag_id=None, run_id=None) for _ in range(2))
    assert a != b and BACKUP_ID.match(a)
    with pytest.raises(ValueError, match="no time zone"):
        make_restore_id("dev", datetime(2024, 7, 1), dag_id="d", run_id="r")


# ------------------------------------------------------------------------------------------- the table


def test_round_trip_is_exact(catalog: Catalog) -> None:
    original = restore()
    saved = catalog.save_restore(original)
    assert saved == original
    got = catalog.get_restore(original.id)
    assert got == original
    assert got is not None and got.requested_at.tzinfo is UTC and got.finished_at is not None
    assert got.finished_at.tzinfo is UTC and got.finished_at == T0 + timedelta(minutes=1, microseconds=7)
    assert isinstance(got.tables, tuple) and isinstance(got.backups_used, tuple)
    assert got.status is RestoreStatus.SUCCEEDED
    assert catalog.get_restore("nope") is None


def test_a_minimal_refused_request_round_trips(catalog: Catalog) -> None:
    refused = RestoreRecord(
        id="prod-restore-1",
        source="prod",
        target="prod",
        status=RestoreStatus.REFUSED,
        requested_by=None,
        reason="because",
        requested_at=T0,
        restore_point="latest",
        error="confirm: type 'prod' to restore over it",
    )
    assert catalog.save_restore(refused) == refused
    got = catalog.get_restore(refused.id)
    assert got == refused and got is not None
    assert got.plan is None and got.tables == () and got.request == {} and got.rto_seconds is None


def test_a_second_save_replaces_the_row(catalog: Catalog) -> None:
    first = restore(
        status=RestoreStatus.DRY_RUN,
        restore_seconds=None,
        validation_seconds=None,
        validation_ok=None,
        rows_checked=None,
        finished_at=None,
    )
    assert catalog.save_restore(first) == first
    failed = replace(first, status=RestoreStatus.FAILED, error="restore: BRError: s3://b/x?secret-access-key=abc")
    saved = catalog.save_restore(failed)
    assert saved.status is RestoreStatus.FAILED
    assert saved.error == "restore: BRError: s3://b/x?secret-access-key=***"  # the catalog keeps no secret
    done = catalog.save_restore(restore())  # the retried record task
    assert done == restore() and catalog.get_restore(done.id) == restore()
    assert [r.id for r in catalog.list_restores()] == [done.id]  # one row, not three
    # the audit: the request once (with its reason), then each outcome; the source's, by who asked (#13)
    events = [e for e in catalog.list_events(cluster="dev") if e.kind.startswith("restore.")]
    assert [e.kind for e in events] == ["restore.requested", "restore.dry_run", "restore.failed", "restore.succeeded"]
    assert {e.actor for e in events} == {"dba"} and {e.category for e in events} == {"restore"}
    assert [e.status for e in events] == ["requested", "dry_run", "failed", "succeeded"]
    assert "INC-1: a bad DELETE on shop.orders" in events[0].message and events[0].time == T0
    assert "secret-access-key=***" in events[2].message and "abc" not in events[2].message
    assert catalog.list_events(cluster="scratch1") == []


def test_list_newest_first_with_filters_and_limit(catalog: Catalog) -> None:
    rows = [("dev", "scratch1", 0), ("dev", "scratch2", 2), ("prod", "prod", 1), ("uat", "scratch1", 3)]
    for source, target, hours in rows:
        catalog.save_restore(
            restore(f"{source}-{target}", source=source, target=target, requested_at=T0 + timedelta(hours=hours))
        )
    assert [r.id for r in catalog.list_restores()] == ["uat-scratch1", "dev-scratch2", "prod-prod", "dev-scratch1"]
    assert [r.id for r in catalog.list_restores("dev")] == ["dev-scratch2", "dev-scratch1"]
    assert [r.id for r in catalog.list_restores(target="scratch1")] == ["uat-scratch1", "dev-scratch1"]
    assert [r.id for r in catalog.list_restores("dev", target="scratch1")] == ["dev-scratch1"]
    assert [r.id for r in catalog.list_restores(limit=2)] == ["uat-scratch1", "dev-scratch2"]
    assert catalog.list_restores("nobody") == []


def test_same_time_lists_by_id_descending(catalog: Catalog) -> None:
    for rid in ("dev-restore-a", "dev-restore-c", "dev-restore-b"):
        catalog.save_restore(restore(rid))
    assert [r.id for r in catalog.list_restores()] == ["dev-restore-c", "dev-restore-b", "dev-restore-a"]


# ------------------------------------------------------------------------------------------- migration


def test_migration_5_is_the_restores_table_and_is_idempotent(catalog: Catalog) -> None:
    assert mig.LATEST_VERSION == len(mig.MIGRATIONS) >= 5
    assert mig.MIGRATIONS[4].version == 5 and "restores" in mig.MIGRATIONS[4].name
    assert catalog.migrate().changed is False
    with catalog.engine.begin() as conn:
        mig.MIGRATIONS[4].apply(conn)  # re-runnable, as after a crash before its version row
        insp = inspect(conn)
        columns = [c["name"] for c in insp.get_columns("restores")]
        indexes = {ix["name"] for ix in insp.get_indexes("restores")}
    assert columns == [c.name for c in metadata.tables["restores"].columns]
    assert indexes == {"ix_restores_source_requested", "ix_restores_target_requested"}
    assert catalog.schema_version() == mig.LATEST_VERSION


def test_an_existing_version_4_catalog_migrates_to_5_and_keeps_its_rows(tmp_path: Path) -> None:
    old = Catalog.from_url(url(tmp_path))
    assert mig.migrate(old.engine, mig.MIGRATIONS[:4]).to_version == 4
    with pytest.raises(CatalogSchemaError, match=f"schema version 4, older than {mig.LATEST_VERSION}"):
        old.list_restores()  # the code refuses a catalog older than it knows
    backup_id = make_backup_id("dev", BackupKind.FULL, T0, dag_id="d", run_id="r")
    with old.engine.begin() as conn:  # a row written by the version-4 code
        values = {"cluster": "dev", "kind": "full", "status": "running", "verified": False}
        conn.execute(backups.insert().values(id=backup_id, storage_uri="s3://b/dev", started_at=T0, **values))
        assert "restores" not in inspect(conn).get_table_names()
    old.close()

    cat = Catalog.from_url(url(tmp_path))
    report = cat.migrate()
    assert (report.from_version, report.to_version) == (4, mig.LATEST_VERSION)
    assert report.applied[0] == f"5: {mig.MIGRATIONS[4].name}"
    kept = cat.get(backup_id)
    assert kept is not None and kept.started_at == T0
    assert cat.save_restore(restore()) == restore()
    assert Catalog.from_url(url(tmp_path)).migrate().applied == ()
    cat.close()


def test_no_credential_reaches_a_row(catalog: Catalog) -> None:
    """Whatever a caller puts in free text or JSON, the catalog keeps it redacted (one place: the column types)."""
    secret = "hunter2-Zq9x"
    catalog.save_restore(restore(
        reason=f"INC-2 after mysql://root:{secret}@db/shop leaked",
        request={"source_cluster": "dev", "password": secret, "note": f"s3://b?secret-access-key={secret}"},
        plan={"commands": [["br", "restore", "--crypter.key", secret]]},
        error=f"CREATE USER x IDENTIFIED BY '{secret}' failed",
    ))  # fmt: skip
    catalog.add_event("restore.failed", f"with AWS_SECRET_ACCESS_KEY={secret}", cluster="dev",
                      details={"url": f"http://a:{secret}@h/"})  # fmt: skip
    with catalog.engine.connect() as conn:
        dump = "\n".join(str(row) for table in ("restores", "events") for row in conn.exec_driver_sql(
            f"SELECT * FROM {table}"))  # fmt: skip
    assert secret not in dump and "***" in dump
    row = catalog.get_restore("dev-restore-1")
    assert (
        row is not None and row.request["password"] == "***" and row.reason.startswith("INC-2 after mysql://root:***@")
    )
