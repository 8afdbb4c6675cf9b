"""Log backup (PITR) health: read ``br log status``, judge it, decide what to do, and de-duplicate alerts.

TiDB ships no alerting for log backup, and its most reported failure is a checkpoint that stops moving
while ``br log status`` still says NORMAL (pingcap/tidb#53047). One check (``check_log_backup``):

1. **Read the status** (``read_log_status``): ``br log status --json``; BR exits 0 even for a task in
   ERROR, so the state comes from the output. Released builds print no ``status`` in JSON
   (pingcap/tidb#57959): then the table form is read too, for the state, and merged by task name (JSON
   keeps the exact checkpoint TSO). A BR too old for ``--json`` gets the table form only.
2. **Judge it** (``evaluate``) into findings (each an alert key) and actions:

   ======================= ========= ==================================================================
   finding / action        severity  when
   ======================= ========= ==================================================================
   start (action)                    no task, log backup enabled: ``br log start`` (the repair step)
   resume (action)                   task PAUSE and ``log_backup.auto_resume``: ``br log resume``
   ``task_paused``         warning   task PAUSE and auto_resume off
   ``task_error``          critical  task ERROR; the message carries ``last_errors`` / ``error[store=N]``
   ``checkpoint_lag``      critical  NORMAL, and now − global checkpoint > ``max_checkpoint_lag``
   ``checkpoint_frozen``   critical  NORMAL, and the checkpoint is the one the previous check(s) saw,
                                     for at least ``frozen_after`` (pingcap/tidb#53047)
   ``gc_held``             warning   the GC safepoint is older than ``max_gc_hold`` (pingcap/tidb#52082)
   ``unexpected_task``     warning   tasks run, none with the configured name (BR runs one per cluster)
   ``start_failed``,       critical  the repair step's ``br log start`` / ``resume`` failed (BR's error)
   ``resume_failed``
   ======================= ========= ==================================================================

   A paused or failed task is reported by its state alone: its lag and frozen checkpoint are implied.
3. **Record it** in the catalog: one ``log_backup_checks`` row (time, status, checkpoint, lag, log range,
   PITR window, GC safepoint, findings: the RPO history) and the alert states (``observe``).

**Alert de-duplication** (``observe``, ``pending_notifications``, ``mark_notified``): one state per
(cluster, alert key). A finding opens an episode, notified once; while it lasts, checks only move its
``last_seen`` (and a reminder goes out after ``remind_after``, if set); a check that no longer finds it
resolves the episode, and a recovery is notified (if the episode was). Keys a check could not judge
(no GC safepoint read, an action still to run) keep their state. When the catalog is down nothing can be
de-duplicated: ``unsuppressed`` sends every finding, marked so.

Pure: BR runs through a callable the caller passes; the catalog is passed in (``None`` when down).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from tidbops import tso
from tidbops.backup import CatalogLink  # the catalog-outage handling the backup steps use
from tidbops.br.command import log_argv
from tidbops.br.errors import BRError
from tidbops.br.output import LogTaskStatus, is_log_status_output, parse_br_output, parse_log_status
from tidbops.catalog.info import human_age
from tidbops.catalog.logkeys import add_log_key, confirm_log_key, window_within_log_keys
from tidbops.catalog.records import AlertState, LogBackupCheck, summarise_error, utc
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.durations import format_duration
from tidbops.errors import TiDBOpsError
from tidbops.keys.logkeys import LogKey, new_log_key
from tidbops.keys.owner import DataKey
from tidbops.pitr import LogRange, PitrWindow, compute_window, log_range_from_status
from tidbops.timefmt import iso_or_none, iso_tso, show, show_tso

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 120.0
DEFAULT_FROZEN_AFTER = 240.0  # TiKV flushes log backup every 3 min by default: 4 min unchanged is not healthy
DEFAULT_HISTORY = 20
DEFAULT_KEEP_CHECKS = timedelta(days=90)
GC_HOLDER_TOLERANCE = 900.0  # the GC worker runs every 10 min: its safepoint trails the one it honours

TASK_ERROR = "task_error"
TASK_PAUSED = "task_paused"
CHECKPOINT_LAG = "checkpoint_lag"
CHECKPOINT_FROZEN = "checkpoint_frozen"
GC_HELD = "gc_held"
UNEXPECTED_TASK = "unexpected_task"
START_FAILED = "start_failed"
RESUME_FAILED = "resume_failed"
CHECK_KEYS = (TASK_ERROR, TASK_PAUSED, CHECKPOINT_LAG, CHECKPOINT_FROZEN, GC_HELD, UNEXPECTED_TASK)
REPAIR_KEYS = {"start": START_FAILED, "resume": RESUME_FAILED}
TITLES = {
    TASK_ERROR: "log backup task in ERROR",
    TASK_PAUSED: "log backup task paused",
    CHECKPOINT_LAG: "log backup checkpoint lag over the limit",
    CHECKPOINT_FROZEN: "log backup checkpoint frozen",
    GC_HELD: "GC held back",
    UNEXPECTED_TASK: "unexpected log backup task",
    START_FAILED: "log backup start failed",
    RESUME_FAILED: "log backup resume failed",
}

Severity = Literal["critical", "warning"]
ActionKind = Literal["start", "resume"]
CheckStatus = Literal["NORMAL", "PAUSE", "ERROR", "ABSENT", "UNKNOWN"]
NotificationKind = Literal["firing", "reminder", "resolved", "notice"]


def _dur(seconds: float | None) -> str:
    return "unknown" if seconds is None else format_duration(seconds)


# -------------------------------------------------------------------------------------- reading


class ProcessOutput(Protocol):
    """What one BR run gave back (``tidbops.br.runner.ProcessResult`` has it)."""

    @property
    def exit_code(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr_tail(self) -> str: ...


RunProcess = Callable[[list[str]], ProcessOutput]


@dataclass(frozen=True)
class StatusReading:
    """Every log backup task ``br log status`` showed, and which form(s) it was read from."""

    tasks: tuple[LogTaskStatus, ...]
    source: Literal["json", "text", "json+text"]
    notes: tuple[str, ...] = ()

    def task(self, name: str | None) -> LogTaskStatus | None:
        return next((t for t in self.tasks if t.name == name), None)


def _br_failed(result: ProcessOutput) -> BRError:
    return BRError(
        exit_code=result.exit_code,
        outcome=parse_br_output(result.stdout + "\n" + result.stderr_tail),
        stderr_tail=result.stderr_tail,
        command="log status",
    )


def _is_json(text: str) -> bool:
    return any(ln.strip() == "[]" or ln.strip().startswith("[{") for ln in text.splitlines())


def read_log_status(cluster: ClusterConfig, run: RunProcess, *, log_file: str | None = None) -> StatusReading:
    """``br log status`` for every task of the cluster (no ``--task-name``: an unexpected task shows too).

    Raises ``BRError`` when BR fails (PD unreachable, say): that is no verdict on the task.
    """
    notes: list[str] = []
    result = run(log_argv(cluster, "status", json_output=True, log_file=log_file))
    said = result.stdout + "\n" + result.stderr_tail
    if result.exit_code != 0:
        if "unknown flag" not in said or "json" not in said:
            raise _br_failed(result)
        notes.append("this BR has no `log status --json`: read the table form")
    elif _is_json(result.stdout) and is_log_status_output(result.stdout):
        tasks = parse_log_status(result.stdout)
        if all(t.status is not None for t in tasks):
            return StatusReading(tuple(tasks), "json", tuple(notes))
        notes.append("BR's JSON has no task status (pingcap/tidb#57959): read the table form for it")
        text = run(log_argv(cluster, "status", json_output=False, log_file=log_file))
        if text.exit_code != 0 or not is_log_status_output(text.stdout):
            notes.append("the table form could not be read either: status unknown")
            return StatusReading(tuple(tasks), "json", tuple(notes))
        states = {t.name: t for t in parse_log_status(text.stdout)}
        merged = []
        for t in tasks:
            other = states.get(t.name)
            if t.status is None and other is not None and other.status is not None:
                t = replace(t, status=other.status, status_derived=False, pause=other.pause or t.pause)
            merged.append(t)
        return StatusReading(tuple(merged), "json+text", tuple(notes))
    else:
        notes.append("BR printed no JSON for `log status --json`: read the table form")
    text = run(log_argv(cluster, "status", json_output=False, log_file=log_file))
    if text.exit_code != 0:
        raise _br_failed(text)
    if not is_log_status_output(text.stdout):
        raise _br_failed(text)
    return StatusReading(tuple(parse_log_status(text.stdout)), "text", tuple(notes))


# ------------------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Finding:
    """One problem a check found; ``key`` names its alert (one episode at a time per cluster)."""

    key: str
    severity: Severity
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "severity": self.severity, "message": self.message, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        severity: Severity = "critical" if d.get("severity") == "critical" else "warning"
        return cls(str(d["key"]), severity, str(d.get("message") or ""), dict(d.get("details") or {}))


@dataclass(frozen=True)
class Action:
    """Something the repair step does to the cluster's log backup (it runs in the cluster's BR pool)."""

    kind: ActionKind
    task_name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "task_name": self.task_name, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        kind = str(d["kind"])
        if kind not in REPAIR_KEYS:
            raise ValueError(f"unknown log backup action {kind!r}; known: {', '.join(REPAIR_KEYS)}")
        return cls("start" if kind == "start" else "resume", str(d["task_name"]), str(d.get("reason") or ""))


@dataclass(frozen=True)
class Evaluation:
    """What one check found: the task's state, findings, actions, and the keys it could judge."""

    cluster: str
    checked_at: datetime
    status: CheckStatus
    task: LogTaskStatus | None
    findings: tuple[Finding, ...]
    evaluated: frozenset[str]
    actions: tuple[Action, ...] = ()
    lag_seconds: float | None = None
    gc_safe_point: datetime | None = None
    gc_hold_seconds: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def checkpoint_ts(self) -> int | None:
        return self.task.checkpoint_ts if self.task else None


