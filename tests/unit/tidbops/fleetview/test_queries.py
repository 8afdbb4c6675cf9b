"""Fleet rows, red/amber/green, the cluster view and the audit, read from a real SQLite catalog (#13)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.catalog import Clock
from tidbops import tso
from tidbops.catalog.records import (
    AlertState,
    BackupKind,
    BackupStatus,
    DrillRecord,
    DrillStatus,
    LogBackupCheck,
    NewBackup,
    RestoreRecord,
    RestoreStatus,
)
from tidbops.catalog.store import Catalog
from tidbops.config import load_fleet
from tidbops.fleetview.models import AuditQuery, ClusterPolicy
from tidbops.fleetview.queries import (
    AUDIT_CATEGORIES,
    AUDIT_CSV_COLUMNS,
    audit_csv,
    audit_page,
    category_of,
    cluster_view,
    fleet_rows,
    iter_audit,
    plan_summary,
    policies_from_fleet,
)
from tidbops.logbackup import CHECKPOINT_FROZEN

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock_start() -> datetime:
    return NOW - 30 * 24 * HOUR


def policy(name: str = "dev", **kw: object) -> ClusterPolicy:
    values: dict[str, object] = {
        "cluster": name,
        "env": "dev",
        "log_backup": True,
        "max_checkpoint_lag_s": 600.0,
        "window_promise_s": 7 * 86400.0,
    }
    values.update(kw)
    return ClusterPolicy(**values)  # type: ignore[arg-type]


def backup(
    cat: Catalog,
    clock: Clock,
    when: datetime,
    *,
    cluster: str = "dev",
    kind: BackupKind = BackupKind.FULL,
    base: tuple[str, int] | None = None,
    ok: bool = True,
    verified: bool | None = True,
    by: str = "scheduled",
    size: int = 1000,
) -> tuple[str, int]:
    bid = f"{cluster}-{kind.short}-{when.strftime('%Y%m%dt%H%M%Sz')}-0000"
    clock.now = when
    cat.start_backup(
        NewBackup(
            id=bid,
            cluster=cluster,
            kind=kind,
            storage_uri=f"s3://b/{cluster}/{bid}",
            started_at=when,
            base_backup_id=base[0] if base else None,
            last_backup_ts=base[1] if base else None,
            dag_id=f"tidb_backup_{kind.value}__{cluster}",
            run_id=f"scheduled__{when.isoformat()}",
            triggered_by=by,
            scheduled_for=when - timedelta(minutes=3),
        )
    )
    ts = tso.from_datetime(when + timedelta(seconds=5))
    if not ok:
        cat.fail_backup(bid, "BR exited 1\nsecond line", finished_at=when + timedelta(minutes=2))
        return bid, ts
    cat.finish_backup(bid, backup_ts=ts, size_bytes=size, br_duration_s=42.0, finished_at=when + timedelta(minutes=2))
    if verified is not None:
        clock.now = when + timedelta(minutes=3)
        cat.mark_verified(bid, verified, "files match" if verified else "a file is missing")
    return bid, ts


def log_check(cat: Catalog, at: datetime, *, cluster: str = "dev", status: str = "NORMAL", lag: float = 30.0,
              window_days: float = 8.0) -> None:  # fmt: skip
    checkpoint = tso.from_datetime(at - timedelta(seconds=lag))
    cat.add_log_backup_check(
        LogBackupCheck(
            cluster=cluster,
            checked_at=at,
            status=status,
            healthy=status == "NORMAL",
            task_name=f"pitr-{cluster}",
            checkpoint_ts=checkpoint if status != "ABSENT" else None,
            lag_seconds=lag if status != "ABSENT" else None,
            window_start_ts=tso.from_datetime(at - timedelta(days=window_days)),
            window_end_ts=checkpoint,
        )
    )


def drill(cat: Catalog, at: datetime, *, cluster: str = "dev", passed: bool = True, n: int = 0) -> str:
    record = DrillRecord(
        id=f"{cluster}-drill-{at.strftime('%Y%m%dt%H%M%Sz')}-{n:04d}",
        cluster=cluster,
        target="scratch1",
        mode="snapshot",
        status=DrillStatus.PASSED if passed else DrillStatus.FAILED,
        started_at=at,
        restore_seconds=100.0,
        validation_seconds=20.5,
        mismatches=0 if passed else 2,
        error=None if passed else "shop.orders: 2 chunks differ",
        run_id=f"scheduled__{at.isoformat()}",
        finished_at=at + timedelta(minutes=5),
    )
    cat.save_drill(record)
    return record.id


def healthy(cat: Catalog, clock: Clock, cluster: str = "dev") -> dict[str, str]:
    full, full_ts = backup(cat, clock, NOW - 5 * HOUR, cluster=cluster)
    incr, _ = backup(cat, clock, NOW - 2 * HOUR, cluster=cluster, kind=BackupKind.INCREMENTAL, base=(full, full_ts))
    log_check(cat, NOW - 10 * timedelta(minutes=1), cluster=cluster)
    drill_id = drill(cat, NOW - 2 * 24 * HOUR, cluster=cluster)
    clock.now = NOW
    return {"full": full, "incr": incr, "drill": drill_id}


def row_of(cat: Catalog, pol: ClusterPolicy | None = None):  # type: ignore[no-untyped-def]
    (row,) = fleet_rows(cat, [pol or policy()], NOW)
    return row


# --------------------------------------------------------------------------------------------- fleet


def test_a_healthy_cluster_is_green_with_its_facts(catalog: Catalog, clock: Clock) -> None:
    ids = healthy(catalog, clock)
    row = row_of(catalog)
    assert (row.rag, row.reasons) == ("green", ())
    assert row.last_full is not None and row.last_full.id == ids["full"] and row.last_full.verified
    assert row.last_full.scheduled_for == NOW - 5 * HOUR - timedelta(minutes=3)
    assert row.last_full.started_at == NOW - 5 * HOUR  # the real time, not the slot
    assert row.last_incremental is not None and row.last_incremental.base_backup_id == ids["full"]
    assert row.last_full_success == NOW - 5 * HOUR + timedelta(minutes=2)
    assert row.last_verified is not None and abs(row.last_verified - (NOW - 2 * HOUR)) < timedelta(seconds=6)
    assert row.storage_bytes == 2000
    assert row.log is not None and row.log.status == "NORMAL" and row.log.lag_s == 30.0 and not row.log.frozen
    assert row.log.window_start is not None and row.log.window_end is not None
    assert row.last_drill is not None and row.last_drill.rto_s == 120.5 and row.last_drill.status == "passed"
    assert row.last_drill_success == NOW - 2 * 24 * HOUR + timedelta(minutes=5)
    assert row.validation_failures == 0 and row.last_restore is None


Breaker = Callable[[Catalog, Clock], None]


def _stale(cat: Catalog, clock: Clock) -> None:
    pass  # judged with a policy that allows 1 h


def _failed_drill(cat: Catalog, clock: Clock) -> None:
    drill(cat, NOW - HOUR, passed=False, n=1)


def _paused(cat: Catalog, clock: Clock) -> None:
    log_check(cat, NOW - timedelta(minutes=1), status="PAUSE")


def _lag(cat: Catalog, clock: Clock) -> None:
    log_check(cat, NOW - timedelta(minutes=1), lag=900.0)


def _frozen(cat: Catalog, clock: Clock) -> None:
    state = AlertState(cluster="dev", key=CHECKPOINT_FROZEN, severity="critical", message="frozen",
                       first_seen=NOW - HOUR, last_seen=NOW)  # fmt: skip
    cat.update_alert_states("dev", lambda s: [state])


def _unverified(cat: Catalog, clock: Clock) -> None:
    backup(cat, clock, NOW - HOUR, verified=None)


def _verify_failed(cat: Catalog, clock: Clock) -> None:
    backup(cat, clock, NOW - HOUR, verified=False)


def _attempt_failed(cat: Catalog, clock: Clock) -> None:
    backup(cat, clock, NOW - HOUR, ok=False)


def _old_drill(cat: Catalog, clock: Clock) -> None:
    pass  # judged with a policy that wants a drill every day


def _short_window(cat: Catalog, clock: Clock) -> None:
    log_check(cat, NOW - timedelta(minutes=1), window_days=2)


def _lag_near(cat: Catalog, clock: Clock) -> None:
    log_check(cat, NOW - timedelta(minutes=1), lag=500.0)


@pytest.mark.parametrize(
    ("breaker", "pol", "rag", "reason"),
    [
        pytest.param(
            _stale, {"stale_backup_s": 3600.0}, "red", "newest verified backup is 1h 59m old (limit 1h)", id="stale"
        ),
        pytest.param(_failed_drill, {}, "red", "failed: shop.orders: 2 chunks differ", id="drill-failed"),
        pytest.param(_paused, {}, "red", "log backup is not running: the last check found it PAUSE", id="paused"),
        pytest.param(_lag, {}, "red", "checkpoint lag 15m is over its limit 10m", id="lag"),
        pytest.param(_frozen, {}, "red", "checkpoint is frozen", id="frozen"),
        pytest.param(_unverified, {}, "amber", "is not verified yet", id="unverified"),
        pytest.param(_verify_failed, {}, "amber", "failed verification", id="verify-failed"),
        pytest.param(_attempt_failed, {}, "amber", "last backup attempt dev-full-", id="attempt-failed"),
        pytest.param(
            _old_drill, {"drill_max_age_s": 86400.0}, "amber", "no drill passed in 1d 23h (limit 1d)", id="old-drill"
        ),
        pytest.param(_short_window, {}, "amber", "PITR window 1d 23h is shorter than the 7d", id="window"),
        pytest.param(_lag_near, {}, "amber", "over 80% of its limit", id="lag-near"),
    ],
)
def test_each_rule_turns_the_row(
    catalog: Catalog, clock: Clock, breaker: Breaker, pol: dict[str, float], rag: str, reason: str
) -> None:
    healthy(catalog, clock)
    breaker(catalog, clock)
    row = row_of(catalog, policy(**pol))
    assert row.rag == rag, row.reasons
    assert any(reason in r for r in row.reasons), row.reasons


def test_no_backup_at_all_is_red_and_log_off_skips_the_log_rules(catalog: Catalog) -> None:
    row = row_of(catalog, policy(log_backup=False, drills=False))
    assert row.rag == "red" and row.reasons == ("no restorable backup: no succeeded full backup in the catalog",)
    assert row.last_full is None and row.log is None and row.storage_bytes == 0 and row.max_checkpoint_lag_s is None


def test_a_policy_without_drills_expects_none(catalog: Catalog, clock: Clock) -> None:
    backup(catalog, clock, NOW - HOUR)
    log_check(catalog, NOW - timedelta(minutes=1))
    assert row_of(catalog).rag == "amber" and row_of(catalog).reasons == ("no drill has passed yet",)
    assert row_of(catalog, policy(drills=False)).rag == "green"


def test_never_checked_log_is_amber(catalog: Catalog, clock: Clock) -> None:
    backup(catalog, clock, NOW - HOUR)
    row = row_of(catalog, policy(drills=False))
    assert (row.rag, row.reasons) == ("amber", ("log backup is enabled but has never been checked",))


def test_rows_follow_the_policies_and_keep_clusters_apart(catalog: Catalog, clock: Clock) -> None:
    healthy(catalog, clock, "dev")
    healthy(catalog, clock, "uat")
    drill(catalog, NOW - HOUR, cluster="uat", passed=False, n=3)
    rows = fleet_rows(catalog, [policy("uat"), policy("prod"), policy("dev")], NOW)
    assert [(r.cluster, r.rag) for r in rows] == [("uat", "red"), ("prod", "red"), ("dev", "green")]
    assert rows[0].validation_failures == 1 and rows[2].validation_failures == 0
    assert fleet_rows(catalog, [], NOW) == []


def test_last_restore_is_the_newest_from_or_into(catalog: Catalog, clock: Clock) -> None:
    healthy(catalog, clock)
    for i, (source, target) in enumerate((("dev", "scratch1"), ("uat", "dev"))):
        catalog.save_restore(restore(f"r{i}", source, target, NOW - timedelta(hours=3 - i)))
    row = row_of(catalog)
    assert row.last_restore is not None and row.last_restore.id == "r1" and row.last_restore.target == "dev"


def restore(rid: str, source: str, target: str, at: datetime, **kw: object) -> RestoreRecord:
    values: dict[str, object] = {
        "id": rid,
        "source": source,
        "target": target,
        "status": RestoreStatus.SUCCEEDED,
        "requested_by": "dba",
        "reason": "INC-7: rows deleted by mistake",
        "requested_at": at,
        "restore_point": "latest",
        "restore_ts": tso.from_datetime(at),
        "mode": "pitr",
        "dry_run": False,
        "plan": {
            "mode": "pitr",
            "steps": [{"kind": "point", "backup_id": "dev-full-1", "storage_uri": "s3://b", "backup_ts": 1}],
            "restore_time": "2026-12-01T09:00:00Z",
            "tables": ["shop.orders"],
        },
        "finished_at": at + HOUR,
    }
    values.update(kw)
    return RestoreRecord(**values)  # type: ignore[arg-type]


def test_plan_summary_is_one_line() -> None:
    plan = {
        "mode": "snapshot",
        "steps": [
            {"kind": "full", "backup_id": "dev-full-1"},
            {"kind": "incremental", "backup_id": "dev-incr-2"},
        ],
        "tables": [f"db.t{i}" for i in range(7)],
        "wipe": ["db.t0"],
    }
    assert plan_summary(plan) == (
        "snapshot: full dev-full-1 → incremental dev-incr-2; tables db.t0, db.t1, db.t2, db.t3, db.t4 and 2 more; "
        "drops 1 table(s) on the target first"
    )
    assert plan_summary(restore("r", "dev", "dev", NOW).plan) == (
        "pitr: full dev-full-1 → log to 2026-12-01T09:00:00Z; tables shop.orders"
    )
    assert plan_summary(None) is None


def test_policies_from_the_fleet_config() -> None:
    fleet = load_fleet(Path(__file__).resolve().parents[4] / "include" / "config" / "clusters.yaml")
    pols = {p.cluster: p for p in policies_from_fleet(fleet)}
    sources = [c.name for c in fleet.sources()]
    assert list(pols) == sources and all(not fleet.clusters[n].scratch for n in pols)
    for name, pol in pols.items():
        cfg = fleet.clusters[name]
        assert pol.log_backup is cfg.log_backup.enabled
        assert pol.max_checkpoint_lag_s == cfg.log_backup.max_checkpoint_lag
        assert pol.drills is (cfg.drill.target is not None)
        if cfg.log_backup.enabled:
            assert pol.window_promise_s == (cfg.objectives.min_retention or cfg.retention.keep_days * 86400.0)
        else:
            assert pol.window_promise_s is None
        if cfg.objectives.backup_every is not None:
            assert pol.stale_backup_s == cfg.objectives.backup_every + 7200.0


# ---------------------------------------------------------------------------------------- cluster view


def test_cluster_view_lists_history(catalog: Catalog, clock: Clock) -> None:
    ids = healthy(catalog, clock)
    failed, _ = backup(catalog, clock, NOW - HOUR, ok=False)
    catalog.save_restore(restore("dev-restore-1", "dev", "scratch1", NOW - 3 * HOUR))
    catalog.save_restore(restore("uat-restore-1", "uat", "scratch1", NOW - 3 * HOUR))
    state = AlertState(cluster="dev", key="checkpoint_lag", severity="critical", message="lag 15m",
                       first_seen=NOW - 3 * HOUR, last_seen=NOW - 2 * HOUR, resolved_at=NOW - HOUR)  # fmt: skip
    catalog.update_alert_states("dev", lambda s: [state])
    view = cluster_view(catalog, policy(), NOW)
    assert [b.id for b in view.backups] == [failed, ids["incr"], ids["full"]]  # newest first
    assert view.backups[0].status == "failed" and view.backups[0].error == "BR exited 1\nsecond line"
    assert view.backups[1].backup_ts is not None and view.backups[1].br_duration_s == 42.0
    assert [d.id for d in view.drills] == [ids["drill"]]
    assert [r.id for r in view.restores] == ["dev-restore-1"]
    assert view.restores[0].plan_summary is not None and view.restores[0].requested_by == "dba"
    assert [(a.key, a.open) for a in view.alerts] == [("checkpoint_lag", False)]
    assert view.slow_queries is None
    assert view.summary.cluster == "dev" and view.summary.rag == "amber"  # the last attempt failed
    assert len(cluster_view(catalog, policy(), NOW, backups_limit=1).backups) == 1


def test_cluster_view_maps_the_newest_slow_query_report(catalog: Catalog, clock: Clock) -> None:
    from tidbops.catalog.schema import slow_query_reports

    report = {
        "day": "2026-11-30",
        "top": [
            {
                "digest": "d1",
                "sample_sql": "SELECT 1",
                "count": 9,
                "total_query_time": 4.5,
                "avg_query_time": 0.5,
                "p95_query_time": 0.9,
            }
        ],
        "regressions": [
            {
                "digest": "d2",
                "metric": "p95",
                "avg": 1.0,
                "baseline_avg": 0.1,
                "p95": 1.9,
                "baseline_p95": 0.2,
                "ratio": 9.5,
                "count": 20,
                "baseline_count": 40,
                "sample_sql": "SELECT 2",
            }
        ],
        "new_digests": [{"digest": "d3", "count": 3}],
    }
    with catalog.engine.begin() as conn:
        for day, rep in (("2026-11-29", {"day": "2026-11-29"}), ("2026-11-30", report)):
            conn.execute(slow_query_reports.insert().values(cluster="dev", day=day, report=rep, created_at=NOW))
    view = cluster_view(catalog, policy(), NOW).slow_queries
    assert view is not None and view.day == "2026-11-30"
    assert view.top[0].digest == "d1" and view.top[0].p95_s == 0.9 and view.top[0].count == 9
    assert view.regressions[0].change == "p95 0.2 s → 1.9 s (9.5×)"
    assert [d.digest for d in view.new_digests] == ["d3"]


# ---------------------------------------------------------------------------------------------- audit


def test_every_transition_is_audited_with_actor_and_status(catalog: Catalog, clock: Clock) -> None:
    healthy(catalog, clock)
    backup(catalog, clock, NOW - HOUR, by="manual:alice", ok=False)
    catalog.save_restore(restore("dev-restore-1", "dev", "scratch1", NOW - 30 * timedelta(minutes=1)))
    page = audit_page(catalog, AuditQuery(limit=1000))
    seen = {(e.kind, e.actor, e.status, e.category) for e in page.items}
    assert ("backup.started", "schedule", "running", "backup") in seen
    assert ("backup.succeeded", "schedule", "succeeded", "backup") in seen
    assert ("backup.verified", "airflow", "passed", "verification") in seen
    assert ("backup.failed", "alice", "failed", "backup") in seen
    assert ("drill.passed", "schedule", "passed", "drill") in seen
    assert ("restore.requested", "dba", "requested", "restore") in seen
    assert ("restore.succeeded", "dba", "succeeded", "restore") in seen
    failed = next(e for e in page.items if e.kind == "backup.failed")
    assert "\n" not in failed.message and "BR exited 1 second line" in failed.message
    times = [(e.time, e.id) for e in page.items]
    assert times == sorted(times, reverse=True)  # newest first


def seed_audit(cat: Catalog) -> None:
    kinds = ("backup.succeeded", "backup.failed", "restore.requested", "drill.passed", "log_backup.alert_opened")
    for i in range(120):
        cat.add_event(
            kinds[i % 5],
            f"event {i}",
            cluster=("dev", "uat", "prod")[i % 3],
            actor=("dba", "schedule")[i % 2],
            time=NOW - timedelta(minutes=i // 2),  # pairs share a time: the id breaks the tie
        )


def pages(cat: Catalog, query: AuditQuery) -> list[list[int]]:
    out: list[list[int]] = []
    cursor = None
    while True:
        page = audit_page(cat, query.model_copy(update={"before_id": cursor}))
        out.append([e.id for e in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return out


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({}, id="none"),
        pytest.param({"cluster": "dev"}, id="cluster"),
        pytest.param({"actor": "dba", "category": "backup"}, id="actor+category"),
        pytest.param({"status": "failed", "clusters": ("dev", "uat")}, id="status+visible"),
        pytest.param({"since": NOW - 20 * timedelta(minutes=1), "until": NOW - 5 * timedelta(minutes=1)}, id="range"),
    ],
)
def test_keyset_pages_have_no_gaps_or_duplicates_and_filters_combine(catalog: Catalog, filters: dict) -> None:  # type: ignore[type-arg]
    seed_audit(catalog)
    everything = audit_page(catalog, AuditQuery(limit=1000)).items
    query = AuditQuery(limit=7, **filters)

    def matches(e) -> bool:  # type: ignore[no-untyped-def]
        return (
            ("cluster" not in filters or e.cluster == filters["cluster"])
            and ("clusters" not in filters or e.cluster in filters["clusters"])
            and ("actor" not in filters or e.actor == filters["actor"])
            and ("category" not in filters or e.category == filters["category"])
            and ("status" not in filters or e.status == filters["status"])
            and ("since" not in filters or e.time >= filters["since"])
            and ("until" not in filters or e.time <= filters["until"])
        )

    expected = [e.id for e in everything if matches(e)]
    got = pages(catalog, query)
    assert expected and [i for p in got for i in p] == expected
    assert all(len(p) == 7 for p in got[:-1]) and len(got[-1]) <= 7
    assert [e.id for e in iter_audit(catalog, query)] == expected
    assert [e.id for e in iter_audit(catalog, query, max_rows=3)] == expected[:3]


def test_invisible_clusters_are_left_out(catalog: Catalog) -> None:
    seed_audit(catalog)
    catalog.add_event("cluster.checked", "no cluster")
    assert audit_page(catalog, AuditQuery(clusters=("dev",), cluster="uat")).items == ()
    assert audit_page(catalog, AuditQuery(clusters=())).items == ()
    visible = audit_page(catalog, AuditQuery(clusters=("uat",), limit=1000)).items
    assert visible and {e.cluster for e in visible} == {"uat"}
    assert any(e.cluster is None for e in audit_page(catalog, AuditQuery(limit=1000)).items)


def test_csv_has_a_header_and_the_same_rows(catalog: Catalog) -> None:
    seed_audit(catalog)
    catalog.add_event(
        "restore.failed", '=HYPERLINK("http://x")\nsecond line', cluster="dev", actor="dba", time=NOW + HOUR
    )
    events = list(iter_audit(catalog, AuditQuery(cluster="dev")))
    rows = list(csv.reader(io.StringIO("".join(audit_csv(events)))))
    assert tuple(rows[0]) == AUDIT_CSV_COLUMNS
    assert [int(r[0]) for r in rows[1:]] == [e.id for e in events]
    assert rows[1][8] == '\'=HYPERLINK("http://x") second line'  # one line, not a formula
    assert rows[2][2] == "dev" and rows[2][1].endswith("Z")


def test_categories() -> None:
    assert set(AUDIT_CATEGORIES) >= {"backup", "verification", "drill", "restore", "alert", "retention", "log"}
    assert category_of("backup.verify_failed") == "verification"
    assert category_of("backup.expired") == "backup"
    assert category_of("log_backup.alert_resolved") == "alert"
    assert category_of("log_backup.resumed") == "log"
    assert category_of("retention.run") == "retention"
    assert category_of("storage.usage") == "other"


# ------------------------------------------------------------------------------ the fleet summary


def _summary_row(cat: Catalog, cluster: str = "dev") -> tuple[int, int | None]:
    from sqlalchemy import select

    from tidbops.catalog.schema import fleet_summary

    with cat.reading() as conn:
        version, computed = conn.execute(
            select(fleet_summary.c.version, fleet_summary.c.computed_version).where(fleet_summary.c.cluster == cluster)
        ).one()
    return int(version), computed


def test_every_write_makes_the_kept_summary_stale_and_the_next_read_sees_it(catalog: Catalog, clock: Clock) -> None:
    healthy(catalog, clock)
    first = row_of(catalog)
    version, computed = _summary_row(catalog)
    assert computed == version  # kept after the read
    assert row_of(catalog) == first  # read again from the kept summary: the same row

    # each kind of write: a new backup, a verification, a log check, a drill, a restore into it
    full, _ = backup(catalog, clock, NOW - HOUR, verified=None)
    assert _summary_row(catalog)[0] > version
    row = row_of(catalog)
    assert row.last_full is not None and row.last_full.id == full and not row.last_full.verified
    assert row.storage_bytes == 3000 and row.rag == "amber"
    catalog.mark_verified(full, True, "files match")
    assert row_of(catalog).last_full.verified  # type: ignore[union-attr]
    log_check(catalog, NOW - timedelta(minutes=1), status="PAUSE")
    assert row_of(catalog).log.status == "PAUSE"  # type: ignore[union-attr]
    failed = drill(catalog, NOW - HOUR, passed=False, n=1)
    row = row_of(catalog)
    assert row.last_drill is not None and row.last_drill.id == failed and row.validation_failures == 1
    assert row.last_drill_success == NOW - 2 * 24 * HOUR + timedelta(minutes=5)  # still the passed one
    catalog.save_restore(
        RestoreRecord(
            id="r-into-dev", source="uat", target="dev", status=RestoreStatus.SUCCEEDED, requested_by="dba",
            reason="refresh dev", requested_at=NOW - timedelta(minutes=30), restore_point="latest",
        )
    )  # fmt: skip
    assert row_of(catalog).last_restore.id == "r-into-dev"  # type: ignore[union-attr]
    catalog.set_status(full, BackupStatus.EXPIRED, "retention")
    assert row_of(catalog).storage_bytes == 2000


def test_a_catalog_filled_without_summaries_is_computed_once_and_kept(catalog: Catalog, clock: Clock) -> None:
    from sqlalchemy import delete

    from tidbops.catalog.schema import fleet_summary

    healthy(catalog, clock, "dev")
    healthy(catalog, clock, "uat")
    with catalog.engine.begin() as conn:  # as after a bulk load, or rows written by an older tidbops
        conn.execute(delete(fleet_summary))
    rows = fleet_rows(catalog, [policy("dev"), policy("uat"), policy("new")], NOW)
    assert [r.rag for r in rows] == ["green", "green", "red"]
    for cluster in ("dev", "uat", "new"):
        version, computed = _summary_row(catalog, cluster)
        assert computed == version
    assert fleet_rows(catalog, [policy("dev"), policy("uat"), policy("new")], NOW) == rows


def test_a_summary_computed_before_a_racing_write_is_not_kept(catalog: Catalog, clock: Clock) -> None:
    from tidbops.catalog import summary

    healthy(catalog, clock)
    row_of(catalog)
    with catalog.reading() as conn:  # a reader computes at version v …
        _current, versions = summary.read(conn, ["dev"])
        computed_then = summary.compute(conn, ["dev"])
    full, _ = backup(catalog, clock, NOW - HOUR)  # … a writer commits v + 1 meanwhile …
    assert versions["dev"] is not None and versions["dev"] < _summary_row(catalog)[0]
    with catalog.engine.begin() as conn:  # … the reader's store must not claim v + 1
        summary.store(conn, computed_then, versions)
    now_version, computed = _summary_row(catalog)
    assert computed != now_version
    assert row_of(catalog).last_full.id == full  # type: ignore[union-attr]


def test_a_read_only_catalog_still_answers_from_the_tables(tmp_path: Path, clock: Clock) -> None:
    from sqlalchemy import delete, func, select

    from tidbops.catalog.schema import fleet_summary

    path = tmp_path / "ro.db"
    cat = Catalog.from_url(f"sqlite:///{path}", clock=clock)
    cat.migrate()
    healthy(cat, clock)
    expected = row_of(cat)
    with cat.engine.begin() as conn:
        conn.execute(delete(fleet_summary))
    ro = Catalog.from_url(f"sqlite:///file:{path}?mode=ro&uri=true", clock=clock)  # a read-only user
    try:
        assert row_of(ro) == expected  # computed from the tables, not kept
    finally:
        ro.close()
    with cat.reading() as conn:
        assert conn.execute(select(func.count()).select_from(fleet_summary)).scalar_one() == 0
    cat.close()


def test_kept_facts_read_back_as_computed_whatever_slot_shares_a_row(catalog: Catalog, clock: Clock) -> None:
    from tidbops.catalog import summary

    # slots that name one row (the newest full is the newest succeeded and the newest verified one) are kept
    # once and referenced; JSON sorts the keys, so a reference may come before the slot it names
    healthy(catalog, clock, "dev")
    backup(catalog, clock, NOW - 3 * HOUR, cluster="solo")
    with catalog.reading() as conn:
        computed = summary.compute(conn, ["dev", "solo"])
    for cluster in ("dev", "solo"):
        kept = summary._kept(computed[cluster])
        assert any(isinstance(v, str) and v.startswith("@") for v in kept.values())
        assert summary._loaded(json.loads(json.dumps(kept, sort_keys=True))) == computed[cluster]


def test_a_catalog_rebuilt_under_the_same_url_is_not_answered_from_what_was_built_before(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "catalog.db"
    first = Catalog.from_url(f"sqlite:///{path}", clock=clock)
    first.migrate()
    healthy(first, clock)
    assert row_of(first).rag == "green"  # built and held by this process, by the facts' version
    first.close()
    path.unlink()
    again = Catalog.from_url(f"sqlite:///{path}", clock=clock)  # the same URL, other content
    again.migrate()
    backup(again, clock, NOW - HOUR, ok=False)
    row = row_of(again)
    assert row.rag == "red" and row.last_full is not None and row.last_full.status == "failed"
    again.close()
