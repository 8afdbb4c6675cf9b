"""Objectives and compliance: each cluster's declared RPO, RTO, backup frequency and minimum retention,
checked against what the catalog recorded.

A cluster declares its objectives in the fleet config (``objectives.rpo``, ``.rto``, ``.backup_every``,
``.min_retention``, seconds). Each declared one is **met** or **breached**; an undeclared one is reported
as **not declared**, never as a breach. What each measures:

* ``rpo``: the age of the newest recovery point. A recovery point is the log backup checkpoint of the
  latest log backup check (when log backup is enabled and that check found a PITR window, so the
  checkpoint is restorable), or the ``backup_time`` of a verified, succeeded backup; the newer of the two
  counts. No recovery point at all is a breach.
* ``rto``: the RTO (restore plus validation) of the latest finished drill that measured one. No such
  drill is a breach, and so is a **stale** latest passed drill (``tidbops.freshness``: the TiDB or BR
  version, the encryption or the storage changed since): the figure no longer proves the objective. A
  stale drill is flagged (``flags``) whether an RTO is declared or not; the next drill is due at once.
* ``backup_every``: a verified backup (its ``backup_time``; one expired or deleted since counts, it was
  taken) in every period of that length over the last 30 days (``LOOKBACK``; two periods' length when
  that is longer). Periods are aligned to the Unix epoch in UTC, so ``1d`` means UTC calendar days and
  ``1h`` clock hours, as cron schedules are; every complete period that overlaps the span is judged (the
  one under way is not), from the one in which the cluster's first recorded backup started. The gaps
  are listed.
* ``min_retention``: the age of the oldest retained point, the oldest succeeded backup whose chain is
  whole and verified-or-unchecked (``tidbops.pitr.snapshot_points``). A PITR window always starts at
  such a full backup, so the log never reaches further back than that point.

Each breach is one line naming the cluster, the objective and the measured value
(``prod: rpo 15m breached: newest recovery point is 2h 3m old (log checkpoint 2026-…Z)``).

Pure functions over catalog records, ``now`` injected; ``check_compliance`` reads the catalog for one
cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tidbops.catalog.info import human_age
from tidbops.catalog.records import BackupRecord, BackupStatus, DrillRecord, DrillStatus, LogBackupCheck, utc
from tidbops.config import ClusterConfig
from tidbops.freshness import OBSERVED_EVENT, Freshness, config_basis, drill_freshness, observed_basis
from tidbops.pitr import snapshot_points
from tidbops.timefmt import iso, iso_or_none

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog

LOOKBACK = timedelta(days=30)
MAX_GAPS_SHOWN = 5  # in a breach line; --json lists every gap
_TAKEN = frozenset({BackupStatus.SUCCEEDED, BackupStatus.EXPIRED, BackupStatus.DELETED})  # the backup was taken
OBJECTIVES = ("rpo", "rto", "backup_every", "min_retention")


class Outcome(StrEnum):
    MET = "met"
    BREACHED = "breached"
    NOT_DECLARED = "not declared"


def duration_text(seconds: float) -> str:
    """``15m``, ``2h 3m``, ``7d``: the way ``tidbops info`` shows ages."""
    return human_age(timedelta(seconds=seconds))


@dataclass(frozen=True)
class Gap:
    """Consecutive periods without a verified backup: ``[start, end)``."""

    start: datetime
    end: datetime
    periods: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def __str__(self) -> str:
        return f"{iso(self.start, timespec='seconds')} → {iso(self.end, timespec='seconds')}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso_or_none(self.start),
            "end": iso_or_none(self.end),
            "periods": self.periods,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class ObjectiveCheck:
    """One objective of one cluster. ``target`` is the declared value (seconds, ``None``: not declared);
    ``measured`` the measured one in seconds (an age, an RTO; for ``backup_every`` the longest gap), ``None``
    when there was nothing to measure; ``finding`` says what was measured, in words."""

    cluster: str
    objective: str
    outcome: Outcome
    target: float | None
    measured: float | None
    finding: str
    gaps: tuple[Gap, ...] = ()

    @property
    def breached(self) -> bool:
        return self.outcome is Outcome.BREACHED

    @property
    def line(self) -> str:
        if self.target is None:
            return f"{self.cluster}: {self.objective} not declared"
        return f"{self.cluster}: {self.objective} {duration_text(self.target)} {self.outcome.value}: {self.finding}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "outcome": self.outcome.value,
            "target_seconds": self.target,
            "measured_seconds": None if self.measured is None else round(self.measured, 3),
            "finding": self.finding,
            "line": self.line,
            "gaps": [g.to_dict() for g in self.gaps],
        }


@dataclass(frozen=True)
class ComplianceReport:
    """A cluster's objectives, checked at ``checked_at``; ``notes`` are what the reader should know besides."""

    cluster: str
    checked_at: datetime
    checks: tuple[ObjectiveCheck, ...]
    notes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()  # what needs acting on besides the objectives (a stale drill), one line each
    drill: Freshness | None = None

    @property
    def breaches(self) -> tuple[ObjectiveCheck, ...]:
        return tuple(c for c in self.checks if c.breached)

    @property
    def ok(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "checked_at": iso_or_none(self.checked_at),
            "ok": self.ok,
            "objectives": [c.to_dict() for c in self.checks],
            "breaches": [c.line for c in self.breaches],
            "flags": list(self.flags),
            "drill_freshness": None if self.drill is None else self.drill.to_dict(),
            "notes": list(self.notes),
        }


