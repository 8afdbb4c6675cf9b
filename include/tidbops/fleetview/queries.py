"""The fleet view, the cluster page and the audit, read from the catalog with a few grouped queries.

``fleet_rows`` reads every cluster's row in two statements whatever the number of clusters: the fleet
summary (``Catalog.fleet_facts``, see ``tidbops.catalog.summary``) holds, per cluster, the rows that
matter (newest full and incremental, newest succeeded and newest verified backup, newest log check, last
and last passed drill, last restore from or into it), its storage bytes and validation failures, as one
document kept at the cluster's version; one more statement reads the open frozen-checkpoint alerts.
Only clusters written since the last read are probed again, so the page never scans the backups or
events tables (``bench/bench_fleetview.py`` measures it at a million rows). A long-lived process holds
the briefs each document built by its version (``_BUILT``) and computes per request only what depends
on the time: ages and the verdict.

**Red / amber / green.** Each reason is one sentence in ``FleetRow.reasons``; the worst one sets the colour.

Red when:

- there is no restorable backup (no succeeded full backup in the catalog);
- the newest verified backup's BackupTS is older than ``stale_backup_s`` (default 26 h), or no backup was
  ever verified;
- log backup is enabled and its newest check found the task not running (paused, in error, absent,
  unknown), its checkpoint lag over ``max_checkpoint_lag_s``, or a frozen-checkpoint alert is open;
- the last drill failed.

Amber when:

- the newest backup (by BackupTS) is not verified yet, or failed its verification;
- the newest backup attempt (by start) failed;
- the cluster has a drill target and no drill passed within ``drill_max_age_s`` (default 8 days);
- the PITR window (start → end, as the newest check computed it) is shorter than ``window_promise_s``;
- the checkpoint lag is over 80 % of its limit;
- log backup is enabled but was never checked.

Green otherwise.

``audit_page`` reads the ``events`` table newest first (by time, then id) with keyset pagination: the
cursor is the last event's id, and the next page holds the events ordered after it. Every filter is an
equality on an indexed column (``cluster``, ``category``, ``actor``, ``status``: each ``(column, time)``)
plus a time range on the same index. ``AuditQuery.clusters`` (the clusters the caller may see) keeps only
those clusters' events; events of no cluster are then left out too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast, get_args

from sqlalchemy import and_, desc, func, or_, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from tidbops import tso
from tidbops.catalog.info import human_age
from tidbops.catalog.records import event_category, utc
from tidbops.catalog.schema import backups, drills, events, log_backup_alerts, restores
from tidbops.catalog.store import Catalog
from tidbops.catalog.summary import fact_columns
from tidbops.config import ClusterConfig, Fleet
from tidbops.fleetview.models import (
    AlertEpisode,
    AuditCategory,
    AuditEvent,
    AuditPage,
    AuditQuery,
    BackupBrief,
    ClusterPolicy,
    ClusterView,
    DrillBrief,
    FleetRow,
    LogWindow,
    Rag,
    RestoreBrief,
    SlowQueryDigest,
    SlowQueryReportView,
)
from tidbops.logbackup import CHECKPOINT_FROZEN
from tidbops.timefmt import iso

__all__ = [
    "AUDIT_CATEGORIES",
    "AUDIT_CSV_COLUMNS",
    "audit_csv",
    "audit_page",
    "category_of",
    "cluster_view",
    "fleet_rows",
    "iter_audit",
    "policies_from_fleet",
]

AUDIT_CATEGORIES: tuple[AuditCategory, ...] = get_args(AuditCategory)
AUDIT_CSV_COLUMNS = ("id", "time", "cluster", "category", "kind", "status", "actor", "backup_id", "message")
STALE_BACKUP_S = 26 * 3600.0
LAG_WARNING_SHARE = 0.8
_RUNNING_LOG = "NORMAL"
_EXPORT_CHUNK = 1000


def category_of(kind: str) -> AuditCategory:
    """What an event kind is about: ``backup.verified`` → ``verification``, ``restore.refused`` → ``restore``."""
    return cast(AuditCategory, event_category(kind))


# ------------------------------------------------------------------------------------------- policies


def policy_of(cluster: ClusterConfig) -> ClusterPolicy:
    """A cluster's yardsticks from its config: the log lag limit, the window retention promises (the
    objectives' ``min_retention`` where set, else ``retention.keep_days``, when log backup is on), and a
    verified backup at least every ``objectives.backup_every`` (plus 2 h) where set, else every 26 h."""
    log_on = cluster.log_backup.enabled
    objectives = cluster.objectives
    promise: float | None = None
    if log_on:
        promise = objectives.min_retention or cluster.retention.keep_days * 86400.0
    stale = STALE_BACKUP_S if objectives.backup_every is None else objectives.backup_every + 7200.0
    return ClusterPolicy(
        cluster=cluster.name,
        env=cluster.env,
        production=cluster.is_production,
        log_backup=log_on,
        max_checkpoint_lag_s=cluster.log_backup.max_checkpoint_lag,
        stale_backup_s=stale,
        drills=cluster.drill.target is not None,
        window_promise_s=promise,
    )


def policies_from_fleet(fleet: Fleet) -> list[ClusterPolicy]:
    """One policy per source cluster (not ``scratch: true``), in config order."""
    return [policy_of(c) for c in fleet.sources()]


# ---------------------------------------------------------------------------------------- conversions


def _age(now: datetime | None, then: datetime | None) -> float | None:
    return None if then is None or now is None else round((now - then).total_seconds(), 3)


def _backup(row: Mapping[Any, Any], now: datetime | None) -> BackupBrief:
    verified = bool(row["verified"])
    return BackupBrief(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        backup_ts=row["backup_ts"],
        backup_time=row["backup_time"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        scheduled_for=row["scheduled_for"],
        age_s=_age(now, row["backup_time"] or row["started_at"]),
        size_bytes=row["size_bytes"],
        br_duration_s=row["br_duration_s"],
        verified=verified,
        verified_tier=row["verified_tier"] if verified else None,
        verify_failed=not verified and bool(row["verify_checked"]),
        base_backup_id=row["base_backup_id"],
        storage_uri=row["storage_uri"],
        manifest_uri=row["manifest_uri"],
        triggered_by=row["triggered_by"],
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        error=row["error"],
    )


def _tso_time(ts: int | None) -> datetime | None:
    return None if ts is None or ts <= 0 else tso.to_datetime(ts)


def _log(row: Mapping[Any, Any], frozen: bool) -> LogWindow:
    return LogWindow(
        checked_at=row["checked_at"],
        status=row["status"],
        healthy=bool(row["healthy"]),
        task_name=row["task_name"],
        checkpoint_ts=row["checkpoint_ts"],
        checkpoint_time=_tso_time(row["checkpoint_ts"]),
        lag_s=row["lag_seconds"],
        window_start_ts=row["window_start_ts"],
        window_start=_tso_time(row["window_start_ts"]),
        window_end_ts=row["window_end_ts"],
        window_end=_tso_time(row["window_end_ts"]),
        frozen=frozen,
        dag_id=row["dag_id"],
        run_id=row["run_id"],
    )


def _drill(row: Mapping[Any, Any], now: datetime | None) -> DrillBrief:
    restore_s, validation_s = row["restore_seconds"], row["validation_seconds"]
    rto = None if restore_s is None else round(restore_s + (validation_s or 0.0), 3)
    return DrillBrief(
        id=row["id"],
        target=row["target"],
        mode=row["mode"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        age_s=_age(now, row["finished_at"] or row["started_at"]),
        restore_ts=row["restore_ts"],
        restore_time=_tso_time(row["restore_ts"]),
        rto_s=rto,
        restore_s=restore_s,
        validation_s=validation_s,
        tables_checked=row["tables_checked"],
        rows_checked=row["rows_checked"],
        mismatches=row["mismatches"],
        gx_success_ratio=row["gx_success_ratio"],
        data_docs_uri=row["data_docs_uri"],
        backups_used=tuple(row["backups_used"] or ()),
        error=row["error"],
        dag_id=row["dag_id"],
        run_id=row["run_id"],
    )


def plan_summary(plan: Mapping[str, Any] | None) -> str | None:
    """A stored restore plan in one line: ``pitr: full dev-full-… → incremental … → log to 2024-07-01 02:41:07 UTC``."""
    if not plan:
        return None
    steps = [s for s in plan.get("steps") or () if isinstance(s, Mapping)]
    parts = [f"{s.get('kind')} {s.get('backup_id')}" for s in steps if s.get("kind") != "point"]
    if plan.get("mode") == "pitr" and steps:
        full = next((s for s in steps if s.get("kind") == "point"), None)
        if full is not None and not parts:
            parts.append(f"full {full.get('backup_id')}")
        when = plan.get("restore_time") or plan.get("restore_ts")
        parts.append(f"log to {when}")
    line = f"{plan.get('mode') or '?'}: " + " → ".join(parts or ["no steps"])
    tables = [str(t) for t in plan.get("tables") or ()]
    if tables:
        line += f"; tables {', '.join(tables[:5])}" + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    wipe = plan.get("wipe") or ()
    if wipe:
        line += f"; drops {len(wipe)} table(s) on the target first"
    return line


def _restore(row: Mapping[Any, Any]) -> RestoreBrief:
    return RestoreBrief(
        id=row["id"],
        source=row["source"],
        target=row["target"],
        status=row["status"],
        requested_by=row["requested_by"],
        reason=row["reason"],
        requested_at=row["requested_at"],
        finished_at=row["finished_at"],
        restore_point=row["restore_point"],
        restore_ts=row["restore_ts"],
        restore_time=_tso_time(row["restore_ts"]),
        mode=row["mode"],
        dry_run=bool(row["dry_run"]),
        tables=tuple(row["tables"] or ()),
        backups_used=tuple(row["backups_used"] or ()),
        plan_summary=plan_summary(row["plan"]) if "plan" in row else None,
        restore_s=row["restore_seconds"],
        validation_ok=row["validation_ok"],
        error=row["error"],
        dag_id=row["dag_id"],
        run_id=row["run_id"],
    )


def _alert(row: RowMapping) -> AlertEpisode:
    return AlertEpisode(
        key=row["alert_key"],
        severity=row["severity"],
        message=row["message"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        resolved_at=row["resolved_at"],
        open=row["resolved_at"] is None,
        episodes=row["episodes"],
        occurrences=row["occurrences"],
        notified_at=row["notified_at"],
    )


# ------------------------------------------------------------------------------------------ fleet rows


def _open_frozen(conn: Connection) -> set[str]:
    query = select(log_backup_alerts.c.cluster).where(
        and_(log_backup_alerts.c.alert_key == CHECKPOINT_FROZEN, log_backup_alerts.c.resolved_at.is_(None))
    )
    return {r[0] for r in conn.execute(query)}


@dataclass(frozen=True)
class _Built:
    """A cluster's briefs as its kept facts make them, before the time of a request (ages unset)."""

    backups: Mapping[str, BackupBrief | None]  # by slot
    log: LogWindow | None
    last_drill: DrillBrief | None
    passed_drill: DrillBrief | None
    last_restore: RestoreBrief | None
    storage_bytes: int
    validation_failures: int