def _errors_text(task: LogTaskStatus) -> str:
    parts = []
    for e in task.errors:
        where = f"store {e.store_id}" if e.store_id is not None else "pause payload"
        at = f" at {show(e.happen_at)}" if e.happen_at else ""
        parts.append(f"{where}{at}: {e.code or 'no code'}: {e.message or 'no message'}")
    return "; ".join(parts)


def _frozen_since(task: LogTaskStatus, previous: Sequence[LogBackupCheck]) -> tuple[datetime, int] | None:
    """When the current checkpoint was first seen by the unbroken run of earlier checks that all saw it
    (NORMAL, same task), and how many did; ``None`` when the previous check saw something else."""
    since: datetime | None = None
    count = 0
    for prev in previous:  # newest first
        if prev.task_name != task.name or prev.status not in ("NORMAL", "UNKNOWN"):
            break
        if prev.checkpoint_ts != task.checkpoint_ts:
            break
        since, count = prev.checked_at, count + 1
    return (since, count) if since is not None else None


def _gc_holder(task: LogTaskStatus | None, safe_point: datetime) -> str:
    cp = task.checkpoint_time if task else None
    if task is None:
        return (
            "no log backup task runs: a service safepoint left by a stopped task (pingcap/tidb#52082) or another "
            "service (BR, TiCDC, Lightning) holds it; PD's service safepoints (`pd-ctl service-gc-safepoint`) say which"
        )
    if cp is not None and abs((cp - safe_point).total_seconds()) <= GC_HOLDER_TOLERANCE:
        return f"log backup task {task.name} holds it at its checkpoint ({show(cp)})"
    return (
        f"the log backup checkpoint ({show(cp)}) is past it, so another service safepoint holds it: a leftover "
        "log-backup safepoint (pingcap/tidb#52082), BR or TiCDC (`pd-ctl service-gc-safepoint`)"
    )


