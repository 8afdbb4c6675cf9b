"""What only a drill does (the restore engine's parts: tests/unit/tidbops/recovery): the restore point, the
drill's plan, its verdict and its record."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.backup import RunInfo
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, DrillRecord, DrillStatus, make_drill_id
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig, DrillConfig, EncryptionConfig, StorageConfig
from tidbops.drill import (
    DrillError,
    DrillPlan,
    NoRestorePointError,
    choose_pitr,
    choose_snapshot,
    drill_dir,
    drill_id_for,
    drill_record,
    plan_drill,
    record_drill,
    record_to_dict,
    seed_for,
    summary_line,
    verdict,
)
from tidbops.pitr import LogRange, compute_window
from tidbops.recovery.errors import NotScratchError
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
RUN = RunInfo(dag_id="tidb_restore_drill__uat", run_id="scheduled__2026-11-22", try_number=1, started_at=T0)


def source(mode: str = "snapshot", encrypted: bool = True) -> ClusterConfig:
    return ClusterConfig(
        name="uat",
        env="uat",
        pd=("pd-uat:2379",),
        tidb_conn_id="tidb_uat",
        storage=StorageConfig(uri="s3://backups/tidb", endpoint="http://minio:9000"),
        br=BRConfig(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat") if encrypted else None),
        drill=DrillConfig(target="scratch1", mode=mode),  # type: ignore[arg-type]
    )


def scratch(name: str = "scratch1", is_scratch: bool = True) -> ClusterConfig:
    return ClusterConfig(
        name=name,
        env="scratch" if is_scratch else "dev",
        pd=(f"pd-{name}:2379",),
        tidb_conn_id=f"tidb_{name}",
        storage=StorageConfig(uri="s3://scratch-unused"),
        scratch=is_scratch,
        br=BRConfig(ratelimit_mib=64),
    )


def ts(hours: float) -> int:
    return tso.from_datetime(T0 + timedelta(hours=hours))


def backup(
    backup_id: str, hours: float, kind: BackupKind = BackupKind.FULL, base: str | None = None, **kw: Any
) -> BackupRecord:
    short = "full" if kind is BackupKind.FULL else "incr"
    defaults: dict[str, Any] = {
        "status": BackupStatus.SUCCEEDED,
        "verified": True,
        "verified_at": T0 + timedelta(hours=hours, minutes=5),
        "backup_ts": ts(hours),
        "backup_time": tso.to_datetime(ts(hours)),
    }
    defaults.update(kw)
    return BackupRecord(
        id=backup_id,
        cluster="uat",
        kind=kind,
        storage_uri=f"s3://backups/tidb/uat/{short}/{backup_id}",
        started_at=T0 + timedelta(hours=hours),
        base_backup_id=base,
        last_backup_ts=None if base is None else ts(hours - 1),
        **defaults,
    )


CHAIN = [
    backup("uat-full-1", 0),
    backup("uat-incr-1", 1, BackupKind.INCREMENTAL, "uat-full-1"),
    backup("uat-incr-2", 2, BackupKind.INCREMENTAL, "uat-incr-1"),
]


# ---------------------------------------------------------------------------------- restore point


def test_snapshot_drill_restores_the_newest_verified_chain_in_order() -> None:
    steps, point, reason = choose_snapshot(CHAIN)
    assert [(s.kind, s.backup_id) for s in steps] == [
        ("full", "uat-full-1"),
        ("incremental", "uat-incr-1"),
        ("incremental", "uat-incr-2"),
    ]
    assert point == ts(2) and steps[-1].storage_uri == "s3://backups/tidb/uat/incr/uat-incr-2"
    assert "uat-incr-2" in reason and "2 incremental(s)" in reason


def test_snapshot_drill_prefers_verified_and_skips_what_failed_verification() -> None:
    unverified = [
        *CHAIN,
        backup("uat-incr-3", 3, BackupKind.INCREMENTAL, "uat-incr-2", verified=False, verified_at=None),
    ]
    _, point, reason = choose_snapshot(unverified)
    assert point == ts(2) and "uat-incr-3 is not verified yet" in reason
    bad = [*CHAIN[:2], replace(CHAIN[2], verified=False)]  # verified_at set, verified False: failed verification
    assert choose_snapshot(bad)[1] == ts(1)
    only_unverified = [replace(CHAIN[0], verified=False, verified_at=None)]
    assert "not verified against its manifest yet" in choose_snapshot(only_unverified)[2]


@pytest.mark.parametrize(
    "backups",
    [[], [replace(CHAIN[0], status=BackupStatus.FAILED, backup_ts=None)], CHAIN[1:]],
    ids=["none", "failed-full", "broken-chain"],
)
def test_nothing_restorable_is_said_so(backups: list[BackupRecord]) -> None:
    with pytest.raises(NoRestorePointError, match="no restorable snapshot backup"):
        choose_snapshot(backups)


def window(hours_of_log: float = 3) -> Any:
    log = LogRange(ts(-0.5), ts(hours_of_log))
    return compute_window("uat", CHAIN, log)


def test_pitr_point_is_drawn_with_its_seed_from_the_recent_end_of_the_window() -> None:
    now = T0 + timedelta(hours=3)
    step, point, reason = choose_pitr(window(), now, seed=42)
    assert (step, point) == choose_pitr(window(), now, seed=42)[:2]  # reproducible
    assert ts(3) - tso.compose(10 * 60 * 1000) <= point <= ts(3)
    assert step.kind == "point" and step.backup_id == "uat-full-1" and "seed 42" in reason
    others = {choose_pitr(window(), now, seed=s)[1] for s in range(20)}
    assert len(others) > 10


def test_pitr_point_after_the_checkpoint_says_the_drill_waits() -> None:
    now = T0 + timedelta(hours=3)
    _, point, reason = choose_pitr(window(hours_of_log=2.9), now, seed=7)
    assert point > ts(2.9) and "the log checkpoint" in reason and "must pass it first" in reason


def test_pitr_needs_a_window() -> None:
    no_window = compute_window("uat", CHAIN, LogRange(ts(5), ts(6)))  # the log started after every full backup
    with pytest.raises(NoRestorePointError, match="no PITR window for uat"):
        choose_pitr(no_window, T0 + timedelta(hours=6), seed=1)


def test_plans_round_trip_and_carry_what_the_steps_need() -> None:
    snap = plan_drill(source(), scratch(), RUN, T0, backups=CHAIN)
    assert (
        snap.drill_id == drill_id_for(source(), RUN) == make_drill_id("uat", T0, dag_id=RUN.dag_id, run_id=RUN.run_id)
    )
    assert snap.backups_used == ("uat-full-1", "uat-incr-1", "uat-incr-2") and snap.seed is None
    assert DrillPlan.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    now = T0 + timedelta(hours=3)
    pitr = plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN, window=window())
    assert pitr.seed == seed_for(pitr.drill_id) and pitr.log_storage_uri == "s3://backups/tidb/uat/log"
    assert pitr.steps[0].storage_uri == "s3://backups/tidb/uat/full/uat-full-1"
    assert DrillPlan.from_dict(pitr.to_dict()) == pitr
    assert plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN, window=window(), seed=5).seed == 5
    with pytest.raises(NoRestorePointError, match="needs its PITR window"):
        plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN)
    with pytest.raises(NotScratchError):
        plan_drill(source(), scratch("dev", is_scratch=False), RUN, T0, backups=CHAIN)
    with pytest.raises(ValueError, match="one 'point' step"):
        replace(pitr, log_storage_uri=None)


def test_a_drill_checks_its_scratch_again_when_it_restores() -> None:
    plan = plan_drill(source(), scratch(), RUN, T0, backups=CHAIN)
    assert (plan.drill_id, plan.cluster, plan.kind) == (plan.plan_id, "uat", "drill")
    assert plan.directory == drill_dir("uat", plan.drill_id) == f"uat/drills/{plan.drill_id}"
    fleet = {"uat": source(), "scratch1": scratch()}
    assert plan.clusters(fleet) == (source(), scratch())
    with pytest.raises(NotScratchError, match="'scratch1' is not marked scratch: true"):
        plan.clusters({**fleet, "scratch1": scratch(is_scratch=False)})
    with pytest.raises(DrillError, match="cluster 'uat' is no longer in the fleet config"):
        plan.clusters({"scratch1": scratch()})


# -------------------------------------------------------------------------------- verdict, record

GOOD = {
    "choose": {"mode": "snapshot", "target": "scratch1", "restore_ts": ts(2), "reason": "newest", "steps": [
        {"backup_id": "uat-full-1"}, {"backup_id": "uat-incr-1"}]},
    "prepare": {"target": "scratch1", "cleared": ["shop"]},
    "restore": {"restore_seconds": 12.5, "runs": [{"kind": "full"}]},
    "validate": {
        "ok": True, "tables_checked": 7, "rows_checked": 3000, "mismatches": 0, "seconds": 4.25, "failures": [],
        "tables": [{"table": "shop.orders", "ok": True}], "source_read": "history",
        "expectations": {"ok": True, "evaluated": 50, "success_ratio": 1.0, "failures": [], "suites": [],
                         "data_docs_uri": "s3://backups/tidb/uat/drills/x/data_docs/index.html"},
    },
    "drop": {"dropped": ["shop"], "dropped_ok": True},
}  # fmt: skip


def test_a_drill_passes_only_when_every_step_finished_and_nothing_differs() -> None:
    assert verdict(GOOD, {}).status is DrillStatus.PASSED
    bad_rows = {
        **GOOD,
        "validate": {**GOOD["validate"], "ok": False, "failures": ["shop.orders: (id) in (200, 400]: x"]},
    }
    v = verdict(bad_rows, {"validate": "AirflowFailException: …"})
    assert v.status is DrillStatus.FAILED and v.error and v.error.startswith("validate: AirflowFailException")
    assert v.failures == ("shop.orders: (id) in (200, 400]: x",)
    v = verdict({**bad_rows}, {})
    assert v.error == "validate: shop.orders: (id) in (200, 400]: x"
    no_restore = {**GOOD, "restore": None, "validate": None}
    assert verdict(no_restore, {"restore": "BRError: [BR:KV:ErrKVDownloadFailed]"}).error == (
        "restore: BRError: [BR:KV:ErrKVDownloadFailed]"
    )
    assert verdict(no_restore, {}).error == "restore: did not finish (no result)"
    assert verdict({**GOOD, "drop": None}, {"drop": "x"}).status is DrillStatus.PASSED  # dropping is not the verdict
    pitr_steps = ("choose", "wait", "prepare", "restore", "validate")
    assert verdict(GOOD, {}, pitr_steps).error == "wait: did not finish (no result)"
    gx = {**GOOD, "validate": {**GOOD["validate"], "ok": False, "expectations": {"failures": ["shop.orders: fresh"]}}}
    assert verdict(gx, {}).error == "validate: expectations: shop.orders: fresh"


def test_the_record_carries_the_rto_and_what_was_checked(tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=3)
    record = drill_record(
        source(), RUN, GOOD, {}, target="scratch1", report_uri="s3://b/uat/drills/x/drill.json", now=now
    )
    assert record.status is DrillStatus.PASSED and record.id == drill_id_for(source(), RUN)
    assert record.backups_used == ("uat-full-1", "uat-incr-1") and record.restore_ts == ts(2)
    assert (record.restore_seconds, record.validation_seconds, record.rto_seconds) == (12.5, 4.25, 16.75)
    assert (record.tables_checked, record.rows_checked, record.mismatches) == (7, 3000, 0)
    assert record.gx_success_ratio == 1.0 and record.scratch_dropped is True
    assert record.data_docs_uri == "s3://backups/tidb/uat/drills/x/data_docs/index.html"
    line = summary_line(record)
    assert "PASSED" in line and "RTO 16.75s (restore 12.5s + validation 4.25s)" in line and "3000 rows" in line
    failed = drill_record(source(), RUN, {"choose": None}, {"choose": "NotScratchError: 'uat' is not marked scratch"},
                          target="uat", report_uri=None, now=now)  # fmt: skip
    assert failed.status is DrillStatus.FAILED and failed.target == "uat" and failed.rto_seconds is None
    assert failed.scratch_dropped is False and "FAILED" in summary_line(failed)
    assert drill_dir("uat", record.id) == f"uat/drills/{record.id}"

    # recorded: the catalog row, and drill.json in storage; a catalog outage loses neither the report nor the run
    storage = LocalStorage(tmp_path / "store")
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    saved, notes = record_drill(record, storage=storage, catalog=catalog)
    assert notes == tuple(f"{b}: not marked at tier 3: backup {b!r} is not in the catalog" for b in record.backups_used)
    assert saved.status is DrillStatus.PASSED and catalog.get_drill(record.id) == saved
    assert json.loads(storage.read_bytes("drill.json"))["rto_seconds"] == 16.75
    assert record_to_dict(saved)["passed"] is True
    saved, notes = record_drill(failed, storage=None, catalog=None)
    assert saved is failed and notes == ("catalog unavailable: continuing without it",)


def test_drill_records_refuse_what_the_catalog_cannot_hold() -> None:
    base = DrillRecord(
        id="uat-drill-x", cluster="uat", target="scratch1", mode="snapshot", status="running", started_at=T0
    )
    assert base.status is DrillStatus.RUNNING and base.holds_target
    with pytest.raises(ValueError, match="drill mode"):
        replace(base, mode="weekly")
    with pytest.raises(ValueError, match="gx_success_ratio"):
        replace(base, gx_success_ratio=1.5)
    with pytest.raises(ValueError, match="must not carry credentials"):
        replace(base, data_docs_uri="s3://b/x?access-key=AKIA")
    with pytest.raises(ValueError, match="has no time zone"):
        replace(base, started_at=T0.replace(tzinfo=None))


def test_an_error_an_earlier_try_left_does_not_fail_a_step_that_then_succeeded() -> None:
    assert verdict(GOOD, {"restore": "BRError: from try 1", "choose": "x"}).status is DrillStatus.PASSED
    not_ok = {**GOOD, "validate": {**GOOD["validate"], "ok": False}}
    assert verdict(not_ok, {"validate": "AirflowFailException: shop.orders"}).error == (
        "validate: AirflowFailException: shop.orders"
    )