#: (catalog URL, cluster) -> (the facts' version, what they built): the briefs are pure functions of the
#: kept facts, so a long-lived process (the API server) builds each cluster's again only when a write has
#: changed its version; everything that depends on the time of the request is computed each time.
_BUILT: dict[tuple[str, str], tuple[int, _Built]] = {}
_B = TypeVar("_B", BackupBrief, DrillBrief)


def _build(kept: Mapping[str, Any]) -> _Built:
    backups_by_id: dict[str, BackupBrief] = {}  # one brief per backup, shared by the slots naming it
    slots: dict[str, BackupBrief | None] = {}
    for slot in ("last_full", "last_incremental", "ok_full", "ok_incremental", "newest_verified"):
        row = kept.get(slot)
        if row is not None and row["id"] not in backups_by_id:
            backups_by_id[row["id"]] = _backup(row, None)
        slots[slot] = None if row is None else backups_by_id[row["id"]]
    check, last_restore = kept.get("log_check"), kept.get("last_restore")
    last_drill = None if kept.get("last_drill") is None else _drill(kept["last_drill"], None)
    passed_row = kept.get("passed_drill")
    if passed_row is None:
        passed = None
    elif last_drill is not None and last_drill.id == passed_row["id"]:
        passed = last_drill
    else:
        passed = _drill(passed_row, None)
    return _Built(
        backups=slots,
        log=None if check is None else _log(check, False),
        last_drill=last_drill,
        passed_drill=passed,
        last_restore=None if last_restore is None else _restore(last_restore),
        storage_bytes=int(kept.get("storage_bytes") or 0),
        validation_failures=int(kept.get("validation_failures") or 0),
    )


