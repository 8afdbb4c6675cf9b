"""The PITR window from catalog rows and the log range: the rule, and each edge case in a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.pitr import LogRange, compute_window, log_range_from_status, snapshot_points

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def ts(hours: float) -> int:
    return tso.from_datetime(T0 + timedelta(hours=hours))


def full(name: str, hours: float, **kw: object) -> BackupRecord:
    return BackupRecord(
        id=name,
        cluster=str(kw.pop("cluster", "dev")),
        kind=BackupKind.FULL,
        status=kw.pop("status", BackupStatus.SUCCEEDED),  # type: ignore[arg-type]
        storage_uri=f"s3://b/dev/full/{name}",
        started_at=T0 + timedelta(hours=hours - 0.1),
        backup_ts=ts(hours),
        verified=bool(kw.pop("verified", True)),
        verified_at=kw.pop("verified_at", T0 + timedelta(hours=hours + 0.1)),  # type: ignore[arg-type]
    )


def incr(name: str, hours: float, base: str, base_hours: float, **kw: object) -> BackupRecord:
    return BackupRecord(
        id=name,
        cluster="dev",
        kind=BackupKind.INCREMENTAL,
        status=kw.pop("status", BackupStatus.SUCCEEDED),  # type: ignore[arg-type]
        storage_uri=f"s3://b/dev/incr/{name}",
        started_at=T0 + timedelta(hours=hours - 0.1),
        backup_ts=ts(hours),
        base_backup_id=base,
        last_backup_ts=ts(base_hours),
        verified=True,
        verified_at=T0 + timedelta(hours=hours + 0.1),
    )


@dataclass
class Case:
    backups: list[BackupRecord]
    log: LogRange | None
    start: float | None  # hours, or None: no window
    end: float | None
    base: str | None = None
    bases: list[str] = field(default_factory=list)
    reason: str = ""
    note: str = ""


CASES = {
    "one full inside the log range": Case(
        [full("f1", 2)], LogRange(ts(1), ts(10)), 2, 10, "f1", ["f1"], "PITR from 2026-11-20 02:00:00 UTC"
    ),
    "the earliest full inside the range starts it": Case(
        [full("f1", 2), full("f2", 5), incr("i3", 6, "f2", 5)], LogRange(ts(1), ts(10)), 2, 10, "f1", ["f1", "f2"]
    ),
    "a full exactly at the log start counts": Case([full("f1", 1)], LogRange(ts(1), ts(3)), 1, 3, "f1", ["f1"]),
    "a full before the log start does not count": Case(
        [full("old", 0.5), full("f1", 2)], LogRange(ts(1), ts(10)), 2, 10, "f1", ["f1"]
    ),
    "log restarted: only fulls after the new start count": Case(
        [full("f1", 2), full("f2", 4)],
        LogRange(ts(5), ts(10)),
        None,
        None,
        reason="no full backup at or after the log start/truncate point (2026-11-20 05:00:00 UTC); the newest full "
        "backup f2 (2026-11-20 04:00:00 UTC) is older",
    ),
    "log restarted, then a full backup: the window starts there": Case(
        [full("f1", 2), full("f3", 6)], LogRange(ts(5), ts(10)), 6, 10, "f3", ["f3"]
    ),
    "truncated past the first full: the next one starts it": Case(
        [full("f1", 2), full("f2", 4), full("f3", 8)], LogRange(ts(3), ts(10)), 4, 10, "f2", ["f2", "f3"]
    ),
    "truncated past every full": Case(
        [full("f1", 2)], LogRange(ts(3), ts(10)), None, None, reason="the newest full backup f1"
    ),
    "gap after a paused task: fulls after the checkpoint are snapshots only": Case(
        [full("f1", 2), full("f2", 8)],
        LogRange(ts(1), ts(5)),
        2,
        5,
        "f1",
        ["f1"],
        note="1 snapshot restore point(s) after the log checkpoint (2026-11-20 05:00:00 UTC), from f2",
    ),
    "gap after a paused task, no full before the pause": Case(
        [full("f2", 8)],
        LogRange(ts(1), ts(5)),
        None,
        None,
        reason="the log ends at its checkpoint (2026-11-20 05:00:00 UTC), before full backup f2",
    ),
    "gap after a paused task, an older full before the log start": Case(
        [full("old", 0.5), full("f2", 8)],
        LogRange(ts(1), ts(5)),
        None,
        None,
        reason="before full backup f2 (2026-11-20 08:00:00 UTC): a gap",
    ),
    "no full backup after the log start": Case(
        [full("f1", 0.5), incr("i2", 3, "f1", 0.5)],
        LogRange(ts(1), ts(10)),
        None,
        None,
        reason="no full backup at or after the log start",
    ),
    "no backup at all": Case([], LogRange(ts(1), ts(10)), None, None, reason="no full backup yet"),
    "no log at all": Case([full("f1", 2)], None, None, None, reason="no log backup"),
    "expired and failed fulls do not count": Case(
        [
            full("gone", 2, status=BackupStatus.EXPIRED),
            full("broke", 3, status=BackupStatus.FAILED),
            full("bad", 4, verified=False),  # verification failed (verified_at set)
            full("f5", 5),
        ],
        LogRange(ts(1), ts(10)),
        5,
        10,
        "f5",
        ["f5"],
        note="bad: bad failed verification",
    ),
    "a never verified full counts (flagged)": Case(
        [full("f1", 2, verified=False, verified_at=None)], LogRange(ts(1), ts(10)), 2, 10, "f1", ["f1"]
    ),
    "another cluster's fulls are ignored": Case(
        [full("u1", 2, cluster="uat"), full("f3", 3)], LogRange(ts(1), ts(10)), 3, 10, "f3", ["f3"]
    ),
    "from the task status: a truncate point is unknown": Case(
        [full("f1", 2)], LogRange(ts(1), ts(10), "status"), 2, 10, "f1", ["f1"], note="truncate safepoint is not known"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_window(case: Case) -> None:
    w = compute_window("dev", case.backups, case.log)
    assert (w.start_ts, w.end_ts) == (
        ts(case.start) if case.start is not None else None,
        ts(case.end) if case.end is not None else None,
    ), w.reason
    assert w.exists is (case.start is not None)
    assert (w.base.backup_id if w.base else None) == case.base
    assert [b.backup_id for b in w.bases] == case.bases
    assert case.reason in w.reason
    if case.note:
        assert any(case.note in n for n in w.notes), w.notes
    if w.exists:
        assert w.start_ts is not None and w.end_ts is not None
        assert w.covers(w.start_ts) and w.covers(w.end_ts) and not w.covers(w.end_ts + 1)
        assert w.seconds == pytest.approx((case.end - case.start) * 3600)  # type: ignore[operator]
    doc = w.to_dict()
    assert doc["exists"] is w.exists and doc["reason"] == w.reason


def test_base_for_a_target_is_the_newest_full_before_it() -> None:
    w = compute_window("dev", [full("f1", 2), full("f2", 5)], LogRange(ts(1), ts(10)))
    assert w.base_for(ts(4)).backup_id == "f1"  # type: ignore[union-attr]
    assert w.base_for(ts(5)).backup_id == "f2"  # type: ignore[union-attr]
    assert w.base_for(ts(11)) is None and w.base_for(ts(1.5)) is None


def test_snapshot_points_cover_fulls_and_whole_chains_only() -> None:
    rows = [
        full("f1", 1),
        incr("i2", 2, "f1", 1),
        incr("i3", 3, "missing", 2),  # broken chain
        full("f4", 4, verified=False),  # verification failed
        incr("i5", 5, "f4", 4),  # on a bad link
    ]
    points, notes = snapshot_points(rows)
    assert [(p.backup_id, p.chain) for p in points] == [("f1", ("f1",)), ("i2", ("f1", "i2"))]
    assert len(notes) == 3 and any("i3" in n and "broken" in n for n in notes)
    assert [p.backup_id for p in compute_window("dev", rows, None).snapshot_points] == ["f1", "i2"]


@pytest.mark.parametrize(
    ("start", "checkpoint", "expected"),
    [
        (None, None, None),
        (ts(1), None, (ts(1), ts(1))),
        (ts(1), ts(3), (ts(1), ts(3))),
        (ts(3), ts(1), (ts(3), ts(3))),  # a checkpoint behind the start (restarted task): the start
    ],
)
def test_log_range_from_status(start: int | None, checkpoint: int | None, expected: tuple[int, int] | None) -> None:
    r = log_range_from_status(start, checkpoint)
    assert (None if r is None else (r.min_ts, r.max_ts)) == expected
    assert r is None or r.source == "status"


def test_log_range_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="ends"):
        LogRange(ts(2), ts(1))
    with pytest.raises(ValueError, match="positive"):
        LogRange(0, ts(1))
