"""The restorable window of a cluster: point-in-time recovery (PITR) and snapshot restore points.

BR's rules (``/work/shared/reference/br-cli.md`` §3.3, §5): ``br restore point --full-backup-storage <full>``
needs ``log-min-ts ≤ full BackupTS ≤ restored-ts ≤ log-max-ts``, where ``log-min-ts = max(log start,
truncate safepoint)`` and ``log-max-ts`` is the global checkpoint, as ``br log metadata`` reports them for
the log storage. So a cluster's **PITR window** is

* start: the BackupTS of the earliest retained full backup inside ``[log-min-ts, log-max-ts]``;
* end: ``log-max-ts``, the log checkpoint;

and any time in between is restorable (from the newest such full backup at or before it, plus the log).
Besides, every succeeded full or incremental backup (whose chain is whole) is a **snapshot restore
point**, restorable as it was at its BackupTS, inside the window or not.

"Retained" means succeeded in the catalog: expired or deleted backups do not count, nor do backups that
failed verification against their manifest (their files are not what the catalog says). Only full backups
start a window (BR v8 can start from an incremental with ``--allow-pitr-from-incremental``; we do not rely
on it).

The edge cases, each a consequence of the rule above:

* **log restarted** (stopped, then started again, e.g. into a new storage after
  ``ErrBackupGCSafepointExceeded``): ``log-min-ts`` moves to the new start; full backups before it no longer
  start a window, and until a full backup is taken after the restart there is none.
* **truncated** (``br log truncate --until``): ``log-min-ts`` is the truncate safepoint; the same.
* **gap after a paused (or ERROR) task**: the checkpoint, so ``log-max-ts``, stays where the task stopped;
  full backups taken since lie after the log and are snapshot points only; the window ends at the
  checkpoint, however far behind now that is.
* **no full backup after the log start**: no window (only snapshot points), and the reason says which full
  backup would be needed.

Pure: no SQL, no BR. ``compute_window`` takes the cluster's catalog rows and the log range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, index, restorable_chain
from tidbops.timefmt import iso_or_none, iso_tso, show_tso

LogRangeSource = Literal["metadata", "status"]


def _time(ts: int | None) -> datetime | None:
    return tso.to_datetime(ts) if ts is not None and ts > 0 else None


@dataclass(frozen=True)
class LogRange:
    """What the log storage covers: ``[min_ts, max_ts]``.

    From ``br log metadata`` (``source="metadata"``: min = max(start, truncate safepoint), max = the global
    checkpoint), or, when that could not be read, from the task's status (``source="status"``: its start
    and checkpoint; a truncate safepoint is then unknown).
    """

    min_ts: int
    max_ts: int
    source: LogRangeSource = "metadata"

    def __post_init__(self) -> None:
        if self.min_ts <= 0 or self.max_ts <= 0:
            raise ValueError(f"a log range needs positive TSOs, not {self.min_ts}..{self.max_ts}")
        if self.max_ts < self.min_ts:
            raise ValueError(f"log range ends ({self.max_ts}) before it starts ({self.min_ts})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_ts": self.min_ts,
            "min_time": iso_tso(self.min_ts),
            "max_ts": self.max_ts,
            "max_time": iso_tso(self.max_ts),
            "source": self.source,
        }


def log_range_from_status(start_ts: int | None, checkpoint_ts: int | None) -> LogRange | None:
    """The log range a task's status implies (start → checkpoint); ``None`` without a start."""
    if start_ts is None or start_ts <= 0:
        return None
    end = checkpoint_ts if checkpoint_ts is not None and checkpoint_ts >= start_ts else start_ts
    return LogRange(start_ts, end, "status")


@dataclass(frozen=True)
class RestorePoint:
    """A succeeded backup: restorable as a snapshot at ``backup_ts`` (restore ``chain`` in order)."""

    backup_id: str
    kind: BackupKind
    backup_ts: int
    verified: bool
    chain: tuple[str, ...]

    @property
    def backup_time(self) -> datetime:
        return tso.to_datetime(self.backup_ts)

    @property
    def is_full(self) -> bool:
        return self.kind is BackupKind.FULL

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "kind": self.kind.value,
            "backup_ts": self.backup_ts,
            "backup_time": iso_or_none(_time(self.backup_ts)),
            "verified": self.verified,
            "chain": list(self.chain),
        }