def _judged(
    cluster: str,
    objective: str,
    target: float,
    measured: float | None,
    finding: str,
    ok: bool,
    gaps: tuple[Gap, ...] = (),
) -> ObjectiveCheck:
    outcome = Outcome.MET if ok else Outcome.BREACHED
    return ObjectiveCheck(cluster, objective, outcome, target, measured, finding, gaps)


def _undeclared(cluster: str, objective: str) -> ObjectiveCheck:
    return ObjectiveCheck(cluster, objective, Outcome.NOT_DECLARED, None, None, "not declared")


# ------------------------------------------------------------------------------------------------ rpo


def newest_recovery_point(
    backups: Iterable[BackupRecord], latest_check: LogBackupCheck | None, *, log_enabled: bool
) -> tuple[datetime, str] | None:
    """The newest recovery point and what it is (``log checkpoint …`` or ``verified backup … at …``)."""
    candidates: list[tuple[datetime, str]] = []
    if log_enabled and latest_check is not None:
        checkpoint = latest_check.checkpoint_time
        if checkpoint is not None and latest_check.window_end_ts is not None:
            candidates.append((checkpoint, f"log checkpoint {iso(checkpoint, timespec='seconds')}"))
    verified = [b for b in backups if b.succeeded and b.verified and b.backup_time is not None]
    if verified:
        newest = max(verified, key=lambda b: b.sort_key())
        assert newest.backup_time is not None
        candidates.append(
            (newest.backup_time, f"verified backup {newest.id} at {iso(newest.backup_time, timespec='seconds')}")
        )
    return max(candidates, key=lambda c: c[0]) if candidates else None


def check_rpo(
    cluster: str,
    rpo: float | None,
    backups: Sequence[BackupRecord],
    latest_check: LogBackupCheck | None,
    *,
    log_enabled: bool,
    now: datetime,
) -> ObjectiveCheck:
    if rpo is None:
        return _undeclared(cluster, "rpo")
    point = newest_recovery_point(backups, latest_check, log_enabled=log_enabled)
    if point is None:
        what = "no backups recorded" if not backups else "no verified succeeded backup"
        if log_enabled:
            what += (
                ", no log backup check recorded"
                if latest_check is None
                else ", and the last log backup check found no PITR window"
            )
        return _judged(cluster, "rpo", rpo, None, f"no recovery point ({what})", False)
    when, what = point
    age = max(0.0, (now - when).total_seconds())
    return _judged(cluster, "rpo", rpo, age, f"newest recovery point is {duration_text(age)} old ({what})", age <= rpo)


# ------------------------------------------------------------------------------------------------ rto


