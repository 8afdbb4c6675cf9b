"""On-demand restores: a DBA's request, the guardrails, the plan, and its record.

A request (``RestoreRequest``: from the ``tidb_restore`` DAG's trigger form, the REST API's ``conf`` or
``tidbops restore``) goes through the guardrails before anything runs. Each refusal is a
``RestoreRefused`` naming its guardrail, with a message that says what would be valid:

1. **request** (``check_request``, no I/O): a reason is given; source and target are clusters of the fleet;
   the target is one the source may be restored into (``restore.allowed_targets``, or every scratch
   cluster when that list is empty) and not the source itself unless ``restore.allow_in_place``; a
   production target (or any real restore into a cluster not marked scratch) carries ``confirm`` equal to
   the target's name; the restore point parses (``parse_restore_point``); the table filters are BR
   table-filter rules (argv is a list, never a shell string: no pattern can inject anything).
2. **catalog** (``resolve_point``): the point is inside the restorable window (PITR) or is a backup that
   succeeded, was verified against its manifest and whose chain is whole; a scratch target is not held by
   a running drill (``check_scratch_free``).
3. **target** (``check_target_databases``, ``check_log_tasks``): BR restores a full or PITR restore only
   into a cluster without user databases; a scratch target is wiped first (it is marked scratch), any
   other is refused naming its databases. BR v8 refuses to restore while a log backup task runs on the
   target: refused naming the task.

``plan_restore`` then assembles the ``RestorePlan``: the backups (a snapshot chain, or a full backup plus
the log), the BR command lines (secrets redacted), what is wiped, and the expected duration from past
drills of the source. ``render_plan`` prints it for the task log, the run's note and the CLI. The BR
command lines are rebuilt from the plan when the restore runs (``recovery.plan.plan_argvs``), with the
real log and key file paths.

An on-demand restore is one front door of the restore engine (``tidbops.recovery``): the plan is a
``RecoveryPlan``; the target's preparation, BR's runs and the validation are the engine's, shared with
drills. Nothing here imports Airflow: the operators of ``tidbops_airflow.operators.restore`` (and the
shared ones of ``tidbops_airflow.operators.recovery``) and ``tidbops restore --dry-run`` call these
functions.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

from tidbops import tso
from tidbops.br.command import parse_ts, table_matcher
from tidbops.br.errors import BRRequestError
from tidbops.catalog.records import (
    BackupRecord,
    BackupStatus,
    DrillRecord,
    DrillStatus,
    RestoreRecord,
    RestoreStatus,
    index,
)
from tidbops.config import ClusterConfig
from tidbops.errors import TiDBOpsError
from tidbops.pitr import PitrWindow, snapshot_points
from tidbops.recovery import scratch
from tidbops.recovery.errors import TargetNotEmptyError
from tidbops.recovery.plan import (
    RecoveryPlan,
    RestoreMode,
    RestoreStep,
    chain_steps,
    parse_time,
    plan_argvs,
    shown_pems,
)
from tidbops.recovery.run import Reported
from tidbops.redact import redact, redact_argv
from tidbops.restore_rules import POINT_FORMATS, allowed_targets, needs_confirm
from tidbops.timefmt import iso, show, show_tso, utc

#: what ``make_backup_id`` makes: ``<cluster>-<full|incr>-<yyyymmddTHHMMSSZ>-<hash>``
BACKUP_ID_SHAPE = re.compile(r"^[a-z][a-z0-9_-]*-(?:full|incr)-\d{8}t\d{6}z-[0-9a-f]{8}$", re.IGNORECASE)
PointKind = Literal["latest", "time", "tso", "backup"]
Guardrail = Literal[
    "request",
    "unknown_cluster",
    "target_not_allowed",
    "in_place",
    "confirm",
    "restore_point",
    "outside_window",
    "backup_not_restorable",
    "tables",
    "target_not_empty",
    "log_backup_running",
    "scratch_in_use",
]


class RestoreRefused(TiDBOpsError):
    """A guardrail refused the request; nothing has run. ``guardrail`` names which."""

    def __init__(self, guardrail: Guardrail, message: str) -> None:
        self.guardrail = guardrail
        super().__init__(message)


# ------------------------------------------------------------------------------------------ request


def _flag(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise RestoreRefused("request", f"{name} {value!r} is not true or false")


def _tables(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.replace("\n", ",").split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise RestoreRefused("tables", f"tables {value!r} is not a list of BR table filters (e.g. ['shop.orders'])")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise RestoreRefused("tables", f"table filter {item!r} is not a string")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


@dataclass(frozen=True)
class RestoreRequest:
    """What a DBA asked for (the DAG's Params; ``from_conf`` reads them). Never holds a secret."""

    source: str
    target: str
    restore_point: str = "latest"
    tables: tuple[str, ...] = ()
    dry_run: bool = True
    confirm: str = ""
    validate_after: bool = False
    reason: str = ""

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> RestoreRequest:
        """From the DAG's params / a run's ``conf`` (``source_cluster``, ``target_cluster``, …)."""

        def text(key: str, default: str = "") -> str:
            value = conf.get(key)
            return default if value is None else str(value).strip()

        return cls(
            source=text("source_cluster"),
            target=text("target_cluster"),
            restore_point=text("restore_point", "latest") or "latest",
            tables=_tables(conf.get("tables")),
            dry_run=_flag(conf.get("dry_run"), "dry_run", True),
            confirm=text("confirm"),
            validate_after=_flag(conf.get("validate_after"), "validate_after", False),
            reason=text("reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_cluster": self.source,
            "target_cluster": self.target,
            "restore_point": self.restore_point,
            "tables": list(self.tables),
            "dry_run": self.dry_run,
            "confirm": self.confirm,
            "validate_after": self.validate_after,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PointSpec:
    """A parsed restore point: ``latest``, a time (``ts``; ``zone``: the user's, for messages), a TSO,
    or a backup id."""

    kind: PointKind
    text: str
    ts: int | None = None
    backup_id: str | None = None
    zone: tzinfo | None = None


def parse_restore_point(text: str) -> PointSpec:
    """``latest``, a datetime with a zone, a TSO, or a backup id; ``RestoreRefused`` with the accepted
    formats otherwise (a datetime without a zone too: BR refuses those for PITR, and 10:41 in which zone
    is exactly the doubt a 3 a.m. restore must not have)."""
    s = (text or "").strip()
    if not s or s.lower() == "latest":
        return PointSpec("latest", "latest")
    if BACKUP_ID_SHAPE.match(s):
        return PointSpec("backup", s, backup_id=s)
    try:
        ts = parse_ts(s, require_tz=True)
    except BRRequestError as exc:
        detail = str(exc)
        if "timezone" in detail:
            detail = "it has no time zone (add one, e.g. +01:00 or Z)"
        raise RestoreRefused(
            "restore_point", f"restore point {s!r} is not valid: {detail}. Accepted: {POINT_FORMATS}"
        ) from None
    if s.isdigit():
        if tso.physical_ms(ts) < 1_000_000_000_000:  # before 2001: not a TSO anybody means
            raise RestoreRefused(
                "restore_point", f"restore point {s!r} is not a TSO of this century. Accepted: {POINT_FORMATS}"
            )
        return PointSpec("tso", s, ts=ts, zone=UTC)
    return PointSpec("time", s, ts=ts, zone=_zone_of(s))


def _zone_of(text: str) -> tzinfo:
    s = text.strip()
    if s.endswith(("Z", "z")):
        return UTC
    tail = s[-6:].replace(":", "")
    for cut in (5, 3):
        part = tail[-cut:]
        if part[:1] in "+-" and part[1:].isdigit():
            sign = -1 if part[0] == "-" else 1
            hours, minutes = int(part[1:3]), int(part[3:5] or 0)
            return timezone(sign * timedelta(hours=hours, minutes=minutes))
    return UTC


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed the guardrails that need no I/O."""

    request: RestoreRequest
    source: ClusterConfig
    target: ClusterConfig
    point: PointSpec
    tables: tuple[str, ...]


def check_request(request: RestoreRequest, clusters: Mapping[str, ClusterConfig]) -> CheckedRequest:
    """The guardrails that need nothing but the request and the fleet config (see the module docs)."""
    known = ", ".join(sorted(clusters)) or "(none)"
    sources = ", ".join(sorted(n for n, c in clusters.items() if not c.scratch)) or "(none)"
    if not request.reason or len(request.reason) < 3:
        raise RestoreRefused(
            "request", "reason is required: say why this restore is needed (it is kept in the restores audit)"
        )
    source = clusters.get(request.source)
    if source is None:
        what = f"unknown source cluster {request.source!r}" if request.source else "no source cluster given"
        raise RestoreRefused("unknown_cluster", f"{what}; known clusters: {sources}")
    if source.scratch:
        raise RestoreRefused(
            "unknown_cluster", f"{source.name} is a scratch cluster: it has no backups to restore; sources: {sources}"
        )
    target = clusters.get(request.target)
    if target is None:
        what = f"unknown target cluster {request.target!r}" if request.target else "no target cluster given"
        raise RestoreRefused("unknown_cluster", f"{what}; known clusters: {known}")
    allowed = allowed_targets(source, clusters)
    if target.name == source.name and not source.restore.allow_in_place:
        raise RestoreRefused(
            "in_place",
            f"restoring {source.name} onto itself is not allowed (restore.allow_in_place is false for "
            f"{source.name}); restore into one of: {', '.join(allowed) or '(none configured)'}",
        )
    if target.name not in allowed:
        raise RestoreRefused(
            "target_not_allowed",
            f"{target.name} is not an allowed restore target of {source.name}; allowed: "
            f"{', '.join(allowed) or '(none: set restore.allowed_targets or mark a cluster scratch)'}",
        )
    if needs_confirm(target, request.dry_run) and request.confirm != target.name:
        marked = ", marked production" if target.production else ""
        why = (
            f"{target.name} is a production cluster (env {target.env}{marked})"
            if target.is_production
            else f"{target.name} is not a scratch cluster and this is not a dry run"
        )
        got = f"confirm was {request.confirm!r}" if request.confirm else "confirm is empty"
        raise RestoreRefused("confirm", f"{why}: type {target.name!r} in confirm to go on ({got}); nothing was run")
    point = parse_restore_point(request.restore_point)
    try:
        table_matcher(request.tables)
    except BRRequestError as exc:
        raise RestoreRefused("tables", f"{exc}; nothing was run") from None
    return CheckedRequest(request, source, target, point, request.tables)


# --------------------------------------------------------------------------------------- the point


def _window_text(window: PitrWindow, zone: tzinfo | None) -> str:
    assert window.start_ts is not None and window.end_ts is not None
    return f"{show_tso(window.start_ts, zone=zone)} → {show_tso(window.end_ts, zone=zone)}"


@dataclass(frozen=True)
class ResolvedPoint:
    mode: RestoreMode
    restore_ts: int
    steps: tuple[RestoreStep, ...]
    reason: str


def _pitr(window: PitrWindow, ts: int, rows: Sequence[BackupRecord], zone: tzinfo | None, why: str) -> ResolvedPoint:
    base = window.base_for(ts)
    assert base is not None  # window.covers(ts)
    record = index(rows)[base.backup_id]
    step = RestoreStep("point", base.backup_id, record.storage_uri, base.backup_ts)
    reason = (
        f"{why}: PITR to {show_tso(ts, zone=zone)} from full backup {base.backup_id} ({show_tso(base.backup_ts)}) + log"
    )
    return ResolvedPoint("pitr", ts, (step,), reason)


def resolve_point(
    point: PointSpec, source: ClusterConfig, backups: Iterable[BackupRecord], window: PitrWindow | None
) -> ResolvedPoint:
    """Which backups restore ``point`` of ``source`` (its catalog rows, and its PITR window when it has
    log backup): ``RestoreRefused`` naming the window or why a backup will not do."""
    rows = [b for b in backups if b.cluster == source.name]
    points, notes = snapshot_points(rows)
    has_window = window is not None and window.exists
    zone = point.zone
    if point.kind == "latest":
        if has_window:
            assert window is not None and window.end_ts is not None
            return _pitr(window, window.end_ts, rows, zone, "latest: the log checkpoint")
        verified = [p for p in points if p.verified]
        if not verified:
            why = window.reason if window is not None else "no log backup"
            raise RestoreRefused(
                "backup_not_restorable",
                f"{source.name} has no restorable point: no verified backup chain"
                f"{' (' + '; '.join(notes) + ')' if notes else ''}, and no PITR window ({why})",
            )
        newest = verified[-1]
        return ResolvedPoint(
            "snapshot",
            newest.backup_ts,
            chain_steps(rows, newest.chain),
            f"latest: the newest verified backup {newest.backup_id} ({show_tso(newest.backup_ts)}), "
            f"a chain of {len(newest.chain)}",
        )
    if point.kind in ("time", "tso"):
        assert point.ts is not None
        if has_window and window is not None and window.covers(point.ts):
            return _pitr(window, point.ts, rows, zone, f"{point.text}")
        exact = [p for p in points if p.backup_ts == point.ts and p.verified]
        if exact:
            return ResolvedPoint(
                "snapshot",
                point.ts,
                chain_steps(rows, exact[-1].chain),
                f"{point.text}: exactly the BackupTS of {exact[-1].backup_id}",
            )
        if has_window:
            assert window is not None and window.end_ts is not None
            late = (
                "; the log checkpoint has not reached it yet (it trails by the log backup's lag: wait and retry, "
                "or choose an earlier time)"
                if point.ts > window.end_ts
                else ""
            )
            raise RestoreRefused(
                "outside_window",
                f"restore point {show_tso(point.ts, zone=zone)} is outside {source.name}'s restorable window "
                f"{_window_text(window, zone)}{late}. Choose a time inside it, 'latest', or a backup id",
            )
        snapshots = ", ".join(f"{p.backup_id} ({show_tso(p.backup_ts)})" for p in points[-3:] if p.verified)
        raise RestoreRefused(
            "outside_window",
            f"{source.name} has no PITR window ({window.reason if window is not None else 'no log backup'}), so "
            f"{show_tso(point.ts, zone=zone)} cannot be restored; restore a backup instead"
            f"{': ' + snapshots if snapshots else ''}",
        )
    assert point.backup_id is not None
    record = next((b for b in backups if b.id == point.backup_id), None)
    if record is None:
        recent = ", ".join(p.backup_id for p in points[-3:])
        raise RestoreRefused(
            "backup_not_restorable",
            f"backup {point.backup_id} is not in the catalog; recent restorable backups of {source.name}: "
            f"{recent or '(none)'}",
        )
    if record.cluster != source.name:
        raise RestoreRefused(
            "backup_not_restorable", f"backup {record.id} is a backup of {record.cluster}, not of {source.name}"
        )
    if record.status is not BackupStatus.SUCCEEDED:
        error = f": {record.error}" if record.error else ""
        raise RestoreRefused(
            "backup_not_restorable",
            f"backup {record.id} is {record.status.value}, not succeeded{error}; only a succeeded, verified "
            "backup can be restored",
        )
    match = next((p for p in points if p.backup_id == record.id), None)
    if match is None:
        why = next((n for n in notes if n.startswith(record.id)), f"{record.id}: its chain is not restorable")
        raise RestoreRefused("backup_not_restorable", f"backup {why}")
    if not match.verified:
        unverified = [i for i in match.chain if not index(rows)[i].verified]
        raise RestoreRefused(
            "backup_not_restorable",
            f"backup {record.id} is not verified against its manifest yet ({', '.join(unverified)} of its chain "
            "not verified); verify it first (tidbops catalog verify) or choose a verified backup",
        )
    return ResolvedPoint(
        "snapshot",
        match.backup_ts,
        chain_steps(rows, match.chain),
        f"backup {record.id} ({show_tso(match.backup_ts)}), a chain of {len(match.chain)}",
    )


# ------------------------------------------------------------------------------------------ target


def check_target_databases(target: ClusterConfig, databases: Iterable[str]) -> tuple[str, ...]:
    """The guardrail of ``recovery.scratch.check_target_databases``: what must be dropped from a scratch
    target before BR restores into it; ``RestoreRefused`` naming the databases of any other that is not
    empty."""
    try:
        return scratch.check_target_databases(target, databases)
    except TargetNotEmptyError as exc:
        raise RestoreRefused("target_not_empty", str(exc)) from None


def check_log_tasks(target: ClusterConfig, tasks: Iterable[str]) -> None:
    """BR v8 refuses to restore while a log backup task runs on the target: refuse first, naming it."""
    names = sorted(set(tasks))
    if names:
        raise RestoreRefused(
            "log_backup_running",
            f"log backup task {', '.join(names)} is running on target {target.name}; BR v8 refuses to restore "
            f"while it runs. Stop it (br log stop --task-name {names[0]}), restore, then start log backup again "
            "and take a full backup",
        )


def check_scratch_free(target: ClusterConfig, running: Iterable[DrillRecord]) -> None:
    """A scratch target held by a running drill is refused (the restore would wipe the drill's data)."""
    for drill in running:
        if drill.target == target.name and drill.status is DrillStatus.RUNNING:
            raise RestoreRefused(
                "scratch_in_use",
                f"scratch cluster {target.name} is in use by drill {drill.id} of {drill.cluster} (running since "
                f"{show(drill.started_at)}); restore into another target or after it ends",
            )


def expected_duration(drills: Iterable[DrillRecord], mode: RestoreMode) -> tuple[float | None, str]:
    """The restore time to expect: the median restore time of the source's recent passed drills (of the
    same mode when there are some), and what that figure is based on."""
    passed = [d for d in drills if d.status is DrillStatus.PASSED and d.restore_seconds is not None]
    same = [d for d in passed if d.mode == mode] or passed
    recent = sorted(same, key=lambda d: d.started_at, reverse=True)[:5]
    if not recent:
        return None, "no passed drill of this cluster yet: no estimate"
    figures = [float(d.restore_seconds or 0.0) for d in recent]
    kind = f"{mode} " if all(d.mode == mode for d in recent) else ""
    shown = ", ".join(f"{x:.1f}s" for x in figures)
    basis = f"median restore time of the last {len(recent)} {kind}drill(s): {shown}"
    return round(statistics.median(figures), 1), basis


# -------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True, kw_only=True)
class RestorePlan(RecoveryPlan):
    """A checked request made concrete (``plan_id``: the restore id). JSON round trip (``to_dict``/
    ``from_dict``) for XCom and the ``restores`` row; ``commands`` are for reading (redacted),
    ``recovery.plan.plan_argvs`` rebuilds the real ones."""

    wipe: tuple[str, ...]
    point_reason: str
    expected_seconds: float | None
    expected_basis: str
    commands: tuple[str, ...]
    request: Mapping[str, Any]
    created_at: datetime
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def restore_id(self) -> str:
        return self.plan_id

    @property
    def dry_run(self) -> bool:
        return bool(self.request.get("dry_run", True))

    @property
    def validate_after(self) -> bool:
        return bool(self.request.get("validate_after", False))

    def clusters(self, clusters: Mapping[str, ClusterConfig]) -> tuple[ClusterConfig, ClusterConfig]:
        """The plan's clusters from the fleet config as it is now, the request checked again against it
        (``RestoreRefused`` when it no longer passes)."""
        checked = check_request(RestoreRequest.from_conf(self.request), clusters)
        return checked.source, checked.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "restore_id": self.restore_id,
            "source": self.source,
            **self.common_dict(),
            "tables": list(self.tables),
            "wipe": list(self.wipe),
            "point_reason": self.point_reason,
            "expected_seconds": self.expected_seconds,
            "expected_basis": self.expected_basis,
            "commands": list(self.commands),
            "request": dict(self.request),
            "created_at": iso(self.created_at),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RestorePlan:
        return cls(
            plan_id=str(d["restore_id"]),
            source=str(d["source"]),
            **cls.common_fields(d),
            tables=tuple(str(t) for t in d.get("tables") or ()),
            wipe=tuple(str(t) for t in d.get("wipe") or ()),
            point_reason=str(d.get("point_reason") or ""),
            expected_seconds=float(d["expected_seconds"]) if d.get("expected_seconds") is not None else None,
            expected_basis=str(d.get("expected_basis") or ""),
            commands=tuple(str(c) for c in d.get("commands") or ()),
            request=dict(d.get("request") or {}),
            created_at=parse_time(d["created_at"]),
            notes=tuple(str(n) for n in d.get("notes") or ()),
        )


def plan_restore(
    checked: CheckedRequest,
    *,
    restore_id: str,
    resolved: ResolvedPoint,
    wipe: Sequence[str],
    drills: Iterable[DrillRecord] = (),
    now: datetime,
) -> RestorePlan:
    """The plan of a request that passed every guardrail."""
    seconds, basis = expected_duration((d for d in drills if d.cluster == checked.source.name), resolved.mode)
    notes: list[str] = []
    if checked.tables and seconds is not None:
        notes.append("the estimate is for the whole cluster; a restore of some tables is usually faster")
    if checked.target.scratch and wipe:
        notes.append(f"{checked.target.name} is a scratch cluster: its databases are dropped before BR runs")
    enc = checked.source.br.encryption
    key_files: dict[str, str] | None = None
    if enc is not None and enc.owner_key and enc.owner_public_key:  # #17
        from tidbops.keys.owner import key_id

        conn = checked.source.restore.owner_key_conn_id
        notes.append(
            f"{checked.source.name} backs up with owner-held keys (key id {key_id(enc.owner_public_key)}): the "
            "restore task unwraps each backup's data key with the private key of "
            + (f"connection {conn}" if conn else "restore.owner_key_conn_id, which the fleet config does not set")
            + "; without it there, the restore is refused before BR runs"
        )
        key_files = {s.backup_id: f"<data key file of {s.backup_id}>" for s in resolved.steps}
        if resolved.mode == "pitr":
            notes.append(
                "its log backup is encrypted with a log key per log task start (tidbops.keys.logkeys): the restore "
                "task unwraps the one covering this point with the same private key (--log.crypter.key-file)"
            )
    draft = RestorePlan(
        plan_id=restore_id,
        source=checked.source.name,
        target=checked.target.name,
        mode=resolved.mode,
        restore_ts=resolved.restore_ts,
        steps=resolved.steps,
        tables=checked.tables,
        wipe=tuple(wipe),
        log_storage_uri=checked.source.log_storage_uri if resolved.mode == "pitr" else None,
        point_reason=resolved.reason,
        expected_seconds=seconds,
        expected_basis=basis,
        commands=(),
        request=checked.request.to_dict(),
        created_at=utc(now, "now"),
        notes=tuple(notes),
    )
    argvs = plan_argvs(
        draft,
        source=checked.source,
        target=shown_pems(checked.target),
        log_file="<br log file>",
        crypter_key_file="<crypter key file>" if enc is not None and key_files is None else None,
        key_files=key_files,
        log_key_file="<log key file>" if key_files is not None and resolved.mode == "pitr" else None,
    )
    return replace(draft, commands=tuple(redact_argv(a) for a in argvs))


def render_plan(plan: RestorePlan, *, requested_by: str | None = None) -> str:
    """The plan as a DBA reads it: in the task log, as the run's note, from ``tidbops restore``."""
    req = plan.request
    head = "DRY RUN: nothing is changed" if plan.dry_run else "RESTORE"
    lines = [
        f"{head}: {plan.source} → {plan.target} ({plan.restore_id})",
        f"restore point: {show_tso(plan.restore_ts)} (TSO {plan.restore_ts}); asked: {req.get('restore_point')!r}",
        f"  {plan.point_reason}",
        f"tables: {', '.join(plan.tables) if plan.tables else 'all (the whole cluster)'}",
        f"backups ({plan.mode}):",
        *(
            f"  {i}. {s.kind} {s.backup_id} ({show_tso(s.backup_ts)}) {s.storage_uri}"
            for i, s in enumerate(plan.steps, 1)
        ),
    ]
    if plan.log_storage_uri:
        lines.append(f"  + log {plan.log_storage_uri} up to {show_tso(plan.restore_ts)}")
    lines.append(
        f"target {plan.target}: "
        + (f"databases dropped first: {', '.join(plan.wipe)}" if plan.wipe else "empty, nothing to drop")
    )
    lines.append("BR command lines:")
    lines += [f"  {c}" for c in plan.commands]
    expect = f"~{plan.expected_seconds:.0f}s" if plan.expected_seconds is not None else "unknown"
    lines.append(f"expected restore time: {expect} ({plan.expected_basis})")
    lines.append(f"validate after: {'yes, against the source as of the point' if plan.validate_after else 'no'}")
    lines.append(f"reason: {req.get('reason')}" + (f"; requested by {requested_by}" if requested_by else ""))
    lines += [f"note: {n}" for n in plan.notes]
    return redact("\n".join(lines))  # the reason is typed by a person; the note leaves Airflow


# ------------------------------------------------------------------------------------------ record


def restore_record(
    *,
    restore_id: str,
    request: RestoreRequest | None,
    raw_request: Mapping[str, Any],
    requested_by: str | None,
    requested_at: datetime,
    results: Mapping[str, Mapping[str, Any] | None],
    errors: Mapping[str, str | None],
    refused: str | None,
    dag_id: str | None,
    run_id: str | None,
    now: datetime,
) -> RestoreRecord:
    """The ``restores`` row of a run, from what its steps reported (``results``: ``plan`` (with the
    plan under ``plan``), ``restore``, ``validate``; ``None`` for a step that did not finish) and the
    errors they left. Refused and dry-run requests are rows too: the audit is of every request."""
    planned = results.get("plan")
    plan = RestorePlan.from_dict(planned["plan"]) if planned and planned.get("plan") else None
    restored = results.get("restore")
    validated = results.get("validate")
    validate_after = request.validate_after if request is not None else False
    status: RestoreStatus
    error: str | None = None
    if plan is None:
        status = RestoreStatus.REFUSED if refused else RestoreStatus.FAILED
        error = errors.get("plan") or "plan_restore did not finish"
    elif plan.dry_run:
        status = RestoreStatus.DRY_RUN
    elif restored is None:
        status, error = RestoreStatus.FAILED, f"restore: {errors.get('restore') or 'did not finish'}"
    elif validate_after and not (validated and validated.get("ok")):
        status, error = RestoreStatus.FAILED, f"validate: {errors.get('validate') or 'did not finish'}"
    else:
        status = RestoreStatus.SUCCEEDED
    raw = request.to_dict() if request is not None else {k: raw_request[k] for k in sorted(raw_request)}
    figures = Reported.of(restored, validated)
    return RestoreRecord(
        id=restore_id,
        source=request.source if request is not None else str(raw_request.get("source_cluster") or ""),
        target=request.target if request is not None else str(raw_request.get("target_cluster") or ""),
        status=status,
        requested_by=requested_by,
        reason=request.reason if request is not None else str(raw_request.get("reason") or ""),
        requested_at=requested_at,
        restore_point=request.restore_point if request is not None else str(raw_request.get("restore_point") or ""),
        restore_ts=plan.restore_ts if plan is not None else None,
        mode=plan.mode if plan is not None else None,
        tables=request.tables if request is not None else (),
        dry_run=request.dry_run if request is not None else True,
        validate_after=validate_after,
        backups_used=plan.backups_used if plan is not None else (),
        request=raw,
        plan=plan.to_dict() if plan is not None else None,
        restore_seconds=figures.restore_seconds,
        validation_seconds=figures.validation_seconds,
        validation_ok=figures.validation_ok,
        rows_checked=figures.rows_checked,
        error=error,
        dag_id=dag_id,
        run_id=run_id,
        finished_at=utc(now, "now"),
    )