@dataclass(frozen=True)
class PitrWindow:
    """A cluster's restorable window. ``start_ts``/``end_ts`` are ``None`` when there is no PITR window;
    ``reason`` says what the window is, or why there is none (one line)."""

    cluster: str
    log: LogRange | None
    start_ts: int | None
    end_ts: int | None
    base: RestorePoint | None
    bases: tuple[RestorePoint, ...]
    snapshot_points: tuple[RestorePoint, ...]
    reason: str
    notes: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        return self.start_ts is not None and self.end_ts is not None

    @property
    def start_time(self) -> datetime | None:
        return _time(self.start_ts)

    @property
    def end_time(self) -> datetime | None:
        return _time(self.end_ts)

    @property
    def seconds(self) -> float | None:
        """How long the window is."""
        if self.start_ts is None or self.end_ts is None:
            return None
        return (tso.physical_ms(self.end_ts) - tso.physical_ms(self.start_ts)) / 1000.0

    def covers(self, ts: int) -> bool:
        """Whether a PITR to ``ts`` is possible."""
        return self.start_ts is not None and self.end_ts is not None and self.start_ts <= ts <= self.end_ts

    def base_for(self, ts: int) -> RestorePoint | None:
        """The full backup a PITR to ``ts`` starts from: the newest base at or before ``ts``."""
        if not self.covers(ts):
            return None
        return max((b for b in self.bases if b.backup_ts <= ts), key=lambda b: b.backup_ts, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "exists": self.exists,
            "start_ts": self.start_ts,
            "start_time": iso_or_none(self.start_time),
            "end_ts": self.end_ts,
            "end_time": iso_or_none(self.end_time),
            "seconds": self.seconds,
            "base": self.base.to_dict() if self.base else None,
            "bases": [b.to_dict() for b in self.bases],
            "log": self.log.to_dict() if self.log else None,
            "snapshot_points": [p.to_dict() for p in self.snapshot_points],
            "reason": self.reason,
            "notes": list(self.notes),
        }


def snapshot_points(backups: Iterable[BackupRecord]) -> tuple[tuple[RestorePoint, ...], tuple[str, ...]]:
    """Every succeeded backup whose whole chain succeeded and none of whose links failed verification,
    oldest first; and notes on the succeeded backups left out (and why)."""
    rows = list(backups)
    by_id = index(rows)
    points: list[RestorePoint] = []
    notes: list[str] = []
    for record in sorted(rows, key=lambda b: b.sort_key()):
        if not record.succeeded or record.backup_ts is None:
            continue
        chain = restorable_chain(by_id, record)
        if chain is None:
            notes.append(f"{record.id}: its chain is broken or has a link that did not succeed; not restorable")
            continue
        bad = [b.id for b in chain if b.verify_failed]
        if bad:
            notes.append(f"{record.id}: {', '.join(bad)} failed verification against the manifest; not counted")
            continue
        points.append(
            RestorePoint(
                backup_id=record.id,
                kind=record.kind,
                backup_ts=record.backup_ts,
                verified=all(b.verified for b in chain),
                chain=tuple(b.id for b in chain),
            )
        )
    return tuple(points), tuple(notes)


def compute_window(cluster: str, backups: Iterable[BackupRecord], log: LogRange | None) -> PitrWindow:
    """The PITR window of ``cluster`` from its catalog rows (any cluster's rows are filtered out) and the
    log range; see the module docs for the rules and edge cases."""
    points, notes_list = snapshot_points(b for b in backups if b.cluster == cluster)
    notes = list(notes_list)
    if log is None:
        return PitrWindow(
            cluster, None, None, None, None, (), points,
            "no log backup (no task, no log range): snapshot restore points only", tuple(notes),
        )  # fmt: skip
    if log.source == "status":
        notes.append(
            "log range from the task's status (br log metadata was not read): a truncate safepoint is not known"
        )
    fulls = [p for p in points if p.is_full]
    bases = tuple(p for p in fulls if log.min_ts <= p.backup_ts <= log.max_ts)
    after = [p for p in points if p.backup_ts > log.max_ts]
    if after:
        notes.append(
            f"{len(after)} snapshot restore point(s) after the log checkpoint ({show_tso(log.max_ts)}), from "
            f"{after[0].backup_id}: restorable only as snapshots (the log does not reach them)"
        )
    if bases:
        base = bases[0]
        reason = (
            f"PITR from {show_tso(base.backup_ts)} (full backup {base.backup_id}) to {show_tso(log.max_ts)} "
            "(log checkpoint)"
        )
        return PitrWindow(cluster, log, base.backup_ts, log.max_ts, base, bases, points, reason, tuple(notes))
    before = [p for p in fulls if p.backup_ts < log.min_ts]
    later = [p for p in fulls if p.backup_ts > log.max_ts]
    start_what = "log start" if log.source == "status" else "log start/truncate point"
    if not fulls:
        reason = (
            f"no PITR window: no full backup yet; a full backup taken after the {start_what} "
            f"({show_tso(log.min_ts)}) starts one"
        )
    elif later:
        reason = (
            f"no PITR window: the log ends at its checkpoint ({show_tso(log.max_ts)}), before full backup "
            f"{later[0].backup_id} ({show_tso(later[0].backup_ts)}): a gap (log backup paused, stopped or stuck?); "
            "the window starts there once the checkpoint passes it"
        )
        if before:
            reason += f"; older full backups predate the {start_what} ({show_tso(log.min_ts)})"
    else:
        newest = before[-1]
        reason = (
            f"no PITR window: no full backup at or after the {start_what} ({show_tso(log.min_ts)}); the newest "
            f"full backup {newest.backup_id} ({show_tso(newest.backup_ts)}) is older. Take a full backup to start one"
        )
    return PitrWindow(cluster, log, None, None, None, (), points, reason, tuple(notes))
