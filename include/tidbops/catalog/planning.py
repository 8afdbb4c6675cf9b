"""Pure decisions over catalog records: what kind of backup to take next, and what retention may expire.

Vocabulary:

- A **chain** is a full backup and the incrementals built on it, each on the previous one
  (``base_backup_id``). Restoring to a chain member needs every earlier link.
- A **restore point** is a succeeded backup whose whole chain succeeded (``records.restorable_chain``).
- The **window** is ``[now - retention.keep_days, now]``: every restore point in it must stay restorable,
  and so must the state at the window's start (the newest restore point before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tidbops import tso
from tidbops.catalog.info import human_age
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    BackupStatus,
    index,
    restorable_chain,
    utc,
)
from tidbops.config import ClusterConfig, RetentionConfig

# ------------------------------------------------------------------------------------ next backup kind


@dataclass(frozen=True)
class Plan:
    """The next backup of a cluster: full, or incremental on ``base`` (``--lastbackupts=last_backup_ts``)."""

    cluster: str
    kind: BackupKind
    reason: str
    base: BackupRecord | None = None
    last_backup_ts: int | None = None
    chain_length: int = 0  # incrementals in the chain once this one succeeds (0 for a full)

    @property
    def is_full(self) -> bool:
        return self.kind is BackupKind.FULL


def _full(cluster: str, reason: str) -> Plan:
    return Plan(cluster=cluster, kind=BackupKind.FULL, reason=reason)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:200] if lines else "no detail"


def plan_incremental(backups: Iterable[BackupRecord], cluster: ClusterConfig, now: datetime) -> Plan:
    """Incremental on the current chain when that is safe, else a full backup, with the reason.

    The current chain starts at the newest succeeded full; its tail is the newest restore point built on
    that full. A full backup is taken instead when there is no such chain, when any link of it is not
    verified (or failed verification), when an incremental attempt after the tail failed (a failure such
    as "GC safepoint exceeded" would repeat on the same base), or when the chain already has
    ``retention.max_chain_length`` incrementals.
    """
    now = utc(now, "now")
    name = cluster.name
    mine = [b for b in backups if b.cluster == name]
    by_id = index(mine)
    max_len = cluster.retention.max_chain_length
    if max_len == 0:
        return _full(name, "retention.max_chain_length is 0: every backup is a full backup")
    fulls = sorted((b for b in mine if b.is_full and b.succeeded and b.backup_ts is not None), key=_ts)
    if not fulls:
        return _full(name, f"cluster {name} has no succeeded full backup to build an incremental on")
    head = fulls[-1]
    members = [
        (b, links)
        for b in mine
        if b.succeeded and b.backup_ts is not None
        for links in [restorable_chain(by_id, b)]
        if links is not None and links[0].id == head.id
    ]
    tail, chain = max(members, key=lambda m: _ts(m[0]))
    failed_after = [
        b
        for b in mine
        if b.kind is BackupKind.INCREMENTAL and b.status is BackupStatus.FAILED and b.started_at > tail.started_at
    ]
    if failed_after:
        last = max(failed_after, key=lambda b: b.started_at)
        return _full(
            name,
            f"the last incremental attempt {last.id} failed ({_first_line(last.error)}); "
            "a new chain starts with a full backup",
        )
    for link in chain:
        if link.verify_failed:
            return _full(name, f"{link.id} in the current chain failed verification: {_first_line(link.verify_detail)}")
        if not link.verified:
            return _full(name, f"{link.id} in the current chain is not verified yet")
    incrementals = len(chain) - 1
    if incrementals >= max_len:
        return _full(
            name,
            f"the chain of {head.id} has {incrementals} incremental(s); retention.max_chain_length is {max_len}",
        )
    assert tail.backup_ts is not None and tail.backup_time is not None  # restorable links have them
    return Plan(
        cluster=name,
        kind=BackupKind.INCREMENTAL,
        reason=(
            f"incremental #{incrementals + 1} of {max_len} on the chain of {head.id}, after {tail.id} "
            f"({human_age(now - tail.backup_time)} old, verified)"
        ),
        base=tail,
        last_backup_ts=tail.backup_ts,
        chain_length=incrementals + 1,
    )


def _ts(b: BackupRecord) -> int:
    return b.backup_ts if b.backup_ts is not None else -1


# ------------------------------------------------------------------------------------------ retention


@dataclass(frozen=True)
class RetentionDecision:
    backup: BackupRecord
    reason: str  # for a kept backup, the first reason it is needed


@dataclass(frozen=True)
class RetentionPlan:
    now: datetime
    window_start: datetime
    keep: tuple[RetentionDecision, ...]
    expire: tuple[RetentionDecision, ...]

    @property
    def expire_ids(self) -> list[str]:
        return [d.backup.id for d in self.expire]

    @property
    def keep_ids(self) -> list[str]:
        return [d.backup.id for d in self.keep]


_LIVE = frozenset({BackupStatus.RUNNING, BackupStatus.SUCCEEDED, BackupStatus.FAILED})


class _Keeper:
    """The set of kept backups, closed over base links: keeping a backup keeps every link below it."""

    def __init__(self, by_id: Mapping[str, BackupRecord]) -> None:
        self.by_id = by_id
        self.reasons: dict[str, str] = {}

    def keep(self, backup: BackupRecord, reason: str) -> None:
        current: BackupRecord | None = backup
        why = reason
        while current is not None and current.id not in self.reasons:
            self.reasons[current.id] = why
            why = f"base of kept {current.id}"
            base_id = current.base_backup_id if current.kind is BackupKind.INCREMENTAL else None
            current = self.by_id.get(base_id) if base_id else None


def plan_retention(
    backups: Iterable[BackupRecord],
    retention: RetentionConfig,
    now: datetime,
    pitr_log_min_ts: int | None = None,
    held: Mapping[str, Sequence[str]] | None = None,
) -> RetentionPlan:
    """Which backups may expire, and why each kept one stays.

    Kept, whatever else: running backups; every restore point inside the window and its chain; the
    newest restore point before the window start (and the newest fully verified one) with their chains,
    and the whole chain of the newest full before the window start; the ``keep_full`` newest verified
    fulls (topped up with unverified ones when there are fewer); the fulls point-in-time recovery needs
    (``pitr_log_min_ts``: the log backup's start, a full older than it cannot seed PITR); failed attempts
    inside the window (a retry may restart them); backups ``held`` by a running drill or restore
    (backup id → holders). Bases of kept backups are kept. Expired and deleted backups are neither kept
    nor expired again. Backups of several clusters are planned per cluster.
    """
    now = utc(now, "now")
    window_start = now - retention.window
    live = [b for b in backups if b.status in _LIVE]
    keep: list[RetentionDecision] = []
    expire: list[RetentionDecision] = []
    for cluster in sorted({b.cluster for b in live}):
        group = [b for b in live if b.cluster == cluster]
        kept = _kept(group, retention, now, window_start, pitr_log_min_ts, held or {})
        for b in sorted(group, key=BackupRecord.sort_key):
            if b.id in kept:
                keep.append(RetentionDecision(b, kept[b.id]))
            else:
                expire.append(RetentionDecision(b, _expiry_reason(b, now, window_start)))
    return RetentionPlan(now=now, window_start=window_start, keep=tuple(keep), expire=tuple(expire))


def _expiry_reason(b: BackupRecord, now: datetime, window_start: datetime) -> str:
    age = human_age(now - b.when)
    if b.status is BackupStatus.FAILED:
        return f"failed attempt from {age} ago, before the window start"
    return f"{b.kind.value} backup from {age} ago: before the window start, and no kept restore point needs it"


def _newest(items: Sequence[BackupRecord]) -> BackupRecord | None:
    return max(items, key=_ts) if items else None


def _kept(
    group: list[BackupRecord],
    retention: RetentionConfig,
    now: datetime,
    window_start: datetime,
    pitr_log_min_ts: int | None,
    held: Mapping[str, Sequence[str]],
) -> dict[str, str]:
    by_id = index(group)
    keeper = _Keeper(by_id)
    for b in group:
        if held.get(b.id):
            keeper.keep(b, f"held by {', '.join(held[b.id])} (a drill or restore is using it)")
    restorable = {
        b.id: links
        for b in group
        if b.succeeded and b.backup_ts is not None and b.backup_time is not None
        for links in [restorable_chain(by_id, b)]
        if links is not None
    }
    points = sorted((by_id[i] for i in restorable), key=_ts)

    for b in group:
        if b.status is BackupStatus.RUNNING:
            keeper.keep(b, "running")
    days = f"{retention.window_text} window"
    for b in points:
        assert b.backup_time is not None
        if b.backup_time >= window_start:
            keeper.keep(b, f"restore point inside the {days}")
    before = [b for b in points if b.backup_time is not None and b.backup_time < window_start]
    anchor = _newest(before)
    if anchor is not None:
        keeper.keep(anchor, f"newest restore point before the {days} starts: restores at its start need it")
    anchor_verified = _newest([b for b in before if all(link.verified for link in restorable[b.id])])
    if anchor_verified is not None:
        keeper.keep(anchor_verified, f"newest verified restore point before the {days} starts")
    last_full_before = _newest([b for b in before if b.is_full])
    if last_full_before is not None:
        for b in points:
            if restorable[b.id][0].id == last_full_before.id:
                keeper.keep(b, f"chain of the newest full before the {days} starts")

    fulls = [b for b in reversed(points) if b.is_full]
    verified_fulls = [b for b in fulls if b.verified]
    if len(verified_fulls) == 1:
        keeper.keep(verified_fulls[0], "the only verified full backup")
    chosen = verified_fulls[: retention.keep_full]
    chosen += [b for b in fulls if not b.verified][: retention.keep_full - len(chosen)]
    for b in chosen:
        keeper.keep(b, f"one of the {retention.keep_full} newest full backups (keep_full)")

    if pitr_log_min_ts is not None:
        lo = max(tso.from_datetime(window_start), pitr_log_min_ts)
        seeds = [b for b in fulls if b.backup_ts is not None and b.backup_ts >= pitr_log_min_ts]
        for b in seeds:
            if b.backup_ts is not None and b.backup_ts >= lo:
                keeper.keep(b, "point-in-time recovery inside the window starts from it")
        older = [b for b in seeds if b.backup_ts is not None and b.backup_ts <= lo]
        for seed in (_newest(older), _newest([b for b in older if b.verified])):
            if seed is not None:
                keeper.keep(seed, "point-in-time recovery at the window start needs it (newest full after log start)")

    for b in group:
        if b.status is BackupStatus.FAILED and b.when >= window_start:
            keeper.keep(b, "failed attempt inside the window (a retry may restart it; kept for diagnosis)")
    return keeper.reasons
