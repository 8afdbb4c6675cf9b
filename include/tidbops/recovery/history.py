"""Reading the source as of the restore point: a stale read on TiDB, row history on the playground's MariaDB.

History only lasts ``tidb_gc_life_time``: ``check_history`` refuses a point older than the GC safepoint
with a message that says so, before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tidbops import tso
from tidbops.catalog.info import human_age
from tidbops.recovery.errors import HistoryGoneError
from tidbops.timefmt import iso, show, utc
from tidbops.validate.sql import Dialect


def history_time(restore_ts: int) -> datetime:
    """The newest row-version stamp a read at TSO ``restore_ts`` sees, on a server that stamps versions
    with microseconds (MariaDB's system versioning, the playground): a version stamped at microsecond
    ``U`` has commit TSO ``compose(U // 1000, U % 1000)``, so ``T`` covers up to ``physical(T)`` ms plus
    ``min(logical(T), 999)`` µs. (TiDB is read at the TSO itself: ``tidb_snapshot``.)"""
    micros = tso.physical_ms(restore_ts) * 1000 + min(tso.logical(restore_ts), 999)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


@dataclass(frozen=True)
class SourceRead:
    """How the source is read as of the restore point: statements around the reads, and ``at`` for the
    fingerprints (``None``: the session itself reads the past)."""

    dialect: Dialect
    at: datetime | None
    setup: tuple[str, ...]
    teardown: tuple[str, ...]
    description: str


def source_read(dialect: Dialect, restore_ts: int) -> SourceRead:
    if dialect is Dialect.TIDB:
        return SourceRead(
            dialect,
            None,
            (f"SET @@tidb_snapshot = '{int(restore_ts)}'",),
            ("SET @@tidb_snapshot = ''",),
            f"TiDB stale read at TSO {restore_ts} (tidb_snapshot: tables, schema and rows as of the point)",
        )
    if dialect is Dialect.MARIADB:
        at = history_time(restore_ts)
        return SourceRead(
            dialect,
            at,
            (),
            (),
            f"system-versioned history, FOR SYSTEM_TIME AS OF '{iso(at, timespec='microseconds')}' (TSO {restore_ts})",
        )
    raise HistoryGoneError(
        "the source keeps no history (a MySQL server): it cannot be read as of the restore point; drills need "
        "TiDB (stale reads) or a server with system-versioned tables"
    )


def check_history(
    cluster: str, restore_ts: int, gc_safe_point: datetime | None, gc_life_time_seconds: float | None = None
) -> None:
    """Refuse a restore point the source's GC has passed: its history is gone, nothing can read it."""
    if gc_safe_point is None:
        return
    point = tso.to_datetime(restore_ts)
    safe = utc(gc_safe_point, "gc_safe_point")
    if point < safe:
        life = (
            f" (tidb_gc_life_time {human_age(timedelta(seconds=gc_life_time_seconds))})" if gc_life_time_seconds else ""
        )
        raise HistoryGoneError(
            f"cannot compare against {cluster} as of the restore point {show(point, ms=True)}: it is older than "
            f"{cluster}'s GC safepoint {show(safe, ms=True)}{life}, so that history is gone. Drill a more recent "
            "point (PITR mode drills a recent one), or keep history longer than the time from backup to drill "
            "(tidb_gc_life_time)"
        )
