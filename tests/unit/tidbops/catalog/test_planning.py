from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tidbops import tso
from tidbops.catalog.planning import plan_incremental, plan_retention
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, index, restorable_chain
from tidbops.config import ClusterConfig, RetentionConfig, StorageConfig

pytestmark = pytest.mark.unit

T0 = datetime(2024, 3, 1, tzinfo=UTC)
S, F, R, E = BackupStatus.SUCCEEDED, BackupStatus.FAILED, BackupStatus.RUNNING, BackupStatus.EXPIRED


def rec(
    backup_id: str,
    hours: float,
    base: str | None = None,
    *,
    status: BackupStatus = S,
    verified: bool | None = True,
    cluster: str = "dev",
    error: str | None = None,
) -> BackupRecord:
    """A backup at T0 + hours. verified: True, False (check failed) or None (never checked)."""
    at = T0 + timedelta(hours=hours)
    done = status in (S, E)
    base_rec_ts = None
    return BackupRecord(
        id=backup_id,
        cluster=cluster,
        kind=BackupKind.INCREMENTAL if base else BackupKind.FULL,
        status=status,
        storage_uri=f"s3://b/{cluster}/{backup_id}",
        started_at=at - timedelta(minutes=5),
        verified=bool(verified) and done,
        verified_at=at + timedelta(minutes=1) if verified is not None and done else None,
        verify_detail=None if verified or verified is None else "2 missing (store1/1.sst, backupmeta)",
        backup_ts=tso.from_datetime(at) if done else None,
        backup_time=at if done else None,
        base_backup_id=base,
        last_backup_ts=base_rec_ts,
        error=error,
    )


def cluster_config(max_chain_length: int = 3, name: str = "dev") -> ClusterConfig:
    return ClusterConfig(
        name=name,
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri="s3://tidbops-backups"),
        retention=RetentionConfig(max_chain_length=max_chain_length),
    )


NOW = T0 + timedelta(days=10)

# ------------------------------------------------------------------------------------ plan_incremental

INCREMENTAL_CASES = [
    pytest.param([], "full", None, "no succeeded full backup", id="empty"),
    pytest.param([rec("f1", 0, status=F, error="boom")], "full", None, "no succeeded full", id="only-a-failed-full"),
    pytest.param([rec("f1", 0)], "incremental", "f1", "incremental #1 of 3 on the chain of f1", id="on-a-full"),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 2, "i1")],
        "incremental",
        "i2",
        "incremental #3 of 3",
        id="extends-the-tail",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 2, "i1"), rec("i3", 3, "i2")],
        "full",
        None,
        "has 3 incremental(s); retention.max_chain_length is 3",
        id="chain-full",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1", verified=None)],
        "full",
        None,
        "i1 in the current chain is not verified",
        id="unverified-tail",
    ),
    pytest.param(
        [rec("f1", 0, verified=None), rec("i1", 1, "f1")],
        "full",
        None,
        "f1 in the current chain is not verified",
        id="unverified-full",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1", verified=False)],
        "full",
        None,
        "i1 in the current chain failed verification: 2 missing",
        id="verify-failed",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 2, "i1", status=F, error="GC safepoint 1 exceed TS 2\nmore")],
        "full",
        None,
        "the last incremental attempt i2 failed (GC safepoint 1 exceed TS 2)",
        id="failed-incremental-after-tail",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1", status=F), rec("i2", 2, "f1")],
        "incremental",
        "i2",
        "incremental #2",
        id="old-failure-already-superseded",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("f2", 2, status=F)],
        "incremental",
        "i1",
        "after i1",
        id="failed-full-does-not-break-the-chain",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 2, "i1"), rec("f2", 3)],
        "incremental",
        "f2",
        "on the chain of f2",
        id="newest-full-starts-the-current-chain",
    ),
    pytest.param(
        [rec("f1", 0), rec("f2", 3, verified=None)],
        "full",
        None,
        "f2 in the current chain is not verified",
        id="newest-full-unverified",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1", status=E), rec("i2", 2, "i1")],
        "incremental",
        "f1",
        "after f1",
        id="broken-link-is-not-a-base",
    ),
    pytest.param(
        [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 2, "i1", status=R)],
        "incremental",
        "i1",
        "after i1",
        id="running-is-ignored",
    ),
    pytest.param(
        [rec("f1", 0), rec("f9", 5, cluster="uat"), rec("i9", 6, "f9", cluster="uat", status=F)],
        "incremental",
        "f1",
        "on the chain of f1",
        id="other-clusters-ignored",
    ),
]