def fleet_rows(catalog: Catalog, policies: Sequence[ClusterPolicy], now: datetime) -> list[FleetRow]:
    """One row per policy, in the policies' order; two statements whatever the number of clusters (and
    a few more for the clusters written since the last read)."""
    now = utc(now, "now")
    if not policies:
        return []
    names = [p.cluster for p in policies]
    url = catalog.url  # computed (redacted) on each access
    held = {n: _BUILT[(url, n)] for n in names if (url, n) in _BUILT}
    facts, versions = catalog.fleet_facts(names, known={n: v for n, (v, _b) in held.items()})
    built: dict[str, _Built] = {}
    for name in names:
        if name in facts:
            built[name] = _build(facts[name])
            if name in versions:
                _BUILT[(url, name)] = (versions[name], built[name])
            else:
                _BUILT.pop((url, name), None)
        elif name in held:
            built[name] = held[name][1]
        else:  # pragma: no cover (fleet_facts answers every cluster it was asked about)
            built[name] = _build({})
    with catalog.reading() as conn:
        frozen = _open_frozen(conn)
    return [_fleet_row(p, built[p.cluster], p.cluster in frozen, now) for p in policies]


def _aged(brief: _B | None, now: datetime, then: datetime | None) -> _B | None:
    return None if brief is None else brief.model_copy(update={"age_s": _age(now, then)})