def evaluate(
    cluster: ClusterConfig,
    reading: StatusReading,
    *,
    now: datetime,
    previous: Sequence[LogBackupCheck] = (),
    gc_safe_point: datetime | None = None,
    frozen_after: float = DEFAULT_FROZEN_AFTER,
) -> Evaluation:
    """Judge one reading of ``br log status`` (see the module docs for the rules).

    ``previous``: the cluster's earlier checks, newest first (for the frozen-checkpoint rule);
    ``gc_safe_point``: the cluster's GC safepoint, ``None`` when it could not be read (then ``gc_held``
    is not judged); ``frozen_after``: how long an unchanged checkpoint must have been seen unchanged.
    """
    now = utc(now, "now")
    cfg = cluster.log_backup
    name = cfg.task_name
    pd = ",".join(cluster.pd)
    findings: list[Finding] = []
    actions: list[Action] = []
    notes = list(reading.notes)
    evaluated = set(CHECK_KEYS)

    task = reading.task(name)
    if task is None and reading.tasks:
        task = reading.tasks[0]
        names = ", ".join(t.name for t in reading.tasks)
        findings.append(
            Finding(
                UNEXPECTED_TASK,
                "warning",
                f"no log backup task named {name!r}; BR runs {names} (one task per cluster), so {name!r} is not "
                f"started. The health below is of {task.name!r}, whose logs go to {task.storage or 'unknown'}, not "
                f"to the configured {cluster.log_storage_uri}. Stop it, or set log_backup.task_name",
                {"expected": name, "found": [t.name for t in reading.tasks]},
            )
        )

    status: CheckStatus
    lag: float | None = None
    if task is None:
        status = "ABSENT"
        if cfg.enabled and name:
            actions.append(Action("start", name, f"no log backup task: starting {name} into {cluster.log_storage_uri}"))
        else:
            notes.append("no log backup task, and log backup is not enabled for this cluster")
    else:
        status = task.status or "UNKNOWN"
        lag = task.lag_seconds(now)
        cp = show(task.checkpoint_time)
        if status == "UNKNOWN":
            notes.append(f"task {task.name}: BR printed no state; judged as if NORMAL")
        if status == "ERROR":
            errors = _errors_text(task) or (
                "no store error was printed (an automatic pause, e.g. the lag limit: pingcap/tidb#53561)"
            )
            findings.append(
                Finding(
                    TASK_ERROR,
                    "critical",
                    f"log backup task {task.name} is in ERROR: {errors}. Checkpoint {cp} (lag {_dur(lag)}): PITR "
                    f"ends there. BR does not resume it by itself: fix the cause, then `br log resume --task-name "
                    f"{task.name} --pd {pd}`; if that fails with ErrBackupGCSafepointExceeded, stop the task, start "
                    "it into a new storage path and take a full backup",
                    {"errors": [e.to_dict() for e in task.errors], "checkpoint_ts": task.checkpoint_ts},
                )
            )
        elif status == "PAUSE":
            since = task.pause.get("pause-time")
            if cfg.auto_resume and task.name == name:
                actions.append(
                    Action("resume", task.name, f"task {task.name} is paused and log_backup.auto_resume is on")
                )
            else:
                why = "log_backup.auto_resume is off" if cfg.auto_resume is False else "it is not the configured task"
                findings.append(
                    Finding(
                        TASK_PAUSED,
                        "warning",
                        f"log backup task {task.name} is paused{f' (since {since})' if since else ''}: checkpoint "
                        f"{cp} (lag {_dur(lag)}) does not move and PITR ends there; {why}. When the pause is over: "
                        f"`br log resume --task-name {task.name} --pd {pd}`. A paused task holds GC back at its "
                        "checkpoint (24 h by default)",
                        {"pause": dict(task.pause), "checkpoint_ts": task.checkpoint_ts},
                    )
                )
        else:  # NORMAL (or a state BR did not print)
            if lag is not None and lag > cfg.max_checkpoint_lag:
                findings.append(
                    Finding(
                        CHECKPOINT_LAG,
                        "critical",
                        f"checkpoint lag {_dur(lag)} exceeds log_backup.max_checkpoint_lag "
                        f"{_dur(cfg.max_checkpoint_lag)}: the newest restorable point is {cp} (task {task.name}, "
                        f"status {status})",
                        {"lag_seconds": round(lag, 3), "limit_seconds": cfg.max_checkpoint_lag},
                    )
                )
            frozen = _frozen_since(task, previous) if task.checkpoint_ts is not None else None
            if frozen is not None:
                since_dt, count = frozen
                stalled = (now - since_dt).total_seconds()
                if stalled >= frozen_after:
                    findings.append(
                        Finding(
                            CHECKPOINT_FROZEN,
                            "critical",
                            f"the checkpoint of task {task.name} has not moved since {show(since_dt)} ({count + 1} "
                            f"checks over {_dur(stalled)}) while the task says {status} (pingcap/tidb#53047): "
                            f"checkpoint {cp}, lag {_dur(lag)}. Check the TiDB log-backup advancer and TiKV's "
                            f"log-backup; pausing and resuming the task often unsticks it (`br log pause --task-name "
                            f"{task.name} --pd {pd}`, then `br log resume …`)",
                            {"since": iso_or_none(since_dt), "checks": count + 1, "checkpoint_ts": task.checkpoint_ts},
                        )
                    )
                else:
                    notes.append(f"checkpoint unchanged for {_dur(stalled)} (frozen after {_dur(frozen_after)})")

    hold: float | None = None
    if gc_safe_point is None:
        evaluated.discard(GC_HELD)
        notes.append("GC safepoint unknown: GC hold not judged")
    else:
        hold = (now - utc(gc_safe_point, "gc_safe_point")).total_seconds()
        if hold > cfg.max_gc_hold:
            findings.append(
                Finding(
                    GC_HELD,
                    "warning",
                    f"the GC safepoint ({show(gc_safe_point)}) is {_dur(hold)} old, beyond log_backup.max_gc_hold "
                    f"{_dur(cfg.max_gc_hold)}: {_gc_holder(task, gc_safe_point)}. Old MVCC versions pile up and "
                    "slow reads down",
                    {"gc_safe_point": iso_or_none(gc_safe_point), "hold_seconds": round(hold, 3)},
                )
            )
    planned = {a.kind for a in actions}
    evaluated.update(key for kind, key in REPAIR_KEYS.items() if kind not in planned)
    return Evaluation(
        cluster=cluster.name,
        checked_at=now,
        status=status,
        task=task,
        findings=tuple(findings),
        evaluated=frozenset(evaluated),
        actions=tuple(actions),
        lag_seconds=lag,
        gc_safe_point=gc_safe_point,
        gc_hold_seconds=hold,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------- alert states


def observe(
    states: Mapping[str, AlertState],
    cluster: str,
    findings: Iterable[Finding],
    evaluated: Iterable[str],
    now: datetime,
) -> list[AlertState]:
    """The alert states a check changes: findings open an episode (or extend the open one); keys the check
    judged and did not find resolve theirs. Keys not judged are left alone."""
    now = utc(now, "now")
    found = {f.key: f for f in findings}
    changed: list[AlertState] = []
    for key, finding in found.items():
        old = states.get(key)
        details = dict(finding.details)
        if old is None or not old.is_open:
            changed.append(
                AlertState(
                    cluster=cluster,
                    key=key,
                    severity=finding.severity,
                    message=finding.message,
                    first_seen=now,
                    last_seen=now,
                    occurrences=1,
                    episodes=(old.episodes + 1) if old else 1,
                    details=details,
                )
            )
        else:
            changed.append(
                replace(
                    old,
                    severity=finding.severity,
                    message=finding.message,
                    last_seen=now,
                    occurrences=old.occurrences + 1,
                    details=details,
                )
            )
    for key in set(evaluated) - set(found):
        old = states.get(key)
        if old is not None and old.is_open:
            changed.append(replace(old, resolved_at=now))
    return changed


@dataclass(frozen=True)
class Notification:
    """One message to the cluster's alert routes: an episode firing (or a reminder of it), its recovery,
    or a one-off notice (the repair step started or resumed the task)."""

    cluster: str
    key: str
    kind: NotificationKind
    severity: str
    message: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    resolved_at: datetime | None = None
    occurrences: int | None = None
    deduplicated: bool = True

    @property
    def title(self) -> str:
        what = TITLES.get(self.key, self.key.replace("_", " "))
        state = {"firing": "FIRING", "reminder": "STILL FIRING", "resolved": "RESOLVED", "notice": "NOTICE"}
        return f"[{state[self.kind]}] {self.cluster}: {what}"

    @property
    def text(self) -> str:
        """The message a person reads (one paragraph)."""
        if self.kind == "resolved":
            lasted = (
                f" after {human_age(self.resolved_at - self.first_seen)}"
                if self.resolved_at and self.first_seen
                else ""
            )
            return f"{self.title}{lasted} (since {show(self.first_seen)}). Was: {self.message}"
        since = f" (since {show(self.first_seen)}, {self.occurrences} checks)" if self.kind == "reminder" else ""
        tail = "" if self.deduplicated else " [not de-duplicated: the catalog is unavailable]"
        return f"{self.title}{since}: {self.message}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "key": self.key,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "first_seen": iso_or_none(self.first_seen),
            "last_seen": iso_or_none(self.last_seen),
            "resolved_at": iso_or_none(self.resolved_at),
            "occurrences": self.occurrences,
            "deduplicated": self.deduplicated,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notification:
        def when(key: str) -> datetime | None:
            value = d.get(key)
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None

        kind = str(d["kind"])
        if kind not in ("firing", "reminder", "resolved", "notice"):
            raise ValueError(f"unknown notification kind {kind!r}")
        return cls(
            cluster=str(d["cluster"]),
            key=str(d["key"]),
            kind=kind,  # type: ignore[arg-type]
            severity=str(d.get("severity") or "warning"),
            message=str(d.get("message") or ""),
            first_seen=when("first_seen"),
            last_seen=when("last_seen"),
            resolved_at=when("resolved_at"),
            occurrences=d.get("occurrences"),
            deduplicated=bool(d.get("deduplicated", True)),
        )


def pending_notifications(
    states: Iterable[AlertState], now: datetime, remind_after: float | None = None
) -> list[Notification]:
    """What is owed: episodes never notified, reminders due, recoveries of notified episodes not sent."""
    now = utc(now, "now")
    out: list[Notification] = []
    for s in sorted(states, key=lambda s: (s.cluster, s.key)):
        kind: NotificationKind | None = None
        if s.is_open:
            if s.notified_at is None:
                kind = "firing"
            elif remind_after is not None and (now - s.notified_at).total_seconds() >= remind_after:
                kind = "reminder"
        elif s.notified_at is not None and s.recovery_notified_at is None:
            kind = "resolved"
        if kind is not None:
            out.append(
                Notification(
                    cluster=s.cluster,
                    key=s.key,
                    kind=kind,
                    severity=s.severity,
                    message=s.message,
                    first_seen=s.first_seen,
                    last_seen=s.last_seen,
                    resolved_at=s.resolved_at,
                    occurrences=s.occurrences,
                )
            )
    return out


def mark_notified(state: AlertState, notification: Notification, now: datetime) -> AlertState:
    """The state after ``notification`` (of this state's episode) went out."""
    now = utc(now, "now")
    if notification.kind in ("firing", "reminder"):
        return replace(state, notified_at=now, notify_count=state.notify_count + 1)
    if notification.kind == "resolved":
        return replace(state, recovery_notified_at=now)
    return state


def unsuppressed(cluster: str, findings: Iterable[Finding], now: datetime) -> list[Notification]:
    """Every finding as a firing notification: what goes out when the catalog (the de-dup state) is down."""
    return [
        Notification(cluster, f.key, "firing", f.severity, f.message, first_seen=now, last_seen=now, deduplicated=False)
        for f in findings
    ]


# --------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class CheckResult:
    """One check: its evaluation, the PITR window, the row recorded, and how the catalog fared."""

    evaluation: Evaluation
    window: PitrWindow
    record: LogBackupCheck
    source: str
    catalog: str  # "recorded" or "unavailable"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        ev, w, r = self.evaluation, self.window, self.record
        return {
            "cluster": ev.cluster,
            "checked_at": iso_or_none(ev.checked_at),
            "task_name": r.task_name,
            "status": ev.status,
            "status_source": self.source,
            "checkpoint_ts": r.checkpoint_ts,
            "checkpoint_time": iso_or_none(r.checkpoint_time),
            "lag_seconds": None if ev.lag_seconds is None else round(ev.lag_seconds, 3),
            "gc_safe_point": iso_or_none(ev.gc_safe_point),
            "gc_hold_seconds": None if ev.gc_hold_seconds is None else round(ev.gc_hold_seconds, 3),
            "healthy": ev.healthy,
            "findings": [f.to_dict() for f in ev.findings],
            "evaluated": sorted(ev.evaluated),
            "actions": [a.to_dict() for a in ev.actions],
            "window": {
                "exists": w.exists,
                "start_ts": w.start_ts,
                "start_time": iso_or_none(w.start_time),
                "end_ts": w.end_ts,
                "end_time": iso_or_none(w.end_time),
                "base_backup_id": w.base.backup_id if w.base else None,
                "log": w.log.to_dict() if w.log else None,
                "reason": w.reason,
            },
            "check_id": r.id,
            "catalog": self.catalog,
            "notes": list(self.notes),
        }


def check_log_backup(
    cluster: ClusterConfig,
    reading: StatusReading,
    *,
    now: datetime,
    catalog: Catalog | None,
    log_range: LogRange | None = None,
    gc_safe_point: datetime | None = None,
    frozen_after: float = DEFAULT_FROZEN_AFTER,
    dag_id: str | None = None,
    run_id: str | None = None,
    history: int = DEFAULT_HISTORY,
    keep_checks: timedelta = DEFAULT_KEEP_CHECKS,
) -> CheckResult:
    """Judge a status reading, compute the PITR window, record the check and update the alert states.

    ``log_range``: from ``br log metadata`` (``None`` when it could not be read: the task's start and
    checkpoint stand in). Works without the catalog (``None``, or one that stops answering): nothing is
    recorded, the frozen rule has no history and the window knows no backups; the notes say so.
    """
    now = utc(now, "now")
    link = CatalogLink(catalog)
    previous = link.call("read earlier checks", lambda c: c.list_log_backup_checks(cluster.name, limit=history))
    if previous is None:
        link.notes.append("no earlier checks (catalog unavailable): the frozen-checkpoint rule is not applied")
    ev = evaluate(
        cluster, reading, now=now, previous=previous or (), gc_safe_point=gc_safe_point, frozen_after=frozen_after
    )
    task = ev.task
    if log_range is None and task is not None:
        log_range = log_range_from_status(task.start_ts, task.checkpoint_ts)
    backups = link.call("read the backups", lambda c: c.list_backups(cluster.name))
    window = compute_window(cluster.name, backups or (), log_range)
    window = link.call("read the log keys", lambda c: window_within_log_keys(c, window)) or window  # #17
    record = LogBackupCheck(
        cluster=cluster.name,
        checked_at=now,
        status=ev.status,
        healthy=ev.healthy,
        task_name=task.name if task else cluster.log_backup.task_name,
        status_source=reading.source,
        checkpoint_ts=ev.checkpoint_ts,
        lag_seconds=None if ev.lag_seconds is None else round(ev.lag_seconds, 3),
        log_min_ts=log_range.min_ts if log_range else None,
        log_max_ts=log_range.max_ts if log_range else None,
        log_range_source=log_range.source if log_range else None,
        window_start_ts=window.start_ts,
        window_end_ts=window.end_ts,
        window_base_backup_id=window.base.backup_id if window.base else None,
        gc_safe_point=gc_safe_point,
        gc_hold_seconds=None if ev.gc_hold_seconds is None else round(ev.gc_hold_seconds, 3),
        findings=tuple(
            {"key": f.key, "severity": f.severity, "message": summarise_error(f.message)} for f in ev.findings
        ),
        dag_id=dag_id,
        run_id=run_id,
    )
    stored = link.call("record the check", lambda c: c.add_log_backup_check(record))
    link.call(
        "update the alert states",
        lambda c: c.update_alert_states(
            cluster.name, lambda states: observe(states, cluster.name, ev.findings, ev.evaluated, now)
        ),
    )
    link.call("prune old checks", lambda c: c.prune_log_backup_checks(cluster.name, now - keep_checks))
    return CheckResult(
        evaluation=ev,
        window=window,
        record=stored or record,
        source=reading.source,
        catalog="recorded" if link.available else "unavailable",
        notes=(*ev.notes, *window.notes, *link.notes),
    )


# ---------------------------------------------------------------------------------------- repair


class BRSessionLike(Protocol):
    @property
    def cluster(self) -> ClusterConfig: ...
    @property
    def log_file(self) -> str: ...


@dataclass(frozen=True)
class ActionOutcome:
    action: Action
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.action.to_dict(), "ok": self.ok, "error": self.error}