@pytest.mark.parametrize(("history", "kind", "base", "reason"), INCREMENTAL_CASES)
def test_plan_incremental(history: list[BackupRecord], kind: str, base: str | None, reason: str) -> None:
    plan = plan_incremental(history, cluster_config(), NOW)
    assert (plan.kind.value, plan.base.id if plan.base else None) == (kind, base), plan.reason
    assert reason in plan.reason
    assert plan.cluster == "dev"
    if plan.base is not None:
        assert plan.last_backup_ts == plan.base.backup_ts
        assert plan.chain_length == len(restorable_chain(index(history), plan.base) or [])
    else:
        assert plan.is_full and plan.last_backup_ts is None and plan.chain_length == 0


def test_plan_incremental_max_chain_zero_means_always_full() -> None:
    plan = plan_incremental([rec("f1", 0)], cluster_config(max_chain_length=0), NOW)
    assert plan.is_full and "max_chain_length is 0" in plan.reason


def test_plan_incremental_says_how_old_the_base_is() -> None:
    plan = plan_incremental([rec("f1", 0)], cluster_config(), T0 + timedelta(hours=26, minutes=3))
    assert "(1d 2h old, verified)" in plan.reason


def test_plan_incremental_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        plan_incremental([], cluster_config(), datetime(2024, 1, 1))


# ------------------------------------------------------------------------------------- plan_retention

DAY = 24


def scenario() -> list[BackupRecord]:
    """Four chains over 30 days (A: days 0-3, B: 10-12, C: 20-26, D: 27-29) and a few attempts."""
    return [
        rec("a0", 0 * DAY), rec("a1", 1 * DAY, "a0"), rec("a2", 2 * DAY, "a1"), rec("a3", 3 * DAY, "a2"),
        rec("x-failed-old", 5 * DAY, "a3", status=F),
        rec("b0", 10 * DAY), rec("b1", 11 * DAY, "b0"), rec("b2", 12 * DAY, "b1"),
        rec("c0", 20 * DAY), rec("c1", 22 * DAY, "c0"), rec("c2", 24 * DAY, "c1"), rec("c3", 26 * DAY, "c2"),
        rec("d0", 27 * DAY), rec("y-failed-new", 28 * DAY, "d0", status=F), rec("d1", 29 * DAY, "d0"),
        rec("z-running", 30 * DAY, "d1", status=R),
        rec("old-expired", 1 * DAY, status=E),
    ]  # fmt: skip


def test_retention_keeps_the_window_and_its_anchor() -> None:
    plan = plan_retention(scenario(), RetentionConfig(keep_days=7, keep_full=2), T0 + timedelta(days=30))
    assert plan.window_start == T0 + timedelta(days=23)
    assert sorted(plan.expire_ids) == ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "x-failed-old"]
    reasons = {d.backup.id: d.reason for d in plan.keep}
    assert reasons["c2"] == "restore point inside the 7-day window"
    assert reasons["c1"].startswith("base of kept c2")
    assert reasons["z-running"] == "running"
    assert reasons["d1"] == "base of kept z-running"
    assert reasons["y-failed-new"].startswith("failed attempt inside the window")
    assert "old-expired" not in reasons and "old-expired" not in plan.expire_ids
    expire = {d.backup.id: d.reason for d in plan.expire}
    assert expire["x-failed-old"] == "failed attempt from 25d ago, before the window start"
    assert (
        expire["b2"] == "incremental backup from 18d ago: before the window start, and no kept restore point needs it"
    )