def _fleet_row(policy: ClusterPolicy, built: _Built, frozen: bool, now: datetime) -> FleetRow:
    aged: dict[int, BackupBrief | None] = {}

    def brief(slot: str) -> BackupBrief | None:
        b = built.backups.get(slot)
        if b is None:
            return None
        if id(b) not in aged:
            aged[id(b)] = _aged(b, now, b.backup_time or b.started_at)
        return aged[id(b)]

    log = built.log if built.log is None or not frozen else built.log.model_copy(update={"frozen": True})
    ok_full, ok_incremental, verified = brief("ok_full"), brief("ok_incremental"), brief("newest_verified")
    last_drill = built.last_drill
    last_drill = None if last_drill is None else _aged(last_drill, now, last_drill.finished_at or last_drill.started_at)
    passed = built.passed_drill
    if passed is not None:
        passed = (
            last_drill
            if built.passed_drill is built.last_drill
            else _aged(passed, now, passed.finished_at or passed.started_at)
        )
    last_restore = built.last_restore
    facts = _Facts(
        last_full=brief("last_full"),
        last_incremental=brief("last_incremental"),
        ok_full=ok_full,
        newest_ok=max(
            (b for b in (ok_full, ok_incremental) if b is not None),
            key=lambda b: b.backup_ts or 0,
            default=None,
        ),
        verified=verified,
        log=log,
        last_drill=last_drill,
        passed_drill=passed,
    )
    rag, reasons = judge(policy, facts, now)
    return FleetRow(
        cluster=policy.cluster,
        env=policy.env,
        production=policy.production,
        rag=rag,
        reasons=reasons,
        last_full=facts.last_full,
        last_incremental=facts.last_incremental,
        last_full_success=None if ok_full is None else ok_full.finished_at,
        last_incremental_success=None if ok_incremental is None else ok_incremental.finished_at,
        last_verified=None if verified is None else verified.backup_time,
        log=log,
        max_checkpoint_lag_s=policy.max_checkpoint_lag_s if policy.log_backup else None,
        window_promise_s=policy.window_promise_s,
        last_drill=facts.last_drill,
        last_drill_success=None if passed is None else passed.finished_at or passed.started_at,
        validation_failures=built.validation_failures,
        last_restore=last_restore,
        storage_bytes=built.storage_bytes,
    )


# ------------------------------------------------------------------------------------------- verdicts