@dataclass(frozen=True)
class RepairResult:
    outcomes: tuple[ActionOutcome, ...]
    findings: tuple[Finding, ...]
    notices: tuple[Notification, ...]
    catalog: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcomes": [o.to_dict() for o in self.outcomes],
            "findings": [f.to_dict() for f in self.findings],
            "notices": [n.to_dict() for n in self.notices],
            "catalog": self.catalog,
            "notes": list(self.notes),
        }


def _event(
    kind: str, cluster: str, message: str, now: datetime, details: Mapping[str, Any] | None = None
) -> Callable[[Catalog], None]:
    return lambda c: c.add_event(kind, message, cluster=cluster, details=details, time=now)


class LogKeyStartError(TiDBOpsError):
    """An owner-key log start stopped before BR: its fresh log key could not be recorded."""


@dataclass(frozen=True)
class LogKeyIO:
    """What an owner-key cluster's ``br log start`` needs from the caller (#17, ``tidbops.keys.logkeys``):
    ``write_manifest`` puts the log key's manifest (wrapped only) next to the log data; ``key_file`` gives
    the clear key to BR as a 0600 file removed afterwards; ``read_start_ts`` reads the task's start TS
    (``br log status``) once BR ran, None when there is no such task."""

    write_manifest: Callable[[LogKey], None]
    key_file: Callable[[DataKey], AbstractContextManager[str]]
    read_start_ts: Callable[[str], int | None]