def test_retention_keeps_the_newest_restore_point_before_the_window() -> None:
    # window: days 5-10. Restoring to day 5 needs i1 (day 1) and so f1, although both are old.
    history = [rec("f0", -2 * DAY), rec("f1", 0), rec("i1", 1 * DAY, "f1"), rec("f2", 10 * DAY)]
    plan = plan_retention(history, RetentionConfig(keep_days=5, keep_full=1), T0 + timedelta(days=10))
    reasons = {d.backup.id: d.reason for d in plan.keep}
    assert reasons == {
        "f1": "base of kept i1",
        "i1": "newest restore point before the 5-day window starts: restores at its start need it",
        "f2": "restore point inside the 5-day window",
    }
    assert plan.expire_ids == ["f0"]


def test_retention_keep_full_counts_verified_fulls_only() -> None:
    history = [rec("f1", 0), rec("f2", 1 * DAY), rec("f3", 2 * DAY, verified=None), rec("f4", 20 * DAY)]
    plan = plan_retention(history, RetentionConfig(keep_days=1, keep_full=3), T0 + timedelta(days=20, hours=1))
    # f4 is in the window; f3 anchors the window start; f2 and f1 make three verified fulls with f4
    assert sorted(plan.keep_ids) == ["f1", "f2", "f3", "f4"]
    plan = plan_retention(history, RetentionConfig(keep_days=1, keep_full=2), T0 + timedelta(days=20, hours=1))
    assert sorted(plan.keep_ids) == ["f2", "f3", "f4"]  # f2: newest verified before the window; f4 + f2 = 2


def test_retention_keep_full_tops_up_with_unverified() -> None:
    history = [rec("f1", 0, verified=None), rec("f2", 1 * DAY, verified=None), rec("f3", 2 * DAY, verified=None)]
    plan = plan_retention(history, RetentionConfig(keep_days=1, keep_full=2), T0 + timedelta(days=30))
    assert sorted(plan.keep_ids) == ["f2", "f3"]
    assert plan.expire_ids == ["f1"]


def test_retention_never_expires_a_base_of_a_kept_incremental() -> None:
    history = [rec("f1", 0), rec("i1", 1, "f1"), rec("i2", 20 * DAY, "i1")]  # a chain spanning the window
    plan = plan_retention(history, RetentionConfig(keep_days=2, keep_full=1), T0 + timedelta(days=21))
    assert plan.expire_ids == []


def test_retention_keeps_the_full_pitr_needs() -> None:
    # log backup since day 15: PITR into the window (day 23-30) must start from the newest full >= day 15
    history = [rec("f10", 10 * DAY), rec("f16", 16 * DAY), rec("f18", 18 * DAY, verified=None), rec("f29", 29 * DAY)]
    log_min = tso.from_datetime(T0 + timedelta(days=15))
    plan = plan_retention(history, RetentionConfig(keep_days=7, keep_full=1), T0 + timedelta(days=30), log_min)
    assert sorted(plan.keep_ids) == ["f16", "f18", "f29"]  # f18: newest before the window; f16: newest verified
    assert plan.expire_ids == ["f10"]


def test_retention_plans_each_cluster_apart() -> None:
    history = [rec("d-old", 0), rec("d-mid", 10 * DAY), rec("d-new", 20 * DAY), rec("u-old", 0, cluster="uat")]
    plan = plan_retention(history, RetentionConfig(keep_days=2, keep_full=1), T0 + timedelta(days=21))
    assert plan.expire_ids == ["d-old"]  # u-old is uat's only full (and its restore point at the window start)
    assert sorted(plan.keep_ids) == ["d-mid", "d-new", "u-old"]


# --------------------------------------------------------------------------------- property: invariant