class _Facts:
    """What the verdict reads of one cluster (the newest rows of each sort)."""

    def __init__(
        self,
        *,
        last_full: BackupBrief | None,
        last_incremental: BackupBrief | None,
        ok_full: BackupBrief | None,
        newest_ok: BackupBrief | None,
        verified: BackupBrief | None,
        log: LogWindow | None,
        last_drill: DrillBrief | None,
        passed_drill: DrillBrief | None,
    ) -> None:
        self.last_full = last_full
        self.last_incremental = last_incremental
        self.ok_full = ok_full
        self.newest_ok = newest_ok
        self.verified = verified
        self.log = log
        self.last_drill = last_drill
        self.passed_drill = passed_drill


def _span(seconds: float) -> str:
    """``2d 3h``, ``3h 5m``, ``5m 3s``, ``12s``: ``tidbops info``'s ages."""
    return human_age(timedelta(seconds=seconds))


def judge(policy: ClusterPolicy, facts: _Facts, now: datetime) -> tuple[Rag, tuple[str, ...]]:
    """Red, amber or green, and why in words (red reasons first). The rules are in the module docstring."""
    red: list[str] = []
    amber: list[str] = []
    if facts.ok_full is None:
        red.append("no restorable backup: no succeeded full backup in the catalog")
    verified_at = None if facts.verified is None else facts.verified.backup_time
    if verified_at is None:
        if facts.ok_full is not None:
            red.append("no backup has been verified")
    elif (now - verified_at).total_seconds() > policy.stale_backup_s:
        red.append(
            f"newest verified backup is {_span((now - verified_at).total_seconds())} old "
            f"(limit {_span(policy.stale_backup_s)})"
        )
    if policy.log_backup:
        _judge_log(policy, facts.log, red, amber)
    last_drill = facts.last_drill
    if last_drill is not None and last_drill.status == "failed":
        error = f": {last_drill.error[:160]}" if last_drill.error else ""
        red.append(f"last drill {last_drill.id} failed{error}")
    newest = facts.newest_ok
    if newest is not None and newest.verify_failed:
        amber.append(f"newest backup {newest.id} failed verification")
    elif newest is not None and not newest.verified:
        amber.append(f"newest backup {newest.id} is not verified yet")
    attempts = [b for b in (facts.last_full, facts.last_incremental) if b is not None]
    latest_attempt = max(attempts, key=lambda b: b.started_at, default=None)
    if latest_attempt is not None and latest_attempt.status == "failed":
        amber.append(f"last backup attempt {latest_attempt.id} failed")
    if policy.drills:
        passed = facts.passed_drill
        passed_at = None if passed is None else passed.finished_at or passed.started_at
        if passed_at is None:
            amber.append("no drill has passed yet")
        elif (now - passed_at).total_seconds() > policy.drill_max_age_s:
            amber.append(
                f"no drill passed in {_span((now - passed_at).total_seconds())} (limit {_span(policy.drill_max_age_s)})"
            )
    if red:
        return "red", (*red, *amber)
    if amber:
        return "amber", tuple(amber)
    return "green", ()


def _judge_log(policy: ClusterPolicy, log: LogWindow | None, red: list[str], amber: list[str]) -> None:
    if log is None:
        amber.append("log backup is enabled but has never been checked")
        return
    if log.status != _RUNNING_LOG:
        red.append(f"log backup is not running: the last check found it {log.status}")
    limit = policy.max_checkpoint_lag_s
    if log.lag_s is not None and log.lag_s > limit:
        red.append(f"checkpoint lag {_span(log.lag_s)} is over its limit {_span(limit)}")
    elif log.lag_s is not None and log.lag_s > LAG_WARNING_SHARE * limit:
        amber.append(f"checkpoint lag {_span(log.lag_s)} is over 80% of its limit {_span(limit)}")
    if log.frozen:
        red.append("the log backup checkpoint is frozen (its alert is open)")
    promise = policy.window_promise_s
    if promise is not None and log.window_start is not None and log.window_end is not None:
        span = (log.window_end - log.window_start).total_seconds()
        if span < promise:
            amber.append(f"PITR window {_span(span)} is shorter than the {_span(promise)} retention promises")
    elif promise is not None and log.status == _RUNNING_LOG:
        amber.append(f"no PITR window yet (retention promises {_span(promise)})")


# ---------------------------------------------------------------------------------------- cluster view