def _log_key_start(
    cluster: ClusterConfig, action: Action, catalog: Catalog | None, io: LogKeyIO | None, now: datetime
) -> tuple[DataKey, LogKey] | None:
    """An owner-key cluster's fresh log key for this start, catalogued and in the storage before BR runs
    (so a retried or crashed start never leaves log files whose key is lost); None for other clusters."""
    enc = cluster.br.encryption
    if action.kind != "start" or enc is None or not enc.owner_key:
        return None
    if catalog is None or io is None:
        raise LogKeyStartError(
            f"cluster {cluster.name} encrypts its log backup with owner-held log keys: `br log start` runs only "
            "once its fresh log key is catalogued (wrapped), and the catalog is unavailable; BR did not run"
        )
    made = new_log_key(cluster, task_name=action.task_name, now=now)
    assert made is not None
    try:
        add_log_key(catalog, made[1])
        io.write_manifest(made[1])
    except Exception as exc:  # catalog or storage down: BR must not start with a key recorded nowhere
        raise LogKeyStartError(
            f"log key {made[1].id} could not be recorded ({type(exc).__name__}: {exc}); BR did not run"
        ) from None
    return made


def _log_key_started(catalog: Catalog | None, io: LogKeyIO | None, key: LogKey | None) -> LogKey | None:
    """After BR started the task with ``key``: the task's start TS begins the key's segment."""
    if key is None or catalog is None or io is None:
        return None
    try:
        start_ts = io.read_start_ts(key.task_name)
        if start_ts is None:
            return None
        confirmed = confirm_log_key(catalog, key.id, start_ts)
        io.write_manifest(confirmed)
    except Exception as exc:  # BR's own outcome stands; the segment stays unconfirmed (no PITR window from it)
        log.warning("log key %s: its start TS was not recorded (%s: %s)", key.id, type(exc).__name__, exc)
        return None
    return confirmed