def last_measured_drill(drills: Iterable[DrillRecord]) -> DrillRecord | None:
    """The latest finished drill (passed or failed) that measured an RTO."""
    measured = [d for d in drills if d.status is not DrillStatus.RUNNING and d.rto_seconds is not None]
    return max(measured, key=lambda d: (d.finished_at or d.started_at, d.id), default=None)


def check_rto(
    cluster: str, rto: float | None, drills: Sequence[DrillRecord], freshness: Freshness | None = None
) -> ObjectiveCheck:
    """``freshness``: of the latest passed drill (``tidbops.freshness.drill_freshness``); a stale one
    breaches a declared RTO whatever the figure."""
    if rto is None:
        return _undeclared(cluster, "rto")
    drill = last_measured_drill(drills)
    if drill is None:
        what = "no drill recorded" if not drills else f"no finished drill measured an RTO ({len(drills)} recorded)"
        return _judged(cluster, "rto", rto, None, what, False)
    measured = drill.rto_seconds
    assert measured is not None
    when = iso(drill.finished_at or drill.started_at, timespec="seconds")
    finding = (
        f"the last measured drill took {duration_text(measured)} to restore and validate "
        f"({drill.id}, {drill.status.value} {when})"
    )
    if freshness is not None and freshness.status == "stale":
        return _judged(cluster, "rto", rto, measured, f"{finding}; it no longer counts: {freshness.reason}", False)
    return _judged(cluster, "rto", rto, measured, finding, measured <= rto)


# --------------------------------------------------------------------------------------- backup_every


def _period_start(index: int, every: float) -> datetime:
    return datetime.fromtimestamp(index * every, UTC)


def backup_gaps(
    backups: Iterable[BackupRecord], every: float, *, now: datetime, lookback: timedelta = LOOKBACK
) -> tuple[int, tuple[Gap, ...], datetime | None]:
    """``(periods judged, gaps, judged from)`` for ``backup_every``; see the module docs for the periods.

    ``judged from`` is ``None`` when no backup was ever recorded (nothing is judged)."""
    rows = list(backups)
    if not rows:
        return 0, (), None
    span = max(lookback, timedelta(seconds=2 * every))
    first_recorded = min(b.started_at for b in rows)
    since = max(now - span, first_recorded)
    first = math.floor(since.timestamp() / every)  # the period holding the start of the span is judged
    last = math.floor(now.timestamp() / every) - 1  # the last complete period
    if last < first:
        return 0, (), _period_start(first, every)
    covered = sorted(
        {
            k
            for b in rows
            if b.status in _TAKEN and b.verified and b.backup_time is not None
            for k in [math.floor(b.backup_time.timestamp() / every)]
            if first <= k <= last
        }
    )
    gaps: list[Gap] = []
    previous = first - 1
    for k in [*covered, last + 1]:
        if k > previous + 1:
            gaps.append(Gap(_period_start(previous + 1, every), _period_start(k, every), k - previous - 1))
        previous = k
    return last - first + 1, tuple(gaps), _period_start(first, every)


def check_backup_every(
    cluster: str, every: float | None, backups: Sequence[BackupRecord], *, now: datetime
) -> ObjectiveCheck:
    if every is None:
        return _undeclared(cluster, "backup_every")
    judged, gaps, since = backup_gaps(backups, every, now=now)
    if since is None:
        return _judged(cluster, "backup_every", every, None, "no backups recorded", False)
    if judged == 0:
        finding = f"no complete period to judge yet (the first starts {iso(since, timespec='seconds')})"
        return _judged(cluster, "backup_every", every, 0.0, finding, True)
    longest = max((g.seconds for g in gaps), default=0.0)
    if not gaps:
        finding = f"a verified backup in each of the {judged} periods since {iso(since, timespec='seconds')}"
        return _judged(cluster, "backup_every", every, longest, finding, True)
    missed = sum(g.periods for g in gaps)
    shown = ", ".join(str(g) for g in gaps[:MAX_GAPS_SHOWN])
    more = f", and {len(gaps) - MAX_GAPS_SHOWN} more" if len(gaps) > MAX_GAPS_SHOWN else ""
    finding = (
        f"{missed} of {judged} periods since {iso(since, timespec='seconds')} without a verified backup "
        f"(longest gap {duration_text(longest)}): {shown}{more}"
    )
    return _judged(cluster, "backup_every", every, longest, finding, False, gaps)