def cluster_view(catalog: Catalog, policy: ClusterPolicy, now: datetime, *, backups_limit: int = 200) -> ClusterView:
    """The cluster page: its fleet row, its newest backups (``backups_limit``), drills, restores (from or
    into it), log-backup alerts and the newest slow-query report."""
    now = utc(now, "now")
    (summary,) = fleet_rows(catalog, [policy], now)
    name = policy.cluster
    with catalog.reading() as conn:
        backup_rows = conn.execute(
            select(*fact_columns(backups))
            .where(backups.c.cluster == name)
            .order_by(desc(backups.c.started_at), desc(backups.c.id))
            .limit(backups_limit)
        ).mappings()
        backup_list = tuple(_backup(r, now) for r in backup_rows)
        drill_rows = conn.execute(
            select(*fact_columns(drills)).where(drills.c.cluster == name).order_by(desc(drills.c.started_at)).limit(100)
        ).mappings()
        drill_list = tuple(_drill(r, now) for r in drill_rows)
        restore_rows = conn.execute(
            select(*fact_columns(restores), restores.c.plan)  # the page shows each plan in a line
            .where(or_(restores.c.source == name, restores.c.target == name))
            .order_by(desc(restores.c.requested_at), desc(restores.c.id))
            .limit(100)
        ).mappings()
        restore_list = tuple(_restore(r) for r in restore_rows)
        alert_rows = conn.execute(
            select(log_backup_alerts)
            .where(log_backup_alerts.c.cluster == name)
            .order_by(log_backup_alerts.c.resolved_at.is_not(None), desc(log_backup_alerts.c.last_seen))
        ).mappings()
        alert_list = tuple(_alert(r) for r in alert_rows)
        report = _newest_report(conn, name)
    return ClusterView(
        summary=summary,
        backups=backup_list,
        drills=drill_list,
        restores=restore_list,
        alerts=alert_list,
        slow_queries=report,
    )


def _newest_report(conn: Connection, cluster: str) -> SlowQueryReportView | None:
    from tidbops.catalog.schema import slow_query_reports

    row = conn.execute(
        select(slow_query_reports.c.day, slow_query_reports.c.report)
        .where(slow_query_reports.c.cluster == cluster)
        .order_by(desc(slow_query_reports.c.day))
        .limit(1)
    ).first()
    if row is None:
        return None
    return slow_query_view(str(row[0]), row[1] if isinstance(row[1], Mapping) else {})


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _digest(entry: Mapping[str, Any]) -> SlowQueryDigest:
    return SlowQueryDigest(
        digest=str(entry.get("digest") or ""),
        sample_sql=entry.get("sample_sql") if isinstance(entry.get("sample_sql"), str) else None,
        count=_count(entry.get("count")),
        total_s=_num(entry.get("total_query_time")),
        avg_s=_num(entry.get("avg_query_time")),
        p95_s=_num(entry.get("p95_query_time")),
    )


def _regression(entry: Mapping[str, Any]) -> SlowQueryDigest:
    metric = str(entry.get("metric") or "p95")
    avg, p95 = _num(entry.get("avg")), _num(entry.get("p95"))
    base_avg, base_p95 = _num(entry.get("baseline_avg")), _num(entry.get("baseline_p95"))
    ratio = _num(entry.get("ratio"))
    use_avg = metric == "avg"
    new, base = (avg, base_avg) if use_avg else (p95, base_p95)
    change = None
    if new is not None and base is not None:
        change = f"{'avg' if use_avg else 'p95'} {base:.3g} s → {new:.3g} s" + (
            f" ({ratio:.1f}×)" if ratio is not None else ""
        )
    return SlowQueryDigest(
        digest=str(entry.get("digest") or ""),
        sample_sql=entry.get("sample_sql") if isinstance(entry.get("sample_sql"), str) else None,
        count=_count(entry.get("count")),
        avg_s=avg,
        p95_s=p95,
        change=change,
    )


def slow_query_view(day: str, report: Mapping[str, Any]) -> SlowQueryReportView:
    """A stored slow-query report (``SlowQueryReport.to_json``) as the cluster page shows it."""

    def entries(key: str) -> list[Mapping[str, Any]]:
        return [e for e in report.get(key) or () if isinstance(e, Mapping)]

    return SlowQueryReportView(
        day=str(report.get("day") or day),
        top=tuple(_digest(e) for e in entries("top")),
        regressions=tuple(_regression(e) for e in entries("regressions")),
        new_digests=tuple(_digest(e) for e in entries("new_digests")),
    )


