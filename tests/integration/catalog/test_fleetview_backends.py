"""The fleet view and the audit on a real MariaDB (a private server) and on SQLite: the same answers (#13).

The fleet query is hand-written SQL (a derived table of the clusters, correlated ``LIMIT 1`` probes), so
it runs here on both dialects, against the same data written through the catalog's own API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidbops import tso
from tidbops.catalog.records import (
    AlertState,
    BackupKind,
    DrillRecord,
    DrillStatus,
    LogBackupCheck,
    NewBackup,
    RestoreRecord,
    RestoreStatus,
)
from tidbops.catalog.store import Catalog
from tidbops.fleetview.models import AuditQuery, ClusterPolicy
from tidbops.fleetview.queries import audit_csv, audit_page, cluster_view, fleet_rows, iter_audit
from tidbops.logbackup import CHECKPOINT_FROZEN
from tidbops_playground.mariadb import MariaDBInstance

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLUSTERS = ("dev", "uat", "prod", "empty")


@pytest.fixture(params=["sqlite", "mariadb"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/catalog.db"
    else:
        server: MariaDBInstance = request.getfixturevalue("mariadb")
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS fleetview")
            cur.execute("CREATE DATABASE fleetview")
        url = f"mysql+pymysql://{server.user}:{server.password}@127.0.0.1:{server.port}/fleetview"
    cat = Catalog.from_url(url, clock=lambda: NOW)
    cat.migrate()
    fill(cat)
    yield cat
    cat.close()


def fill(cat: Catalog) -> None:
    """dev: healthy; uat: its last drill failed and its checkpoint is frozen; prod: a failed attempt after
    an unverified backup, and a restore by dba; empty: nothing."""
    for n, cluster in enumerate(("dev", "uat", "prod")):
        base = None
        for i in range(6):
            when = NOW - timedelta(hours=24 - 4 * i, minutes=n)
            kind = BackupKind.FULL if i == 0 else BackupKind.INCREMENTAL
            bid = f"{cluster}-{kind.short}-{i}"
            cat.start_backup(
                NewBackup(
                    id=bid,
                    cluster=cluster,
                    kind=kind,
                    storage_uri=f"s3://b/{bid}",
                    started_at=when,
                    base_backup_id=base[0] if base else None,
                    last_backup_ts=base[1] if base else None,
                    triggered_by="scheduled",
                    scheduled_for=when - HOUR,
                )
            )
            if cluster == "prod" and i == 5:
                cat.fail_backup(bid, "BR exited 1")
                continue
            ts = tso.from_datetime(when + timedelta(seconds=3))
            cat.finish_backup(bid, backup_ts=ts, size_bytes=100 * (i + 1), finished_at=when + timedelta(minutes=1))
            if not (cluster == "prod" and i == 4):
                cat.mark_verified(bid, True, "ok")
            base = (bid, ts)
        cat.add_log_backup_check(
            LogBackupCheck(
                cluster=cluster,
                checked_at=NOW - timedelta(minutes=5),
                status="NORMAL",
                healthy=True,
                checkpoint_ts=tso.from_datetime(NOW - timedelta(minutes=6)),
                lag_seconds=60.0,
                window_start_ts=tso.from_datetime(NOW - 10 * 24 * HOUR),
                window_end_ts=tso.from_datetime(NOW - timedelta(minutes=6)),
            )
        )
        passed = cluster != "uat"
        cat.save_drill(
            DrillRecord(
                id=f"{cluster}-drill-1",
                cluster=cluster,
                target="scratch1",
                mode="snapshot",
                status=DrillStatus.PASSED if passed else DrillStatus.FAILED,
                started_at=NOW - 2 * HOUR,
                restore_seconds=30.0,
                validation_seconds=12.0,
                mismatches=0 if passed else 3,
                run_id="scheduled__1",
                finished_at=NOW - HOUR,
            )
        )
    frozen = AlertState(
        cluster="uat",
        key=CHECKPOINT_FROZEN,
        severity="critical",
        message="frozen 10m",
        first_seen=NOW - HOUR,
        last_seen=NOW,
    )
    cat.update_alert_states("uat", lambda s: [frozen])
    cat.save_restore(
        RestoreRecord(
            id="prod-restore-1",
            source="prod",
            target="scratch1",
            status=RestoreStatus.SUCCEEDED,
            requested_by="dba",
            reason="INC-9: compare yesterday",
            requested_at=NOW - 3 * HOUR,
            restore_point="latest",
            dry_run=False,
            plan={"mode": "snapshot", "steps": []},
        )
    )


def policies() -> list[ClusterPolicy]:
    return [
        ClusterPolicy(cluster=c, env="dev", log_backup=True, max_checkpoint_lag_s=600.0, window_promise_s=7 * 86400.0)
        for c in CLUSTERS
    ]


def test_fleet_rows(catalog: Catalog) -> None:
    rows = {r.cluster: r for r in fleet_rows(catalog, policies(), NOW)}
    assert list(rows) == list(CLUSTERS)
    assert (rows["dev"].rag, rows["dev"].reasons) == ("green", ())
    assert rows["dev"].last_full is not None and rows["dev"].last_full.id == "dev-full-0"
    assert rows["dev"].last_incremental is not None and rows["dev"].last_incremental.id == "dev-incr-5"
    assert rows["dev"].storage_bytes == 2100 and rows["dev"].last_drill is not None
    assert rows["dev"].last_drill.rto_s == 42.0
    assert rows["uat"].rag == "red" and rows["uat"].log is not None and rows["uat"].log.frozen
    assert any("frozen" in r for r in rows["uat"].reasons) and any("drill" in r for r in rows["uat"].reasons)
    assert rows["uat"].validation_failures == 1
    assert rows["prod"].rag == "amber" and rows["prod"].last_restore is not None
    assert any("prod-incr-4 is not verified yet" in r for r in rows["prod"].reasons)
    assert any("last backup attempt prod-incr-5 failed" in r for r in rows["prod"].reasons)
    assert rows["empty"].rag == "red" and rows["empty"].last_full is None and rows["empty"].storage_bytes == 0


def test_cluster_view(catalog: Catalog) -> None:
    view = cluster_view(catalog, policies()[2], NOW)
    assert [b.id for b in view.backups] == [f"prod-incr-{i}" for i in (5, 4, 3, 2, 1)] + ["prod-full-0"]
    assert view.backups[1].scheduled_for == view.backups[1].started_at - HOUR
    assert [r.requested_by for r in view.restores] == ["dba"] and view.restores[0].plan_summary == "snapshot: no steps"


def test_audit_pages_and_export(catalog: Catalog) -> None:
    everything = [e.id for e in iter_audit(catalog, AuditQuery())]
    seen: list[int] = []
    cursor = None
    while True:
        page = audit_page(catalog, AuditQuery(limit=5, before_id=cursor))
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything and len(set(seen)) == len(seen) > 40
    dba = audit_page(catalog, AuditQuery(actor="dba", clusters=("prod", "dev"))).items
    assert [(e.kind, e.cluster) for e in dba] == [("restore.succeeded", "prod"), ("restore.requested", "prod")]
    assert "INC-9: compare yesterday" in dba[1].message
    lines = list(audit_csv(iter_audit(catalog, AuditQuery(actor="dba"))))
    assert len(lines) == 3 and lines[0].startswith("id,time,cluster,category")
    window = AuditQuery(category="backup", status="failed", since=NOW - HOUR, until=NOW)
    assert [e.backup_id for e in audit_page(catalog, window).items] == ["prod-incr-5"]