# -------------------------------------------------------------------------------------- min_retention


def check_min_retention(
    cluster: str, min_retention: float | None, backups: Sequence[BackupRecord], *, now: datetime
) -> ObjectiveCheck:
    if min_retention is None:
        return _undeclared(cluster, "min_retention")
    points, _ = snapshot_points(b for b in backups if b.cluster == cluster)
    if not points:
        what = "no backups recorded" if not backups else "no retained restore point (no succeeded, restorable backup)"
        return _judged(cluster, "min_retention", min_retention, None, what, False)
    oldest = points[0]
    age = max(0.0, (now - oldest.backup_time).total_seconds())
    finding = (
        f"the oldest retained point is {duration_text(age)} old "
        f"({oldest.kind.value} backup {oldest.backup_id} at {iso(oldest.backup_time, timespec='seconds')})"
    )
    return _judged(cluster, "min_retention", min_retention, age, finding, age >= min_retention)


# ------------------------------------------------------------------------------------------- together


def check_cluster(
    cluster: ClusterConfig,
    backups: Sequence[BackupRecord],
    latest_check: LogBackupCheck | None,
    drills: Sequence[DrillRecord],
    *,
    now: datetime,
    freshness: Freshness | None = None,
) -> ComplianceReport:
    """Every objective of ``cluster`` from its catalog records (other clusters' records are ignored);
    ``freshness``: of its latest passed drill, when known."""
    now = utc(now, "now")
    name = cluster.name
    mine = [b for b in backups if b.cluster == name]
    drills = [d for d in drills if d.cluster == name]
    check = latest_check if latest_check is not None and latest_check.cluster == name else None
    goals = cluster.objectives
    checks = (
        check_rpo(name, goals.rpo, mine, check, log_enabled=cluster.log_backup.enabled, now=now),
        check_rto(name, goals.rto, drills, freshness),
        check_backup_every(name, goals.backup_every, mine, now=now),
        check_min_retention(name, goals.min_retention, mine, now=now),
    )
    notes: list[str] = []
    if not mine:
        notes.append("no backups recorded")
    if all(c.outcome is Outcome.NOT_DECLARED for c in checks):
        notes.append("no objectives declared (objectives.rpo, .rto, .backup_every, .min_retention)")
    keep = cluster.retention.window.total_seconds()
    if goals.min_retention is not None and keep < goals.min_retention:
        notes.append(
            f"retention.keep_days ({cluster.retention.window_text}) is shorter than min_retention "
            f"({duration_text(goals.min_retention)}): retention may expire points the objective needs"
        )
    flags: tuple[str, ...] = ()
    if freshness is not None and freshness.status == "stale":
        flags = (f"{name}: drill stale: {freshness.reason}; the next drill is due now",)
    return ComplianceReport(name, now, checks, tuple(notes), flags, freshness)


def check_compliance(catalog: Catalog, cluster: ClusterConfig, *, now: datetime) -> ComplianceReport:
    """``check_cluster`` over what the catalog holds for ``cluster``; the drill's freshness against the
    basis known without reading a server (``tidbops.freshness.config_basis``: the fleet config now, and
    what the drill DAG's check last observed)."""
    name = cluster.name
    backups = catalog.list_backups(name)
    checks = catalog.list_log_backup_checks(name, limit=1)
    drills = catalog.list_drills(name, limit=100)
    passed = catalog.list_drills(name, status=DrillStatus.PASSED, limit=1)
    observed = observed_basis([e.details for e in reversed(catalog.list_events(name, kind=OBSERVED_EVENT, limit=20))])
    freshness = drill_freshness(name, passed[0] if passed else None, config_basis(cluster, observed))
    return check_cluster(cluster, backups, checks[0] if checks else None, drills, now=now, freshness=freshness)
