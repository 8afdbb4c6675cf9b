"""Objectives and compliance (#16): each objective met, breached and undeclared, over constructed histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    BackupStatus,
    DrillRecord,
    DrillStatus,
    LogBackupCheck,
    NewBackup,
)
from tidbops.catalog.store import Catalog
from tidbops.compliance import (
    Outcome,
    backup_gaps,
    check_backup_every,
    check_cluster,
    check_compliance,
    check_min_retention,
    check_rpo,
    check_rto,
)
from tidbops.config import ClusterConfig
from tidbops.freshness import DrillBasis, drill_freshness

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
H = 3600.0
DAY = 86400.0


def cluster(log: bool = False, keep_days: float = 14, uri: str = "s3://backups", **objectives: Any) -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "name": "prod",
            "env": "prod",
            "pd": ["pd-0:2379"],
            "tidb_conn_id": "tidb_prod",
            "storage": {"uri": uri},
            "log_backup": {"enabled": log, "task_name": "pitr-prod"} if log else {},
            "retention": {"keep_days": keep_days},
            "objectives": objectives,
        }
    )


def backup(
    backup_id: str,
    at: datetime,
    *,
    kind: BackupKind = BackupKind.FULL,
    status: BackupStatus = BackupStatus.SUCCEEDED,
    verified: bool | None = True,
    base: str | None = None,
    cluster_name: str = "prod",
) -> BackupRecord:
    """``verified``: True passed, False failed, None never checked."""
    ts = tso.from_datetime(at) if status is not BackupStatus.FAILED else None
    return BackupRecord(
        id=backup_id,
        cluster=cluster_name,
        kind=kind,
        status=status,
        storage_uri=f"s3://backups/prod/{backup_id}",
        started_at=at,
        verified=bool(verified),
        verified_at=None if verified is None else at + timedelta(hours=1),
        backup_ts=ts,
        backup_time=tso.to_datetime(ts) if ts else None,
        base_backup_id=base,
        finished_at=at + timedelta(minutes=10),
    )


def check(checkpoint: datetime, *, window: bool = True) -> LogBackupCheck:
    cp = tso.from_datetime(checkpoint)
    start = tso.from_datetime(checkpoint - timedelta(days=3))
    return LogBackupCheck(
        cluster="prod",
        checked_at=NOW - timedelta(minutes=1),
        status="NORMAL",
        healthy=True,
        checkpoint_ts=cp,
        log_min_ts=start,
        log_max_ts=cp,
        log_range_source="metadata",
        window_start_ts=start if window else None,
        window_end_ts=cp if window else None,
    )


def drill(
    drill_id: str, finished: datetime | None, restore_s: float | None, validate_s: float = 0.0, *, passed: bool = True
) -> DrillRecord:
    status = DrillStatus.RUNNING if finished is None else DrillStatus.PASSED if passed else DrillStatus.FAILED
    return DrillRecord(
        id=drill_id,
        cluster="prod",
        target="scratch1",
        mode="snapshot",
        status=status,
        started_at=(finished or NOW) - timedelta(hours=2),
        restore_seconds=restore_s,
        validation_seconds=validate_s,
        finished_at=finished,
    )


def daily(days: int, *, hour: int = 2, skip: tuple[int, ...] = (), verified: bool | None = True) -> list[BackupRecord]:
    """A verified full backup at ``hour``:00 UTC on each of the last ``days`` days (day 1 = yesterday)."""
    midnight = NOW.replace(hour=0, minute=0)
    return [
        backup(f"prod-full-{d}", midnight - timedelta(days=d) + timedelta(hours=hour), verified=verified)
        for d in range(days, 0, -1)
        if d not in skip
    ]


# ------------------------------------------------------------------------------------------------ rpo


def test_rpo_breached_by_an_old_log_checkpoint_names_the_cluster_objective_and_value() -> None:
    got = check_rpo("prod", 15 * 60, [], check(NOW - timedelta(hours=2, minutes=3)), log_enabled=True, now=NOW)
    assert got.outcome is Outcome.BREACHED and got.measured == 2 * H + 180
    assert got.line == (
        "prod: rpo 15m breached: newest recovery point is 2h 3m old (log checkpoint 2026-12-10T09:57:00Z)"
    )


def test_rpo_met_by_a_fresh_log_checkpoint() -> None:
    got = check_rpo("prod", 15 * 60, daily(3), check(NOW - timedelta(minutes=4)), log_enabled=True, now=NOW)
    assert got.outcome is Outcome.MET and got.measured == 240 and "log checkpoint" in got.finding


def test_rpo_without_log_backup_uses_the_newest_verified_succeeded_backup() -> None:
    rows = [
        backup("prod-full-old", NOW - timedelta(hours=5)),
        backup("prod-incr-unverified", NOW - timedelta(hours=1), kind=BackupKind.INCREMENTAL, verified=None),
        backup("prod-full-badverify", NOW - timedelta(minutes=50), verified=False),
        backup("prod-full-expired", NOW - timedelta(minutes=40), status=BackupStatus.EXPIRED),
        backup("prod-full-failed", NOW - timedelta(minutes=30), status=BackupStatus.FAILED),
    ]
    stale_check = check(NOW - timedelta(minutes=1))  # ignored: log backup is not enabled
    got = check_rpo("prod", 6 * H, rows, stale_check, log_enabled=False, now=NOW)
    assert got.outcome is Outcome.MET and got.measured == 5 * H
    assert "verified backup prod-full-old at 2026-12-10T07:00:00Z" in got.finding
    assert check_rpo("prod", 4 * H, rows, None, log_enabled=False, now=NOW).breached


def test_rpo_a_newer_verified_backup_beats_a_stuck_checkpoint() -> None:
    rows = [backup("prod-full-1", NOW - timedelta(minutes=10))]
    got = check_rpo("prod", 15 * 60, rows, check(NOW - timedelta(hours=6)), log_enabled=True, now=NOW)
    assert got.outcome is Outcome.MET and got.measured == 600 and "prod-full-1" in got.finding


def test_rpo_a_checkpoint_without_a_pitr_window_is_not_a_recovery_point() -> None:
    rows = [backup("prod-full-1", NOW - timedelta(hours=3))]
    got = check_rpo("prod", H, rows, check(NOW - timedelta(minutes=1), window=False), log_enabled=True, now=NOW)
    assert got.breached and got.measured == 3 * H and "prod-full-1" in got.finding
    nothing = check_rpo("prod", H, [], check(NOW, window=False), log_enabled=True, now=NOW)
    assert nothing.line == (
        "prod: rpo 1h breached: no recovery point (no backups recorded, "
        "and the last log backup check found no PITR window)"
    )


def test_rpo_with_nothing_recorded_is_a_breach_not_an_error() -> None:
    got = check_rpo("prod", H, [], None, log_enabled=True, now=NOW)
    assert got.breached and got.measured is None
    assert got.finding == "no recovery point (no backups recorded, no log backup check recorded)"


# ------------------------------------------------------------------------------------------------ rto


def test_rto_uses_the_latest_finished_drill_with_an_rto() -> None:
    drills = [
        drill("prod-drill-running", None, None),
        drill("prod-drill-no-rto", NOW - timedelta(hours=1), None, passed=False),  # failed before restoring
        drill("prod-drill-new", NOW - timedelta(days=1), 40 * 60, 5 * 60),
        drill("prod-drill-old", NOW - timedelta(days=8), 10 * 60),
    ]
    met = check_rto("prod", H, drills)
    assert met.outcome is Outcome.MET and met.measured == 45 * 60
    assert "took 45m to restore and validate (prod-drill-new, passed 2026-12-09T12:00:00Z)" in met.finding
    breached = check_rto("prod", 30 * 60, drills)
    assert breached.breached
    assert breached.line.startswith("prod: rto 30m breached: the last measured drill took 45m ")


def test_rto_counts_a_failed_drill_that_measured_one_and_says_so() -> None:
    got = check_rto("prod", H, [drill("prod-drill-f", NOW - timedelta(hours=3), 2 * H, passed=False)])
    assert got.breached and got.measured == 2 * H and "failed" in got.finding


def test_rto_without_any_drill_is_a_breach() -> None:
    assert check_rto("prod", H, []).finding == "no drill recorded"
    only_running = check_rto("prod", H, [drill("prod-drill-r", None, None)])
    assert only_running.breached and only_running.finding == "no finished drill measured an RTO (1 recorded)"


# --------------------------------------------------------------------------------------- backup_every


def test_backup_every_day_met_over_30_complete_days() -> None:
    got = check_backup_every("prod", DAY, daily(40), now=NOW)
    assert got.outcome is Outcome.MET and got.measured == 0.0
    assert got.finding == "a verified backup in each of the 30 periods since 2026-11-10T00:00:00Z"


def test_backup_every_reports_each_gap_merging_consecutive_missing_periods() -> None:
    rows = daily(40, skip=(3, 4, 10))
    rows.append(backup("prod-full-unverified", NOW.replace(hour=3) - timedelta(days=3), verified=None))
    got = check_backup_every("prod", DAY, rows, now=NOW)
    assert got.breached and got.measured == 2 * DAY
    assert [(str(g), g.periods) for g in got.gaps] == [
        ("2026-11-30T00:00:00Z → 2026-12-01T00:00:00Z", 1),
        ("2026-12-06T00:00:00Z → 2026-12-08T00:00:00Z", 2),
    ]
    assert got.line == (
        "prod: backup_every 1d breached: 3 of 30 periods since 2026-11-10T00:00:00Z without a verified backup "
        "(longest gap 2d): 2026-11-30T00:00:00Z → 2026-12-01T00:00:00Z, 2026-12-06T00:00:00Z → 2026-12-08T00:00:00Z"
    )


def test_backup_every_counts_backups_expired_or_deleted_since_and_not_the_period_under_way() -> None:
    rows = [
        backup(b.id, b.started_at, status=BackupStatus.DELETED if i % 2 else BackupStatus.EXPIRED)
        for i, b in enumerate(daily(31))
    ]
    assert not check_backup_every("prod", DAY, rows, now=NOW).breached  # today (no backup yet) is not judged
    failed = [backup(b.id, b.started_at, status=BackupStatus.FAILED) for b in daily(31)]
    assert check_backup_every("prod", DAY, failed, now=NOW).measured == 30 * DAY


def test_backup_every_a_young_cluster_is_judged_from_its_first_backup() -> None:
    judged, gaps, since = backup_gaps(daily(5), DAY, now=NOW)
    assert (judged, gaps, since) == (5, (), datetime(2026, 12, 5, tzinfo=UTC))  # from the first backup's period
    first_today = [backup("prod-full-0", NOW - timedelta(hours=1))]
    got = check_backup_every("prod", DAY, first_today, now=NOW)
    assert got.outcome is Outcome.MET and got.finding.startswith("no complete period to judge yet")


def test_backup_every_hourly_and_with_no_backups() -> None:
    rows = [backup(f"prod-incr-{h}", NOW - timedelta(hours=h, minutes=-5)) for h in range(1, 24 * 31)]
    assert check_backup_every("prod", H, rows, now=NOW).finding.startswith("a verified backup in each of the 720")
    none = check_backup_every("prod", H, [], now=NOW)
    assert none.breached and none.finding == "no backups recorded"


def test_backup_every_longer_than_half_the_lookback_judges_two_periods() -> None:
    # 20-day periods from the epoch: …, 10-14 → 11-03, 11-03 → 11-23, and 11-23 → 12-13 under way
    rows = [backup("prod-full-a", NOW - timedelta(days=50)), backup("prod-full-b", NOW - timedelta(days=5))]
    judged, gaps, since = backup_gaps(rows, 20 * DAY, now=NOW)
    assert (judged, since) == (2, datetime(2026, 10, 14, tzinfo=UTC))
    assert [(str(g), g.periods) for g in gaps] == [("2026-11-03T00:00:00Z → 2026-11-23T00:00:00Z", 1)]


# -------------------------------------------------------------------------------------- min_retention


def test_min_retention_uses_the_oldest_succeeded_restorable_backup() -> None:
    rows = [
        backup("prod-full-ancient", NOW - timedelta(days=30), status=BackupStatus.EXPIRED),
        backup("prod-incr-orphan", NOW - timedelta(days=20), kind=BackupKind.INCREMENTAL, base="prod-full-gone"),
        backup("prod-full-bad", NOW - timedelta(days=15), verified=False),
        backup("prod-full-1", NOW - timedelta(days=9, hours=1), verified=None),
        backup("prod-incr-1", NOW - timedelta(days=8), kind=BackupKind.INCREMENTAL, base="prod-full-1"),
    ]
    met = check_min_retention("prod", 7 * DAY, rows, now=NOW)
    assert met.outcome is Outcome.MET and met.measured == 9 * DAY + H
    assert met.finding == "the oldest retained point is 9d 1h old (full backup prod-full-1 at 2026-12-01T11:00:00Z)"
    breached = check_min_retention("prod", 10 * DAY, rows, now=NOW)
    assert breached.line.startswith("prod: min_retention 10d breached: the oldest retained point is 9d 1h old")


def test_min_retention_with_nothing_retained() -> None:
    assert check_min_retention("prod", DAY, [], now=NOW).finding == "no backups recorded"
    failed = [backup("prod-full-x", NOW - timedelta(days=3), status=BackupStatus.FAILED)]
    got = check_min_retention("prod", DAY, failed, now=NOW)
    assert got.breached and "no retained restore point" in got.finding


# ------------------------------------------------------------------------------------------- together


def test_undeclared_objectives_are_reported_not_breached() -> None:
    report = check_cluster(cluster(), [], None, [], now=NOW)
    assert report.ok and [c.outcome for c in report.checks] == [Outcome.NOT_DECLARED] * 4
    assert [c.line for c in report.checks] == [
        "prod: rpo not declared",
        "prod: rto not declared",
        "prod: backup_every not declared",
        "prod: min_retention not declared",
    ]
    assert "no backups recorded" in report.notes and any("no objectives declared" in n for n in report.notes)


def test_a_cluster_meeting_everything_and_the_json_shape() -> None:
    goals = {"rpo": "15m", "rto": "1h", "backup_every": "1d", "min_retention": "7d"}
    report = check_cluster(
        cluster(log=True, **goals),
        [*daily(40), backup("dev-full-x", NOW, cluster_name="dev")],
        check(NOW - timedelta(minutes=2)),
        [drill("prod-drill-1", NOW - timedelta(days=2), 1200)],
        now=NOW,
    )
    assert report.ok and report.notes == ()
    doc = report.to_dict()
    assert doc["ok"] is True and doc["breaches"] == [] and doc["checked_at"] == "2026-12-10T12:00:00.000Z"
    assert [(o["objective"], o["outcome"], o["target_seconds"]) for o in doc["objectives"]] == [
        ("rpo", "met", 900.0),
        ("rto", "met", 3600.0),
        ("backup_every", "met", 86400.0),
        ("min_retention", "met", 604800.0),
    ]
    assert doc["objectives"][0]["measured_seconds"] == 120.0


def test_a_retention_shorter_than_min_retention_is_noted() -> None:
    report = check_cluster(cluster(keep_days=3, min_retention="7d"), daily(2), None, [], now=NOW)
    assert [c.objective for c in report.breaches] == ["min_retention"]
    assert report.notes == (
        "retention.keep_days (3-day) is shorter than min_retention (7d): retention may expire points the "
        "objective needs",
    )


def test_check_compliance_reads_the_catalog(tmp_path: Path) -> None:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/c.db")
    cat.migrate()
    try:
        empty = check_compliance(cat, cluster(rpo="1h"), now=NOW)
        assert [c.line for c in empty.breaches] == ["prod: rpo 1h breached: no recovery point (no backups recorded)"]
        at = NOW - timedelta(minutes=30)
        cat.start_backup(
            NewBackup(id="prod-full-1", cluster="prod", kind=BackupKind.FULL, storage_uri="s3://b/x", started_at=at)
        )
        cat.finish_backup("prod-full-1", backup_ts=tso.from_datetime(at))
        [unverified] = check_compliance(cat, cluster(rpo="1h"), now=NOW).breaches
        assert unverified.finding.startswith("no recovery point (no verified succeeded backup)")
        cat.mark_verified("prod-full-1", True, "ok")
        assert check_compliance(cat, cluster(rpo="1h"), now=NOW).ok
    finally:
        cat.close()


# ------------------------------------------------------------------------------------- drill freshness

BASIS = {
    "tidb_version": "v8.5.0",
    "br_version": "v8.5.0",
    "encryption_method": "plaintext",
    "encryption_key_id": "none",
    "storage_uri": "s3://backups",
}


def test_a_stale_drill_breaches_a_declared_rto_and_is_flagged_either_way() -> None:
    drills = [drill("prod-drill-1", NOW - timedelta(days=1), 600)]
    now_basis = DrillBasis.from_mapping(BASIS)
    assert now_basis is not None
    stale = drill_freshness("prod", drills[0], now_basis)
    assert stale.status == "stale" and "recorded no basis" in stale.reason  # a drill from before #16
    got = check_rto("prod", H, drills, stale)
    assert got.breached and got.measured == 600 and "it no longer counts: drill prod-drill-1 of prod" in got.finding
    report = check_cluster(cluster(), [], None, drills, now=NOW, freshness=stale)
    assert report.ok and report.flags == (f"prod: drill stale: {stale.reason}; the next drill is due now",)
    assert report.to_dict()["drill_freshness"]["status"] == "stale"


def test_check_compliance_judges_the_latest_passed_drill_against_the_config(tmp_path: Path) -> None:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/c.db")
    cat.migrate()
    try:
        done = NOW - timedelta(days=2)
        cat.save_drill(replace(drill("prod-drill-1", done, 900), basis=BASIS))
        fresh = check_compliance(cat, cluster(rto="1h"), now=NOW)
        assert fresh.ok and fresh.flags == () and fresh.drill is not None and fresh.drill.status == "fresh"
        stale = check_compliance(cat, cluster(rto="1h", uri="s3://elsewhere"), now=NOW)
        [rto] = stale.breaches
        assert rto.objective == "rto" and "storage location s3://backups → s3://elsewhere" in rto.finding
        assert stale.flags and stale.flags[0].startswith("prod: drill stale: drill prod-drill-1 of prod is stale")
    finally:
        cat.close()