def repair_log_backup(
    session: BRSessionLike,
    actions: Sequence[Action],
    *,
    run_br: Callable[[list[str]], object],
    catalog: Catalog | None,
    now: datetime,
    log_keys: LogKeyIO | None = None,
) -> RepairResult:
    """Run the check's actions (``br log start`` / ``br log resume``); ``run_br`` raises ``BRError`` when
    BR fails. A failure is no task failure: it becomes the finding ``start_failed`` / ``resume_failed``
    (with BR's error) and its alert; a success becomes a notice, an ``events`` row, and resolves it.

    An owner-key cluster's start gets a fresh log key (``log_keys``, #17): catalogued and written next to
    the log before BR runs, given to BR as ``--log.crypter.key-file``, its segment confirmed after."""
    now = utc(now, "now")
    cluster = session.cluster
    link = CatalogLink(catalog)
    outcomes: list[ActionOutcome] = []
    findings: list[Finding] = []
    notices: list[Notification] = []
    for action in actions:
        key = REPAIR_KEYS[action.kind]
        log_key: LogKey | None = None
        try:
            with ExitStack() as files:
                made = _log_key_start(cluster, action, catalog, log_keys, now)
                key_file = files.enter_context(log_keys.key_file(made[0])) if made and log_keys else None
                log_key = made[1] if made else None
                del made
                argv = log_argv(
                    cluster,
                    action.kind,
                    task_name=action.task_name,
                    log_file=session.log_file,
                    log_crypter_key_file=key_file,
                )
                run_br(argv)
                # only after BR's success: a task found after a failure may be another start's (another key);
                # a key BR may have taken before failing stays recorded (catalog, manifest), unconfirmed
                _log_key_started(catalog, log_keys, log_key)
        except (BRError, LogKeyStartError) as exc:
            error = summarise_error(str(exc))
            outcomes.append(ActionOutcome(action, False, error))
            findings.append(
                Finding(
                    key,
                    "critical",
                    f"`br log {action.kind} --task-name {action.task_name}` failed ({action.reason}): {error}",
                    {"code": exc.code, "exit_code": exc.exit_code}
                    if isinstance(exc, BRError)
                    else {"code": "TiDBOps:LogKeyNotRecorded", "exit_code": None},
                )
            )
            failed = _event(f"log_backup.{action.kind}_failed", cluster.name, findings[-1].message, now)
            link.call("record the failure", failed)
            continue
        outcomes.append(ActionOutcome(action, True))
        done = "started" if action.kind == "start" else "resumed"
        if action.kind == "start":
            message = (
                f"log backup task {action.task_name} was missing and has been started into "
                f"{cluster.log_storage_uri}; PITR starts at the next full backup"
            )
            if log_key is not None:
                message += f" (a fresh log key, {log_key.id}, wrapped to key id {log_key.key_id})"
        else:
            message = f"log backup task {action.task_name} was paused and has been resumed ({action.reason})"
        notices.append(Notification(cluster.name, f"task_{done}", "notice", "warning", message, first_seen=now))
        details = {"task_name": action.task_name, "reason": action.reason}
        link.call(f"record the {action.kind}", _event(f"log_backup.{done}", cluster.name, message, now, details))
    attempted = {REPAIR_KEYS[a.kind] for a in actions}
    link.call(
        "update the alert states",
        lambda c: c.update_alert_states(
            cluster.name, lambda states: observe(states, cluster.name, findings, attempted, now)
        ),
    )
    return RepairResult(
        tuple(outcomes),
        tuple(findings),
        tuple(notices),
        "recorded" if link.available else "unavailable",
        tuple(link.notes),
    )


