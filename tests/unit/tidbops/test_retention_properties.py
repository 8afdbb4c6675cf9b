"""Property tests (hypothesis) of retention runs over random histories (#16).

A history of fulls, incrementals (sometimes branching), failed attempts, verifications (passed, failed,
never), holds and a log backup is written to a real SQLite catalog and a local storage directory. Then
several retention runs happen at later times, each as the DAG does it: survey, plan, apply, truncate the
log. After every run:

- every point inside the window that was restorable before the run still is: each snapshot restore point
  (its whole chain is still stored and catalogued), the state at the window's start, and every
  point-in-time target the log could reach;
- nothing retained depends on something deleted;
- the log never starts after the earliest retained full backup inside it (the anchor);
- the catalog and the storage agree (a second survey finds no difference), and a repeated run does nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.catalog import Clock
from tidbops import tso
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, NewBackup, index, restorable_chain
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, LogBackupConfig, RetentionConfig, StorageConfig
from tidbops.pitr import LogRange
from tidbops.retention import apply, plan_cluster, reconcile, survey_storage
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_counter = itertools.count()


@dataclass(frozen=True)
class Step:
    gap_hours: int
    full: bool
    outcome: str  # ok | failed
    verify: str  # passed | failed | never
    branch: bool


steps = st.lists(
    st.builds(
        Step,
        gap_hours=st.sampled_from([1, 6, 12, 24, 24, 48]),
        full=st.booleans(),
        outcome=st.sampled_from(["ok", "ok", "ok", "ok", "failed"]),
        verify=st.sampled_from(["passed", "passed", "passed", "passed", "never", "failed"]),
        branch=st.booleans(),
    ),
    min_size=1,
    max_size=24,
)


def _config(keep_hours: int, keep_full: int, log: bool) -> ClusterConfig:
    return ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri="local:///unused"),
        retention=RetentionConfig(keep_days=keep_hours / 24, keep_full=keep_full),
        log_backup=LogBackupConfig(enabled=log, task_name="dev-log" if log else None),
    )


def _store(root: LocalStorage, record: BackupRecord, manifest: bool) -> None:
    where = root.child(backup_path(record.cluster, record.kind, record.id))
    where.write_bytes("backupmeta", b"meta")
    where.write_bytes("1/sst_1.sst", b"x" * 10)
    if manifest:
        where.write_bytes(MANIFEST_NAME, b"{}")


def _build(catalog: Catalog, root: LocalStorage, clock: Clock, history: list[Step]) -> datetime:
    at = T0
    tips: list[str] = []
    ts_of: dict[str, int] = {}
    for i, step in enumerate(history):
        at += timedelta(hours=step.gap_hours)
        clock.now = at
        full = step.full or not tips
        base = None if full else (tips[0] if step.branch and len(tips) > 1 else tips[-1])
        backup_id = f"dev-{'full' if full else 'incr'}-{i:02d}"
        kind = BackupKind.FULL if full else BackupKind.INCREMENTAL
        catalog.start_backup(
            NewBackup(
                id=backup_id,
                cluster="dev",
                kind=kind,
                storage_uri=f"{root.uri}/{backup_path('dev', kind, backup_id)}",
                started_at=at - timedelta(minutes=5),
                base_backup_id=base,
                last_backup_ts=ts_of[base] if base else None,
            )
        )
        if step.outcome == "failed":
            catalog.fail_backup(backup_id, "[BR:Backup:ErrBackupGCSafepointExceeded] gc safepoint exceeded")
            _store(root, catalog.get(backup_id), manifest=False)  # type: ignore[arg-type]
            continue
        record = catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at), backup_time=at)
        ts_of[backup_id] = tso.from_datetime(at)
        _store(root, record, manifest=True)
        if step.verify != "never":
            catalog.mark_verified(backup_id, step.verify == "passed", "files ok" if step.verify == "passed" else "gone")
        tips.insert(0, backup_id) if step.branch else tips.append(backup_id)
    return at


def _restorable_points(records: list[BackupRecord]) -> dict[str, BackupRecord]:
    live = [r for r in records if r.status is BackupStatus.SUCCEEDED]
    by_id = index(live)
    return {r.id: r for r in live if r.backup_ts is not None and restorable_chain(by_id, r) is not None}


def _pitr_reachable(records: list[BackupRecord], log: LogRange | None, t: int) -> bool:
    if log is None or not log.min_ts <= t <= log.max_ts:
        return False
    fulls = _restorable_points(records)
    return any(r.is_full and log.min_ts <= (r.backup_ts or 0) <= t for r in fulls.values())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=steps,
    keep_hours=st.sampled_from([1, 12, 24, 48, 96]),
    keep_full=st.integers(1, 3),
    log_start_step=st.none() | st.integers(0, 10),
    runs=st.lists(st.sampled_from([0, 1, 6, 24, 72]), min_size=1, max_size=4),
    hold_newest_old=st.booleans(),
)
def test_retention_runs_keep_every_point_in_the_window(
    tmp_path_factory: pytest.TempPathFactory,
    history: list[Step],
    keep_hours: int,
    keep_full: int,
    log_start_step: int | None,
    runs: list[int],
    hold_newest_old: bool,
) -> None:
    base = tmp_path_factory.mktemp(f"ret{next(_counter)}")
    clock = Clock(T0)
    catalog = Catalog.from_url(f"sqlite:///{base}/c.db", clock=clock)
    catalog.migrate()
    root = LocalStorage(Path(base) / "store")
    cluster = _config(keep_hours, keep_full, log_start_step is not None)
    end = _build(catalog, root, clock, history)

    log: LogRange | None = None
    if log_start_step is not None:
        start = T0 + timedelta(hours=sum(s.gap_hours for s in history[: log_start_step + 1]) - 1)
        log = LogRange(tso.from_datetime(min(start, end)), tso.from_datetime(end))
    held_id = None
    if hold_newest_old:
        old = [r for r in catalog.list_backups("dev") if r.status is BackupStatus.SUCCEEDED]
        if old:
            held_id = old[0].id
            catalog.hold_backups("dev", [held_id], "dev-drill-x", ttl=timedelta(days=365))

    now = end
    for extra in runs:
        now += timedelta(hours=extra)
        clock.now = now
        if log is not None:
            log = LogRange(log.min_ts, tso.from_datetime(now))  # the log keeps up with time
        before = catalog.list_backups("dev")
        points_before = _restorable_points(before)
        report = plan_cluster(
            cluster,
            before,
            survey_storage(root, "dev"),
            now,
            held=catalog.held_backups("dev"),
            log_range=log,
            dry_run=False,
        )
        window_start = report.window_start
        apply(report, catalog, root)
        if report.will_delete and report.truncate_until is not None and log is not None:
            log = LogRange(report.truncate_until, log.max_ts)
        after = catalog.list_backups("dev")
        points_after = _restorable_points(after)
        context = f"run at {now}: {report.lines()}"

        # every snapshot restore point inside the window, and the state at its start, stay restorable
        for p in points_before.values():
            assert p.backup_time is not None
            if p.backup_time >= window_start:
                assert p.id in points_after, context
        before_start = [p for p in points_before.values() if p.backup_time and p.backup_time < window_start]
        if before_start:
            anchor = max(before_start, key=lambda p: p.backup_ts or 0)
            assert anchor.id in points_after, context
        # every point-in-time target inside the window the log could reach still can be reached
        if log is not None and report.log_range is not None:
            lo = max(tso.from_datetime(window_start), report.log_range.min_ts)
            hi = report.log_range.max_ts
            for k in range(9):
                t = lo + (hi - lo) * k // 8
                if _pitr_reachable(before, report.log_range, t):
                    assert _pitr_reachable(after, log, t), f"{context} t={t}"
        # nothing retained depends on something deleted
        by_id = index(after)
        for r in after:
            if r.status is BackupStatus.SUCCEEDED and r.kind is BackupKind.INCREMENTAL:
                assert restorable_chain(by_id, r) is not None, context
        # the log never starts after the earliest retained anchor
        if log is not None:
            fulls_inside = [
                r.backup_ts
                for r in after
                if r.is_full and r.status is BackupStatus.SUCCEEDED and (r.backup_ts or 0) >= report.log_range.min_ts  # type: ignore[union-attr]
            ]
            if fulls_inside:
                assert log.min_ts <= min(x for x in fulls_inside if x is not None), context
        # held backups survive
        if held_id is not None:
            assert catalog.get(held_id).status is not BackupStatus.DELETED, context  # type: ignore[union-attr]
        # catalog and storage agree, and a second run changes nothing
        assert reconcile(after, survey_storage(root, "dev")) == [], context
        if report.will_delete:
            again = plan_cluster(
                cluster, after, survey_storage(root, "dev"), now, held=catalog.held_backups("dev"), log_range=log
            )
            assert again.expire_ids == [] and again.resume == (), f"{context}\nagain: {again.lines()}"
            assert again.truncate_until is None, f"{context}\nagain: {again.lines()}"
    catalog.close()