def random_history(rng: random.Random) -> tuple[list[BackupRecord], datetime]:
    history: list[BackupRecord] = []
    hours = 0.0
    tips: list[str] = []  # succeeded backups, newest last
    for i in range(rng.randint(1, 45)):
        hours += rng.choice([1, 4, 12, 24, 24, 48, 72])
        status = rng.choices([S, F, E], weights=[85, 10, 5])[0]
        verified = rng.choices([True, None, False], weights=[80, 15, 5])[0]
        if not tips or rng.random() < 0.25:
            b = rec(f"full-{i:02d}", hours, status=status, verified=verified)
        else:
            base = tips[-1] if rng.random() < 0.85 else rng.choice(tips)  # sometimes a branch
            b = rec(f"incr-{i:02d}", hours, base, status=status, verified=verified)
        history.append(b)
        if status is S:
            tips.append(b.id)
    if rng.random() < 0.3 and tips:
        hours += 1
        history.append(rec("running", hours, tips[-1], status=R))
    return history, T0 + timedelta(hours=hours + rng.choice([0, 1, 30, 200]))


def best_restore_point(backups: list[BackupRecord], at: datetime) -> BackupRecord | None:
    by_id = index(backups)
    candidates = [
        b
        for b in backups
        if b.succeeded and b.backup_time is not None and b.backup_time <= at and restorable_chain(by_id, b)
    ]
    return max(candidates, key=lambda b: b.backup_ts or 0) if candidates else None


def newest_pitr_full(backups: list[BackupRecord], log_min: int, at: int) -> BackupRecord | None:
    by_id = index(backups)
    fulls = [
        b
        for b in backups
        if b.is_full
        and b.succeeded
        and b.backup_ts is not None
        and log_min <= b.backup_ts <= at
        and restorable_chain(by_id, b)
    ]
    return max(fulls, key=lambda b: b.backup_ts or 0) if fulls else None


def test_retention_property_every_point_in_the_window_stays_restorable() -> None:
    rng = random.Random(20240301)
    expired_total = 0
    for _ in range(250):
        history, now = random_history(rng)
        retention = RetentionConfig(keep_days=rng.randint(1, 12), keep_full=rng.randint(1, 3))
        log_min = None
        if rng.random() < 0.5:
            log_min = tso.from_datetime(T0 + timedelta(hours=rng.uniform(0, (now - T0).total_seconds() / 3600)))
        plan = plan_retention(history, retention, now, log_min)
        context = f"history={[(b.id, b.status.value, b.base_backup_id) for b in history]} now={now} {retention}"

        live = {b.id for b in history if b.status in (S, F, R)}
        assert set(plan.keep_ids) | set(plan.expire_ids) == live, context
        assert not set(plan.keep_ids) & set(plan.expire_ids), context
        expired_total += len(plan.expire_ids)
        after = [b for b in history if b.id not in set(plan.expire_ids)]
        kept = set(plan.keep_ids)

        ws = plan.window_start
        points = [ws, now, *(b.backup_time for b in history if b.backup_time and b.backup_time >= ws)]
        points += [ws + (now - ws) * rng.random() for _ in range(10)]
        for at in points:
            before = best_restore_point(history, at)
            assert best_restore_point(after, at) == before, f"restore to {at} lost: {context}"

        for b in history:
            if b.status is R:
                assert b.id in kept, context
            if b.id in kept and b.base_backup_id in live:
                assert b.base_backup_id in kept, f"base of kept {b.id} expired: {context}"

        by_id = index(history)
        verified_fulls = [b for b in history if b.is_full and b.verified and b.succeeded and restorable_chain(by_id, b)]
        assert sum(1 for b in verified_fulls if b.id in kept) >= min(retention.keep_full, len(verified_fulls)), context

        if log_min is not None:
            lo = max(tso.from_datetime(ws), log_min)
            for ts in [
                lo,
                tso.from_datetime(now),
                *(b.backup_ts for b in history if b.backup_ts and b.backup_ts >= lo),
            ]:
                need = newest_pitr_full(history, log_min, ts)
                assert need is None or need.id in kept, f"PITR at {ts} lost {need}: {context}"
    assert expired_total > 100  # the plans do expire things: the invariant is not kept by keeping everything