# ----------------------------------------------------------------------------------- waiting for it


@dataclass(frozen=True)
class CheckpointProgress:
    """Where a cluster's log checkpoint stands against a target TSO (for "wait until the log passes TS")."""

    state: Literal["reached", "waiting", "stuck"]
    target_ts: int
    checkpoint_ts: int | None
    status: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "target_ts": self.target_ts,
            "target_time": iso_tso(self.target_ts),
            "checkpoint_ts": self.checkpoint_ts,
            "checkpoint_time": iso_tso(self.checkpoint_ts) if self.checkpoint_ts else None,
            "status": self.status,
            "message": self.message,
        }


def checkpoint_progress(reading: StatusReading, task_name: str | None, target_ts: int) -> CheckpointProgress:
    """``reached`` once the task's global checkpoint is at or past ``target_ts``; ``stuck`` when it cannot
    get there by itself (no such task, PAUSE, ERROR); else ``waiting``."""
    task = reading.task(task_name) if task_name else (reading.tasks[0] if len(reading.tasks) == 1 else None)
    target = show_tso(target_ts)
    if task is None:
        names = ", ".join(t.name for t in reading.tasks) or "none"
        return CheckpointProgress(
            "stuck", target_ts, None, "ABSENT", f"no log backup task {task_name or ''} (tasks: {names})".strip()
        )
    status = task.status or "UNKNOWN"
    cp = task.checkpoint_ts
    if cp is not None and cp >= target_ts:
        return CheckpointProgress(
            "reached", target_ts, cp, status, f"checkpoint {show(task.checkpoint_time)} passed {target}"
        )
    if status in ("PAUSE", "ERROR"):
        detail = f": {_errors_text(task)}" if task.errors else ""
        return CheckpointProgress(
            "stuck", target_ts, cp, status,
            f"task {task.name} is {status}{detail}; its checkpoint ({show(task.checkpoint_time)}) will not reach "
            f"{target} until it is resumed",
        )  # fmt: skip
    behind = (tso.physical_ms(target_ts) - tso.physical_ms(cp)) / 1000.0 if cp else None
    return CheckpointProgress(
        "waiting", target_ts, cp, status,
        f"checkpoint {show(task.checkpoint_time)}, {_dur(behind)} before {target}",
    )  # fmt: skip


_TSO_TEXT = re.compile(r"^\s*[0-9]{1,20}\s*$")


def target_tso(value: object, now: datetime) -> int:
    """A wait target: a TSO (int or digits), ``now``/``latest`` (the current time), or an aware ISO time."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a TSO or time")
    if isinstance(value, int):
        ts = value
    elif isinstance(value, str) and _TSO_TEXT.match(value):
        ts = int(value)
    elif isinstance(value, str) and value.strip().lower() in ("now", "latest"):
        ts = tso.from_datetime(utc(now, "now"))
    elif isinstance(value, datetime | str):
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        ts = tso.from_datetime(utc(dt, "target"))
    else:
        raise ValueError(f"{value!r} is not a TSO, 'now', or an ISO time with a zone")
    if ts <= 0:
        raise ValueError(f"target TSO must be positive, not {ts}")
    return ts