# ----------------------------------------------------------------------------------------------- audit


def _audit_event(row: RowMapping) -> AuditEvent:
    category = row["category"] if row["category"] in AUDIT_CATEGORIES else category_of(row["kind"])
    details = row["details"]
    return AuditEvent(
        id=int(row["id"]),
        time=row["time"],
        cluster=row["cluster"],
        category=category,
        kind=row["kind"],
        status=row["status"],
        actor=row["actor"],
        backup_id=row["backup_id"],
        message=row["message"],
        details=details if isinstance(details, dict) else None,
    )


def _audit_filters(query: AuditQuery) -> list[ColumnElement[bool]] | None:
    """The WHERE terms of ``query`` (without the cursor); ``None`` when nothing can match."""
    terms: list[ColumnElement[bool]] = []
    visible = None if query.clusters is None else set(query.clusters)
    if query.cluster is not None:
        if visible is not None and query.cluster not in visible:
            return None
        terms.append(events.c.cluster == query.cluster)
    elif visible is not None:
        if not visible:
            return None
        # Through a function, so that the planner walks the (filter, time) index and checks visibility
        # row by row, rather than collecting every visible cluster's events to sort them.
        terms.append(func.coalesce(events.c.cluster, "").in_(sorted(visible)))
    if query.category is not None:
        terms.append(events.c.category == query.category)
    if query.status is not None:
        terms.append(events.c.status == query.status)
    if query.actor is not None:
        terms.append(events.c.actor == query.actor)
    if query.since is not None:
        terms.append(events.c.time >= utc(query.since, "since"))
    if query.until is not None:
        terms.append(events.c.time <= utc(query.until, "until"))
    return terms


def _after(conn: Connection, cursor: int) -> ColumnElement[bool]:
    """Events after ``cursor`` in the audit's order (time, then id, both descending)."""
    at = conn.execute(select(events.c.time).where(events.c.id == cursor)).scalar()
    if at is None:
        return events.c.id < cursor
    return or_(events.c.time < at, and_(events.c.time == at, events.c.id < cursor))


def _audit_rows(conn: Connection, terms: list[ColumnElement[bool]], cursor: int | None, limit: int) -> list[AuditEvent]:
    where = list(terms)
    if cursor is not None:
        where.append(_after(conn, cursor))
    query = select(events).where(*where).order_by(desc(events.c.time), desc(events.c.id)).limit(limit)
    return [_audit_event(r) for r in conn.execute(query).mappings()]


def audit_page(catalog: Catalog, query: AuditQuery) -> AuditPage:
    """One page of the audit, newest first; ``next_cursor`` is set when there is more."""
    terms = _audit_filters(query)
    if terms is None:
        return AuditPage(items=(), next_cursor=None, limit=query.limit)
    with catalog.reading() as conn:
        rows = _audit_rows(conn, terms, query.before_id, query.limit + 1)
    more = len(rows) > query.limit
    items = tuple(rows[: query.limit])
    return AuditPage(items=items, next_cursor=items[-1].id if more and items else None, limit=query.limit)


def iter_audit(catalog: Catalog, query: AuditQuery, *, max_rows: int = 100_000) -> Iterator[AuditEvent]:
    """Every event ``query`` matches (its ``limit`` aside), newest first, at most ``max_rows``; read in
    chunks, each in its own short read."""
    terms = _audit_filters(query)
    if terms is None or max_rows <= 0:
        return
    cursor = query.before_id
    left = max_rows
    while left > 0:
        want = min(_EXPORT_CHUNK, left)
        with catalog.reading() as conn:
            rows = _audit_rows(conn, terms, cursor, want)
        yield from rows
        if len(rows) < want:
            return
        left -= want
        cursor = rows[-1].id


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    text_value = str(value)
    return "'" + text_value if text_value.startswith(_FORMULA_START) else text_value


def audit_csv(events_in: Iterable[AuditEvent]) -> Iterator[str]:
    """The audit as CSV: a header line, then one line per event (``AUDIT_CSV_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Sequence[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(v) for v in values])
        return buffer.getvalue()

    yield line(AUDIT_CSV_COLUMNS)
    for event in events_in:
        yield line([getattr(event, name) for name in AUDIT_CSV_COLUMNS])
