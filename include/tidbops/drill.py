"""Restore drills: restore a cluster's backups into a scratch cluster, prove the data right, measure the RTO.

One drill, step by step (the drill DAG's tasks are thin operators over these functions; nothing here
imports Airflow):

1. **choose the restore point** (``plan_drill``). ``snapshot`` mode: the newest snapshot restore point
   whose chain is whole and verified (``tidbops.pitr.snapshot_points``): its full backup and incrementals,
   in order. ``pitr`` mode: a point inside the PITR window (``tidbops.pitr.compute_window``), drawn with a
   recorded seed from its recent end (the last ``recent`` seconds up to now: the log checkpoint may still
   be behind it, so the DAG waits for the checkpoint to pass it before restoring).
2. **prepare the scratch** (``scratch_target``, ``clear_scratch``). Only a cluster marked ``scratch: true``
   in the fleet config is ever touched: refused at config load (``drill.target``) and again here, at run
   time, for whatever target a run asks for. What an earlier drill left is dropped (every database but the
   system ones: BR restores only into a fresh cluster).
3. **restore** (``restore_argvs``, ``run_restore``): ``br restore full`` of each link of the chain, or one
   ``br restore point --full-backup-storage <full> --restored-ts <point>``; into the scratch cluster, with
   the source's storage credentials and crypter key. Timed: ``restore_seconds`` is the RTO's restore part.
4. **validate** (``validate_content``; expectations in ``tidbops.validate.expectations``): schema (tables,
   columns, types, indexes) and content (row counts and ``BIT_XOR(CRC32(CONCAT_WS(…)))`` fingerprints per
   primary-key chunk, ``tidbops.validate``) against the **source as of the restore point**: on TiDB a
   stale read at the exact TSO (``SET @@tidb_snapshot``), on a server that keeps row history (the
   playground's MariaDB) ``FOR SYSTEM_TIME AS OF``. History only lasts ``tidb_gc_life_time``: the GC
   safepoint is read first, and a restore point older than it fails with a message that says so.
5. **record** (``drill_record``, ``report_bytes``): the ``drills`` catalog row and ``drill.json`` next to
   the Data Docs, under ``<storage>/<cluster>/drills/<drill id>/``.

Every step of one DAG run works under one drill id (``make_drill_id``: deterministic per run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from tidbops import tso
from tidbops.backup import CatalogLink, RunInfo
from tidbops.br.command import restore_full_argv, restore_point_argv
from tidbops.catalog.errors import CatalogError
from tidbops.catalog.info import human_age
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    DrillRecord,
    DrillStatus,
    index,
    make_drill_id,
    summarise_error,
    utc,
)
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.errors import TiDBOpsError
from tidbops.pitr import PitrWindow, snapshot_points
from tidbops.storage import Storage
from tidbops.text import shown
from tidbops.validate.fingerprint import (
    DEFAULT_CHUNK_ROWS,
    Chunk,
    ChunkMismatch,
    ChunkSum,
    TableComparison,
    chunk_sum,
    compare_table,
    split_chunks,
)
from tidbops.validate.schema import SchemaReport, TableDef, compare_tables, list_schemas, read_tables
from tidbops.validate.sql import Cursor, Dialect, detect_dialect, quote

log = logging.getLogger(__name__)

DrillMode = Literal["snapshot", "pitr"]
StepKind = Literal["full", "incremental", "point"]

#: Databases a scratch cluster keeps: the server's own. Everything else is what a drill restored.
SERVER_SCHEMAS = frozenset(
    {"mysql", "sys", "information_schema", "performance_schema", "metrics_schema", "inspection_schema"}
)
DEFAULT_RECENT = timedelta(minutes=10)
REPORT_NAME = "drill.json"
DATA_DOCS_DIR = "data_docs"


class DrillError(TiDBOpsError):
    """A drill cannot go on as asked."""


class NotScratchError(DrillError):
    """The drill's target is not a cluster marked ``scratch: true``: it is never touched."""


class NoRestorePointError(DrillError):
    """Nothing to drill: no restorable snapshot chain, or no PITR window."""


class HistoryGoneError(DrillError):
    """The source's history at the restore point is gone (older than the GC safepoint)."""


class DrillFailedError(DrillError):
    """The restored data is not the source's: the message names the tables and key ranges."""


# ------------------------------------------------------------------------------------------ target


def ensure_scratch(cluster: ClusterConfig | None, name: str, *, source: str) -> ClusterConfig:
    """``cluster`` when it is a scratch cluster; else ``NotScratchError`` (nothing has been touched)."""
    if cluster is None:
        raise NotScratchError(
            f"drill of {source}: target {name!r} is not a cluster of the fleet config; refused (nothing touched)"
        )
    if not cluster.scratch:
        raise NotScratchError(
            f"drill of {source}: target {cluster.name!r} is not marked scratch: true in the fleet config; a drill "
            f"drops every database of its target, so it only ever restores into a scratch cluster. Refused "
            f"(nothing touched)"
        )
    if cluster.name == source:
        raise NotScratchError(f"drill of {source}: the target is the cluster itself; refused (nothing touched)")
    return cluster


def scratch_target(
    clusters: Mapping[str, ClusterConfig], source: ClusterConfig, requested: str | None = None
) -> ClusterConfig:
    """The scratch cluster a drill of ``source`` restores into: ``requested`` (a run's choice) or
    ``drill.target``; checked against the fleet config as it is now (it may have changed since the DAG
    was built)."""
    name = (requested or "").strip() or source.drill.target
    if not name:
        raise NotScratchError(f"drill of {source.name}: no target (set drill.target to a scratch cluster)")
    return ensure_scratch(clusters.get(name), name, source=source.name)


def leftover_schemas(cursor: Cursor) -> list[str]:
    """Every database of a (scratch) cluster but the server's own."""
    cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
    return [str(r[0]) for r in cursor.fetchall() if str(r[0]).lower() not in SERVER_SCHEMAS]


def clear_scratch(cursor: Cursor, target: ClusterConfig, *, source: str) -> list[str]:
    """Drop every database a drill (or anything else) left in the scratch cluster ``target``; returns them.

    Refuses, before a single statement, a target that is not marked scratch.
    """
    ensure_scratch(target, target.name, source=source)
    dropped = leftover_schemas(cursor)
    if dropped:
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        for name in dropped:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
        cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
    return dropped


# -------------------------------------------------------------------------------------- the point


@dataclass(frozen=True)
class RestoreStep:
    """One BR restore of the drill: a chain link (``full``/``incremental``), or the PITR (``point``, whose
    ``backup_id``/``storage_uri`` are the full backup it starts from)."""

    kind: StepKind
    backup_id: str
    storage_uri: str
    backup_ts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "backup_id": self.backup_id,
            "storage_uri": self.storage_uri,
            "backup_ts": self.backup_ts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RestoreStep:
        kind = str(d["kind"])
        if kind not in ("full", "incremental", "point"):
            raise ValueError(f"restore step kind {kind!r} is not full, incremental or point")
        return cls(kind, str(d["backup_id"]), str(d["storage_uri"]), int(d["backup_ts"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class DrillPlan:
    """What a drill restores and to which point. JSON round trip for XCom (``to_dict``/``from_dict``)."""

    drill_id: str
    cluster: str
    target: str
    mode: DrillMode
    restore_ts: int
    steps: tuple[RestoreStep, ...]
    reason: str
    chosen_at: datetime
    seed: int | None = None
    log_storage_uri: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "chosen_at", utc(self.chosen_at, "chosen_at"))
        if not self.steps:
            raise ValueError(f"drill {self.drill_id}: a plan restores at least one backup")
        if self.mode == "pitr" and (self.log_storage_uri is None or [s.kind for s in self.steps] != ["point"]):
            raise ValueError(f"drill {self.drill_id}: a PITR plan is one 'point' step and has a log storage")
        if self.mode == "snapshot" and any(s.kind == "point" for s in self.steps):
            raise ValueError(f"drill {self.drill_id}: a snapshot plan restores chain links only")

    @property
    def restore_time(self) -> datetime:
        return tso.to_datetime(self.restore_ts)

    @property
    def backups_used(self) -> tuple[str, ...]:
        return tuple(s.backup_id for s in self.steps)

    @property
    def plan_id(self) -> str:
        return self.drill_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id,
            "cluster": self.cluster,
            "target": self.target,
            "mode": self.mode,
            "restore_ts": self.restore_ts,
            "restore_time": _iso(self.restore_time),
            "steps": [s.to_dict() for s in self.steps],
            "reason": self.reason,
            "chosen_at": _iso(self.chosen_at),
            "seed": self.seed,
            "log_storage_uri": self.log_storage_uri,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DrillPlan:
        mode = str(d["mode"])
        if mode not in ("snapshot", "pitr"):
            raise ValueError(f"drill mode {mode!r} is not snapshot or pitr")
        chosen = d["chosen_at"]
        return cls(
            drill_id=str(d["drill_id"]),
            cluster=str(d["cluster"]),
            target=str(d["target"]),
            mode=mode,  # type: ignore[arg-type]
            restore_ts=int(d["restore_ts"]),
            steps=tuple(RestoreStep.from_dict(s) for s in d["steps"]),
            reason=str(d.get("reason") or ""),
            chosen_at=chosen if isinstance(chosen, datetime) else datetime.fromisoformat(str(chosen)),
            seed=int(d["seed"]) if d.get("seed") is not None else None,
            log_storage_uri=d.get("log_storage_uri"),
        )


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _show(ts: int) -> str:
    return tso.to_datetime(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def drill_id_for(cluster: ClusterConfig, run: RunInfo) -> str:
    """The drill id of this DAG run (every step, and every try, computes the same)."""
    return make_drill_id(cluster.name, run.started_at, dag_id=run.dag_id, run_id=run.run_id)


def choose_snapshot(backups: Iterable[BackupRecord]) -> tuple[tuple[RestoreStep, ...], int, str]:
    """The newest snapshot restore point whose chain is whole and verified (else the newest whole one
    not yet verified, said so): its links in restore order, its BackupTS, and why it was chosen."""
    rows = list(backups)
    points, notes = snapshot_points(rows)
    if not points:
        why = f" ({'; '.join(notes)})" if notes else ""
        raise NoRestorePointError(f"no restorable snapshot backup (a succeeded full backup and its chain){why}")
    verified = [p for p in points if p.verified]
    point = verified[-1] if verified else points[-1]
    by_id = index(rows)
    steps = tuple(
        RestoreStep(
            "full" if by_id[i].kind is BackupKind.FULL else "incremental",
            i,
            by_id[i].storage_uri,
            int(by_id[i].backup_ts or 0),
        )
        for i in point.chain
    )
    links = "the full backup" if len(steps) == 1 else f"the full backup and {len(steps) - 1} incremental(s)"
    reason = f"the newest snapshot restore point, {point.backup_id} ({_show(point.backup_ts)}): {links}"
    if not point.verified:
        reason += "; not verified against its manifest yet (no verified chain)"
    elif points[-1].backup_ts > point.backup_ts:
        reason += f"; newer {points[-1].backup_id} is not verified yet"
    return steps, point.backup_ts, reason


def seed_for(drill_id: str) -> int:
    """The default seed of a PITR drill's point: from its drill id (a rerun of the run draws the same)."""
    return int.from_bytes(hashlib.sha256(drill_id.encode()).digest()[:6], "big")


def choose_pitr(
    window: PitrWindow, now: datetime, *, seed: int, recent: timedelta = DEFAULT_RECENT
) -> tuple[RestoreStep, int, str]:
    """A point inside the PITR window, drawn with ``seed`` from its recent end: ``[max(window start, now -
    recent), now]``. It may lie after the log checkpoint (the window's end): the drill then waits for the
    checkpoint to pass it (a recent point keeps the source's history readable). Returns the step (from
    the newest full backup at or before the point), the point and why."""
    if not window.exists or window.start_ts is None or not window.bases:
        raise NoRestorePointError(f"no PITR window for {window.cluster}: {window.reason}")
    now_ts = tso.from_datetime(utc(now, "now"))
    low = max(window.start_ts + 1, tso.from_datetime(utc(now, "now") - recent))
    if low >= now_ts:
        raise NoRestorePointError(
            f"the PITR window of {window.cluster} starts at {_show(window.start_ts)}, not before now; "
            "a point needs a full backup and some log after it"
        )
    rng = random.Random(seed)  # noqa: S311 (a reproducible draw, not a secret)
    physical = rng.randrange(tso.physical_ms(low), tso.physical_ms(now_ts))
    point = max(low, tso.compose(physical))
    base = max((b for b in window.bases if b.backup_ts < point), key=lambda b: b.backup_ts)
    end = window.end_ts or 0
    waits = "" if point <= end else f"; the log checkpoint ({_show(end)}) must pass it first"
    reason = (
        f"a PITR point drawn (seed {seed}) from the last {human_age(recent)} of the window "
        f"{_show(window.start_ts)} → now: {_show(point)}, from full backup {base.backup_id}{waits}"
    )
    return RestoreStep("point", base.backup_id, "", base.backup_ts), point, reason


def plan_drill(
    source: ClusterConfig,
    target: ClusterConfig,
    run: RunInfo,
    now: datetime,
    *,
    backups: Iterable[BackupRecord],
    mode: DrillMode | None = None,
    window: PitrWindow | None = None,
    seed: int | None = None,
    recent: timedelta = DEFAULT_RECENT,
) -> DrillPlan:
    """The drill of this run: its id, the restore point and the backups to restore (see the module docs)."""
    ensure_scratch(target, target.name, source=source.name)
    drill_id = drill_id_for(source, run)
    rows = [b for b in backups if b.cluster == source.name]
    chosen = mode or source.drill.mode
    if chosen == "snapshot":
        steps, ts, reason = choose_snapshot(rows)
        return DrillPlan(drill_id, source.name, target.name, "snapshot", ts, steps, reason, now)
    if window is None:
        raise NoRestorePointError(f"a PITR drill of {source.name} needs its PITR window (the log range)")
    used_seed = seed if seed is not None else seed_for(drill_id)
    step, ts, reason = choose_pitr(window, now, seed=used_seed, recent=recent)
    base = index(rows).get(step.backup_id)
    if base is None:
        raise NoRestorePointError(f"full backup {step.backup_id} of the PITR window is not in the catalog")
    step = replace(step, storage_uri=base.storage_uri)
    return DrillPlan(
        drill_id, source.name, target.name, "pitr", ts, (step,), reason, now, used_seed, source.log_storage_uri
    )


# ------------------------------------------------------------------------------------------- holds
#
# A drill (holder: its drill id) or an on-demand restore (holder: its restore id) holds the backups it
# restores from the moment it plans them until it records its outcome; retention never expires a held
# backup (#16). Each step that works on them takes the holds again (``Catalog.hold_backups`` replaces a
# holder's holds: a retried task piles up nothing); the record step releases them. A holder that dies
# without releasing loses its holds when their ttl passes.

#: what a hold covers beyond the BR runs: waiting for the log checkpoint or the scratch (an hour each at
#: most, ``drill_dag``), validation, the record step
HOLD_MARGIN = timedelta(hours=3)


def hold_ttl(br_timeout: float, steps: int, margin: timedelta = HOLD_MARGIN) -> timedelta:
    """How long a hold lasts: BR's timeout (``br.timeout``, seconds) for each restore step, plus ``margin``."""
    return timedelta(seconds=br_timeout * max(steps, 1)) + margin


class HoldingPlan(Protocol):
    """What holding a plan's backups needs (a ``DrillPlan``, a ``RestorePlan``)."""

    @property
    def plan_id(self) -> str: ...
    @property
    def backups_used(self) -> tuple[str, ...]: ...


def hold_plan(catalog: Catalog, cluster: ClusterConfig, plan: HoldingPlan) -> timedelta:
    """Hold ``plan``'s backups of ``cluster`` for its holder (the plan id), replacing its earlier holds;
    returns the ttl. Raises what the catalog raises (a step that must hold fails and retries)."""
    ttl = hold_ttl(cluster.br.timeout, len(plan.backups_used))
    catalog.hold_backups(cluster.name, plan.backups_used, plan.plan_id, ttl=ttl)
    return ttl


# ----------------------------------------------------------------------------------------- restore


def restore_argvs(
    plan: DrillPlan,
    *,
    target: ClusterConfig,
    source: ClusterConfig,
    log_file: str | None = None,
    crypter_key_file: str | None = None,
) -> list[list[str]]:
    """The BR command lines of the drill, in order: into ``target``, reading ``source``'s backups (its
    storage options and encryption; the key through ``crypter_key_file``, never argv)."""
    ensure_scratch(target, target.name, source=source.name)
    if plan.target != target.name or plan.cluster != source.name:
        raise DrillError(f"the plan is {plan.cluster} → {plan.target}, not {source.name} → {target.name}")
    return step_argvs(
        plan.steps,
        restore_ts=plan.restore_ts,
        log_storage_uri=plan.log_storage_uri,
        target=target,
        source=source,
        log_file=log_file,
        crypter_key_file=crypter_key_file,
    )


def step_argvs(
    steps: Sequence[RestoreStep],
    *,
    restore_ts: int,
    log_storage_uri: str | None,
    target: ClusterConfig,
    source: ClusterConfig,
    filters: Sequence[str] = (),
    log_file: str | None = None,
    crypter_key_file: str | None = None,
) -> list[list[str]]:
    """The BR command lines restoring ``steps`` (one ``point`` step: PITR to ``restore_ts`` from its full
    backup and ``log_storage_uri``; else chain links, in order) into ``target``, reading ``source``'s
    backups, limited to the BR table ``filters`` (none: everything). Drills and on-demand restores."""
    if [s.kind for s in steps] == ["point"]:
        if log_storage_uri is None:
            raise DrillError("a PITR restore needs the source's log storage")
        return [
            restore_point_argv(
                target,
                log_storage_uri=log_storage_uri,
                full_backup_storage_uri=steps[0].storage_uri,
                restored_ts=restore_ts,
                filters=filters,
                source=source,
                log_file=log_file,
                crypter_key_file=crypter_key_file,
            )
        ]
    if any(s.kind == "point" for s in steps):
        raise DrillError("a PITR restore is one 'point' step")
    return [
        restore_full_argv(
            target,
            storage_uri=s.storage_uri,
            filters=filters,
            source=source,
            log_file=log_file,
            crypter_key_file=crypter_key_file,
        )
        for s in steps
    ]


@dataclass(frozen=True)
class RestoreOutcome:
    """What the restore step did: the RTO's restore part, and each BR run."""

    drill_id: str
    target: str
    restore_ts: int
    seconds: float  # first BR start to last BR end: the RTO's restore part
    runs: tuple[Mapping[str, Any], ...]
    cleared: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id,
            "target": self.target,
            "restore_ts": self.restore_ts,
            "restore_seconds": self.seconds,
            "runs": [dict(r) for r in self.runs],
            "cleared": list(self.cleared),
        }


class RestoreSteps(Protocol):
    """What ``run_restore`` needs of a plan (a drill's, or an on-demand restore's)."""

    @property
    def plan_id(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def restore_ts(self) -> int: ...
    @property
    def steps(self) -> tuple[RestoreStep, ...]: ...


def run_restore(
    plan: RestoreSteps,
    argvs: Sequence[list[str]],
    run_br: Callable[[list[str]], Any],
    *,
    cleared: Sequence[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> RestoreOutcome:
    """Run the restores in order (``run_br`` raises ``BRError`` when one fails); time them all."""
    if len(argvs) != len(plan.steps):
        raise DrillError(f"{len(argvs)} command lines for {len(plan.steps)} restore steps")
    runs: list[Mapping[str, Any]] = []
    started = clock()
    for step, argv in zip(plan.steps, argvs, strict=True):
        t0 = clock()
        result = run_br(argv)
        outcome = getattr(result, "outcome", None)
        runs.append(
            {
                "kind": step.kind,
                "backup_id": step.backup_id,
                "seconds": round(clock() - t0, 3),
                "br_seconds": round(float(getattr(result, "seconds", 0.0)), 3),
                "total_kv": getattr(outcome, "total_kv", None),
            }
        )
        log.info("restored %s %s into %s in %.1fs", step.kind, step.backup_id, plan.target, runs[-1]["seconds"])
    return RestoreOutcome(
        plan.plan_id, plan.target, plan.restore_ts, round(clock() - started, 3), tuple(runs), tuple(cleared)
    )


# --------------------------------------------------------------------------------------- validate


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
            dialect, at, (), (), f"system-versioned history, FOR SYSTEM_TIME AS OF '{_iso(at)}' (TSO {restore_ts})"
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
            f"cannot compare against {cluster} as of the restore point {_iso(point)}: it is older than {cluster}'s GC "
            f"safepoint {_iso(safe)}{life}, so that history is gone. Drill a more recent point (PITR mode drills "
            f"a recent one), or keep history longer than the time from backup to drill (tidb_gc_life_time)"
        )


@dataclass(frozen=True)
class TableResult:
    """One table's verdict: schema (differences, else ok) and content (fingerprints per key chunk)."""

    table: str
    schema_diffs: tuple[str, ...] = ()
    content: TableComparison | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """No schema difference and no content mismatch (a table left out on purpose, ``skipped``, is ok)."""
        return not self.schema_diffs and (self.content is None or self.content.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "schema": "ok" if not self.schema_diffs else list(self.schema_diffs),
            "content": self.content.to_dict() if self.content else None,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class ContentReport:
    """Schema and content of every table, the source read as of the restore point."""

    restore_ts: int
    source_read: str
    tables: tuple[TableResult, ...]
    gc_safe_point: datetime | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def tables_checked(self) -> int:
        return sum(1 for t in self.tables if t.content is not None)

    @property
    def rows_checked(self) -> int:
        return sum(t.content.target_rows for t in self.tables if t.content is not None)

    @property
    def mismatches(self) -> int:
        """Schema differences plus chunks whose fingerprints differ."""
        return sum(len(t.schema_diffs) + (len(t.content.mismatches) if t.content else 0) for t in self.tables)

    def failures(self) -> list[str]:
        """One line per difference, naming the table (and the chunk's key range)."""
        out: list[str] = []
        for t in self.tables:
            out += [f"{t.table}: schema: {d}" for d in t.schema_diffs]
            if t.content is not None:
                out += [f"{t.table}: {m}" for m in t.content.mismatches]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "restore_ts": self.restore_ts,
            "source_read": self.source_read,
            "gc_safe_point": _iso(self.gc_safe_point),
            "tables_checked": self.tables_checked,
            "rows_checked": self.rows_checked,
            "mismatches": self.mismatches,
            "failures": self.failures(),
            "tables": [t.to_dict() for t in self.tables],
            "seconds": self.seconds,
            "notes": list(self.notes),
        }


def _schema_diffs(report: SchemaReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in report.diffs:
        out.setdefault(d.table, []).append(f"{d.what}: {d.detail}")
    return out


def validate_content(
    source: Cursor,
    target: Cursor,
    *,
    cluster: str,
    restore_ts: int,
    gc_safe_point: datetime | None = None,
    gc_life_time_seconds: float | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_tables: int | None = None,
    on_table: Callable[[TableResult], None] | None = None,
    select: Callable[[str, str], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ContentReport:
    """Compare the restored cluster (``target``) with ``source`` as of ``restore_ts``: schema of every
    user table, then row counts and fingerprints per key chunk. Both cursors' sessions must be in UTC.

    ``max_tables`` bounds the content check (tables beyond it, by name, are reported not compared);
    ``select(db, table)`` limits both sides to the tables a filtered restore brought back.
    """
    started = clock()
    check_history(cluster, restore_ts, gc_safe_point, gc_life_time_seconds)
    read = source_read(detect_dialect(source), restore_ts)
    target_dialect = detect_dialect(target)
    for stmt in read.setup:
        source.execute(stmt)
    try:
        source_defs = read_tables(source, list_schemas(source))
        target_defs = read_tables(target, list_schemas(target))
        if select is not None:
            source_defs = {k: t for k, t in source_defs.items() if select(t.schema, t.name)}
            target_defs = {k: t for k, t in target_defs.items() if select(t.schema, t.name)}
        schema = compare_tables(source_defs, target_defs)
        diffs = _schema_diffs(schema)
        results: list[TableResult] = []
        compared = 0
        notes: list[str] = []
        for name in sorted(source_defs.keys() | target_defs.keys()):
            table_diffs = tuple(diffs.get(name, ()))
            table: TableDef | None = target_defs.get(name)
            if name not in source_defs or table is None:
                result = TableResult(name, table_diffs)
            elif table_diffs and any(d.startswith("columns") for d in table_diffs):
                result = TableResult(name, table_diffs, skipped="its columns differ from the source's")
            elif max_tables is not None and compared >= max_tables:
                result = TableResult(name, table_diffs, skipped=f"beyond the budget of {max_tables} tables")
            else:
                content = compare_table(
                    source,
                    target,
                    table,
                    at=read.at,
                    source_dialect=read.dialect,
                    target_dialect=target_dialect,
                    chunk_rows=chunk_rows,
                )
                compared += 1
                result = TableResult(name, table_diffs, content)
            results.append(result)
            if on_table is not None:
                on_table(result)
        if not source_defs:
            notes.append(f"{cluster} has no user tables as of the restore point")
        notes += [f"{t.table}: not compared: {t.skipped}" for t in results if t.skipped]
    finally:
        for stmt in read.teardown:
            source.execute(stmt)
    return ContentReport(
        restore_ts, read.description, tuple(results), gc_safe_point, round(clock() - started, 3), tuple(notes)
    )


# ------------------------------------------------------------------ source fingerprints (after a backup)
#
# The source's history lasts ``tidb_gc_life_time`` (10 minutes by default): a weekly snapshot drill of a
# nightly backup cannot read the source as of the backup any more. So the backup pipelines can take the
# source's fingerprints right after a backup (``drill.source_fingerprints``), while its history is there,
# within a budget (tables, rows), and keep them in storage; a drill whose point's history is gone compares
# the restored data against them instead (same chunks, same fingerprint SQL).

FINGERPRINTS_VERSION = 1


def fingerprints_path(cluster: str, backup_id: str) -> str:
    """Where a backup's source fingerprints live, below the cluster's storage root (not in the backup's
    own directory: that one holds what BR and the manifest say, nothing else)."""
    return f"{cluster}/drills/fingerprints/{backup_id}.json"


def _encode(value: Any) -> dict[str, Any]:
    """A key value as typed JSON (chunk bounds must come back as the driver gave them)."""
    import base64
    from datetime import date
    from decimal import Decimal

    if value is None:
        return {"t": "null"}
    if isinstance(value, bool | int):
        return {"t": "int", "v": int(value)}
    if isinstance(value, float):
        return {"t": "float", "v": repr(value)}
    if isinstance(value, Decimal):
        return {"t": "dec", "v": str(value)}
    if isinstance(value, datetime):
        return {"t": "dt", "v": value.isoformat()}
    if isinstance(value, date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {"t": "time", "v": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"t": "bytes", "v": base64.b64encode(bytes(value)).decode()}
    return {"t": "str", "v": str(value)}


def _decode(d: Mapping[str, Any]) -> Any:
    import base64
    from datetime import date
    from decimal import Decimal

    kind, value = d["t"], d.get("v")
    decoders: dict[str, Callable[[Any], Any]] = {
        "null": lambda v: None,
        "int": int,
        "float": float,
        "dec": Decimal,
        "dt": datetime.fromisoformat,
        "date": date.fromisoformat,
        "time": lambda v: timedelta(seconds=v),
        "bytes": base64.b64decode,
        "str": str,
    }
    if kind not in decoders:
        raise ValueError(f"unknown key value type {kind!r}")
    return decoders[kind](value)


def _bound(b: tuple[Any, ...] | None) -> list[dict[str, Any]] | None:
    return None if b is None else [_encode(v) for v in b]


def _unbound(b: Sequence[Mapping[str, Any]] | None) -> tuple[Any, ...] | None:
    return None if b is None else tuple(_decode(v) for v in b)


def _table_doc(t: TableDef) -> dict[str, Any]:
    return {
        "schema": t.schema,
        "name": t.name,
        "columns": [[c.name, c.position, c.type, c.nullable] for c in t.columns],
        "indexes": [[i.name, i.unique, list(i.columns)] for i in t.indexes],
    }


def _table_of(d: Mapping[str, Any]) -> TableDef:
    from tidbops.validate.schema import Column, Index

    return TableDef(
        str(d["schema"]),
        str(d["name"]),
        tuple(Column(str(n), int(p), str(t), bool(nl)) for n, p, t, nl in d["columns"]),
        tuple(Index(str(n), bool(u), tuple(cols)) for n, u, cols in d["indexes"]),
    )


@dataclass(frozen=True)
class RecordedTable:
    """A table's definition, and its chunks' fingerprints (``None``: left out by the budget)."""

    table: TableDef
    chunks: tuple[tuple[Chunk, ChunkSum], ...] | None

    @property
    def rows(self) -> int:
        return sum(s.rows for _, s in self.chunks or ())


@dataclass(frozen=True)
class SourceFingerprints:
    """What the source held at a backup's BackupTS: every user table's definition and, within the budget,
    its chunks' row counts and fingerprints. ``to_bytes``/``from_bytes``: the JSON kept in storage."""

    cluster: str
    backup_id: str
    backup_ts: int
    taken_at: datetime
    chunk_rows: int
    source_read: str
    tables: tuple[RecordedTable, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def fingerprinted(self) -> int:
        return sum(1 for t in self.tables if t.chunks is not None)

    def summary(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "backup_id": self.backup_id,
            "backup_ts": self.backup_ts,
            "tables": len(self.tables),
            "fingerprinted": self.fingerprinted,
            "rows": self.rows,
            "chunks": sum(len(t.chunks or ()) for t in self.tables),
            "seconds": self.seconds,
            "notes": list(self.notes),
        }

    def to_bytes(self) -> bytes:
        doc = {
            "version": FINGERPRINTS_VERSION,
            "cluster": self.cluster,
            "backup_id": self.backup_id,
            "backup_ts": self.backup_ts,
            "taken_at": _iso(self.taken_at),
            "chunk_rows": self.chunk_rows,
            "source_read": self.source_read,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "tables": [
                {
                    "table": _table_doc(t.table),
                    "chunks": None
                    if t.chunks is None
                    else [[_bound(c.lower), _bound(c.upper), s.rows, s.checksum] for c, s in t.chunks],
                }
                for t in self.tables
            ],
        }
        return (json.dumps(doc, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "source fingerprints") -> SourceFingerprints:
        """What ``to_bytes`` wrote; ``DrillError`` naming ``source`` for anything else (it comes from
        storage, which is not trusted: a torn or edited file fails the drill with one line, never a crash)."""
        try:
            return cls._from_bytes(data, source)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
            what = f"{type(exc).__name__}: {shown(exc.args[0] if exc.args else '', 120)}"
            raise DrillError(f"{source}: not source fingerprints tidbops wrote ({what})") from None

    @classmethod
    def _from_bytes(cls, data: bytes, source: str) -> SourceFingerprints:
        doc = json.loads(data)
        if doc.get("version") != FINGERPRINTS_VERSION:
            raise DrillError(f"{source}: version {shown(doc.get('version'))}; this code reads {FINGERPRINTS_VERSION}")
        tables = tuple(
            RecordedTable(
                _table_of(t["table"]),
                None
                if t["chunks"] is None
                else tuple(
                    (Chunk(_unbound(lo), _unbound(hi)), ChunkSum(int(rows), int(crc)))
                    for lo, hi, rows, crc in t["chunks"]
                ),
            )
            for t in doc["tables"]
        )
        return cls(
            cluster=str(doc["cluster"]),
            backup_id=str(doc["backup_id"]),
            backup_ts=int(doc["backup_ts"]),
            taken_at=datetime.fromisoformat(str(doc["taken_at"]).replace("Z", "+00:00")),
            chunk_rows=int(doc["chunk_rows"]),
            source_read=str(doc["source_read"]),
            tables=tables,
            seconds=float(doc.get("seconds") or 0.0),
            notes=tuple(doc.get("notes") or ()),
        )


def take_source_fingerprints(
    source: Cursor,
    *,
    cluster: str,
    backup_id: str,
    backup_ts: int,
    now: datetime,
    gc_safe_point: datetime | None = None,
    gc_life_time_seconds: float | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_tables: int | None = None,
    max_rows: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SourceFingerprints:
    """Fingerprint the source as of ``backup_ts`` (right after the backup, while its history is there):
    every user table's definition, and chunk fingerprints of the tables (by name) until ``max_tables``
    tables or ``max_rows`` rows are done; the rest are recorded without fingerprints (said in ``notes``)."""
    started = clock()
    check_history(cluster, backup_ts, gc_safe_point, gc_life_time_seconds)
    read = source_read(detect_dialect(source), backup_ts)
    for stmt in read.setup:
        source.execute(stmt)
    recorded: list[RecordedTable] = []
    notes: list[str] = []
    rows = 0
    try:
        defs = read_tables(source, list_schemas(source))
        for name in sorted(defs):
            table = defs[name]
            over = (max_tables is not None and len([t for t in recorded if t.chunks is not None]) >= max_tables) or (
                max_rows is not None and rows >= max_rows
            )
            if over:
                recorded.append(RecordedTable(table, None))
                continue
            chunks = split_chunks(source, table, chunk_rows=chunk_rows, dialect=read.dialect, at=read.at)
            sums = tuple((c, chunk_sum(source, table, c, dialect=read.dialect, at=read.at)) for c in chunks)
            recorded.append(RecordedTable(table, sums))
            rows += sum(s.rows for _, s in sums)
    finally:
        for stmt in read.teardown:
            source.execute(stmt)
    left_out = [t.table.full_name for t in recorded if t.chunks is None]
    if left_out:
        notes.append(
            f"budget ({max_tables or 'any'} tables, {max_rows or 'any'} rows) reached: not fingerprinted: "
            + ", ".join(left_out)
        )
    return SourceFingerprints(
        cluster, backup_id, backup_ts, utc(now, "now"), chunk_rows, read.description, tuple(recorded),
        round(clock() - started, 3), tuple(notes),
    )  # fmt: skip


def compare_recorded(
    target: Cursor,
    recorded: SourceFingerprints,
    *,
    on_table: Callable[[TableResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ContentReport:
    """Compare the restored cluster with fingerprints recorded right after the backup: schema, then each
    recorded chunk's row count and fingerprint over the same key range."""
    started = clock()
    dialect = detect_dialect(target)
    source_defs = {t.table.full_name: t.table for t in recorded.tables}
    chunked = {t.table.full_name: t.chunks for t in recorded.tables}
    target_defs = read_tables(target, list_schemas(target))
    diffs = _schema_diffs(compare_tables(source_defs, target_defs))
    results: list[TableResult] = []
    for name in sorted(source_defs.keys() | target_defs.keys()):
        table_diffs = tuple(diffs.get(name, ()))
        table = target_defs.get(name)
        chunks = chunked.get(name)
        if name not in source_defs or table is None:
            result = TableResult(name, table_diffs)
        elif table_diffs and any(d.startswith("columns") for d in table_diffs):
            result = TableResult(name, table_diffs, skipped="its columns differ from the source's")
        elif chunks is None:
            result = TableResult(name, table_diffs, skipped="not fingerprinted after the backup (budget)")
        else:
            key = source_defs[name].chunk_key()
            mismatches = []
            source_rows = target_rows = 0
            for chunk, expected in chunks:
                got = chunk_sum(target, table, chunk, dialect=dialect)
                source_rows += expected.rows
                target_rows += got.rows
                if got != expected:
                    mismatches.append(ChunkMismatch(chunk, key, expected, got))
            content = TableComparison(name, key, source_rows, target_rows, len(chunks), tuple(mismatches))
            result = TableResult(name, table_diffs, content)
        results.append(result)
        if on_table is not None:
            on_table(result)
    notes = [
        *recorded.notes,
        *(f"{t.table}: not compared: {t.skipped}" for t in results if t.skipped),
    ]
    description = (
        f"source fingerprints recorded after backup {recorded.backup_id} ({_iso(recorded.taken_at)}): "
        f"{recorded.source_read}"
    )
    return ContentReport(
        recorded.backup_ts, description, tuple(results), None, round(clock() - started, 3), tuple(notes)
    )


def validate_restore(
    source: Cursor,
    target: Cursor,
    *,
    cluster: str,
    restore_ts: int,
    load_recorded: Callable[[], SourceFingerprints | None] = lambda: None,
    **kwargs: Any,
) -> ContentReport:
    """``validate_content`` against the live source; when the source's history at the point is gone,
    against the fingerprints recorded right after that backup (``load_recorded``), if there are any."""
    try:
        return validate_content(source, target, cluster=cluster, restore_ts=restore_ts, **kwargs)
    except HistoryGoneError as gone:
        recorded = load_recorded()
        if recorded is None or recorded.backup_ts != restore_ts:
            raise HistoryGoneError(
                f"{gone}; and no source fingerprints were recorded right after that backup "
                "(drill.source_fingerprints: the backup pipelines take them while the history is there)"
            ) from gone
        log.info("%s; comparing with the fingerprints recorded after backup %s", gone, recorded.backup_id)
        return compare_recorded(target, recorded, on_table=kwargs.get("on_table"))


# ------------------------------------------------------------------------------------------ verdict


@dataclass(frozen=True)
class Verdict:
    """The drill's outcome from what its steps reported (each a step's result dict, or ``None`` when the
    step did not finish) and the errors of the steps that failed."""

    status: DrillStatus
    error: str | None
    failures: tuple[str, ...] = field(default_factory=tuple)


STEP_NAMES = ("check", "choose", "wait", "prepare", "restore", "validate", "drop")
REQUIRED_STEPS = ("choose", "prepare", "restore", "validate")


def verdict(
    results: Mapping[str, Mapping[str, Any] | None],
    errors: Mapping[str, str | None],
    required: Sequence[str] = REQUIRED_STEPS,
) -> Verdict:
    """Passed only when every ``required`` step finished (restore point chosen, the log waited for in PITR
    mode, scratch prepared, restore done) and every check passed. Otherwise failed, with the first failed
    step's error (and every difference found). Dropping the scratch does not decide the verdict."""
    failures: list[str] = []
    validation = results.get("validate")
    if validation is not None:
        failures += [str(f) for f in validation.get("failures") or ()]
        failures += [f"expectations: {f}" for f in (validation.get("expectations") or {}).get("failures") or ()]

    def failed(step: str) -> bool:  # an error left by an earlier try counts only if the step did not make it
        result = results.get(step)
        return result is None or result.get("ok") is False

    first_error = next(
        (f"{step}: {errors[step]}" for step in STEP_NAMES if step != "drop" and errors.get(step) and failed(step)),
        None,
    )
    missing = [s for s in STEP_NAMES if s in required and results.get(s) is None]
    if first_error is None and missing:
        first_error = f"{missing[0]}: did not finish (no result)"
    if first_error is None and validation is not None and not validation.get("ok", False):
        shown = "; ".join(failures[:5]) + (f"; … {len(failures) - 5} more" if len(failures) > 5 else "")
        first_error = f"validate: {shown or 'the restored data differs from the source'}"
    if first_error is not None:
        return Verdict(DrillStatus.FAILED, first_error, tuple(failures))
    return Verdict(DrillStatus.PASSED, None, tuple(failures))


def no_suites_note(cluster: str) -> str:
    """What a drill of a cluster without expectation suites says, in its record, report and log line."""
    return f"no expectation suites for {cluster}: expectations did not run"


@dataclass(frozen=True)
class Tier3:
    """What a drill proves about the backups it restored (``Catalog.mark_verified(…, tier=3)``):
    ``ok`` True (passed), False (the restored data is wrong), None (nothing: not marked), and why."""

    ok: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}


def tier3_verdict(
    drill_id: str, mode: str, status: DrillStatus, results: Mapping[str, Mapping[str, Any] | None]
) -> Tier3:
    """Tier 3 of the backups a drill used.

    * **passed**: verified at tier 3 (restored, and equal to the source as of the point).
    * **the data is wrong** (the restore finished and the restored schema or content differs from the
      source as of the point) **in snapshot mode**: failed at tier 3. The chain alone was restored, so the
      chain did not restore into what the source held: unverified until a check passes again.
    * anything else, not marked: a failure before the data could be judged (target, catalog, BR, the
      source's history gone) says nothing about the backups; a PITR mismatch may lie in the log backup,
      which has no row to mark, so the full backup is not blamed; expectation failures with the content
      equal to the source's are about the data's rules, not the backup (it restored faithfully).
    """
    if status is DrillStatus.PASSED:
        return Tier3(True, f"restore drill {drill_id} passed: restored and equal to the source as of its point")
    restored = results.get("restore")
    validation = results.get("validate") or {}
    wrong = restored is not None and validation.get("content_ok") is False
    if not wrong:
        if validation.get("content_ok") is True:
            return Tier3(None, f"drill {drill_id} failed, but the restored content equals the source's: not marked")
        return Tier3(None, f"drill {drill_id} failed before the restored data could be judged: not marked")
    if mode != "snapshot":
        return Tier3(
            None,
            f"PITR drill {drill_id}: the restored data differs, but the log backup may be at fault: the full "
            "backup is not marked",
        )
    first = "; ".join(str(f) for f in (validation.get("failures") or ())[:3]) or "the restored data differs"
    return Tier3(False, f"restore drill {drill_id}: the restored data is not the source's as of the point: {first}")


def drill_dir(cluster: str, drill_id: str) -> str:
    """Where a drill's report and Data Docs live, below the cluster's storage root."""
    return f"{cluster}/drills/{drill_id}"


def _num(value: Any, kind: type[int] | type[float]) -> Any:
    return kind(value) if value is not None else None


def drill_record(
    cluster: ClusterConfig,
    run: RunInfo,
    results: Mapping[str, Mapping[str, Any] | None],
    errors: Mapping[str, str | None],
    *,
    target: str,
    report_uri: str | None,
    now: datetime,
    required: Sequence[str] = REQUIRED_STEPS,
    basis: Mapping[str, Any] | None = None,
) -> DrillRecord:
    """The ``drills`` row of this run, from what its steps reported; ``basis``: what its verdict stood on
    (``tidbops.freshness.DrillBasis.to_dict``, from the drill DAG's check).

    A validated drill of a cluster without expectation suites says so (``details.expectations_ran``
    False, ``details.caveats``, the summary line): it passes on the content check alone, never as if the
    suites had run."""
    v = verdict(results, errors, required)
    choose = results.get("choose") or {}
    restore = results.get("restore") or {}
    validation = results.get("validate") or {}
    gx = validation.get("expectations") or {}
    drop = results.get("drop")
    details = {
        "tables": validation.get("tables") or [],
        "expectations": gx.get("suites") or [],
        "failures": list(v.failures),
        "source_read": validation.get("source_read"),
        "restore_runs": restore.get("runs") or [],
        "cleared": (results.get("prepare") or {}).get("cleared") or [],
        "errors": {k: summarise_error(e)[:1000] for k, e in errors.items() if e},
        "expectations_ran": bool(gx.get("suites")) if gx else None,
        "caveats": [no_suites_note(cluster.name)] if gx and not gx.get("suites") else [],
    }
    mode = str(choose.get("mode") or cluster.drill.mode)
    details["tier3"] = tier3_verdict(drill_id_for(cluster, run), mode, v.status, results).to_dict()
    mismatches = validation.get("mismatches")
    return DrillRecord(
        id=drill_id_for(cluster, run),
        cluster=cluster.name,
        target=str(choose.get("target") or target),
        mode=mode,
        status=v.status,
        started_at=run.started_at,
        restore_ts=_num(choose.get("restore_ts"), int),
        point_reason=choose.get("reason"),
        point_seed=_num(choose.get("seed"), int),
        backups_used=tuple(s["backup_id"] for s in choose.get("steps") or ()),
        restore_seconds=_num(restore.get("restore_seconds"), float),
        validation_seconds=_num(validation.get("seconds"), float),
        tables_checked=_num(validation.get("tables_checked"), int),
        rows_checked=_num(validation.get("rows_checked"), int),
        mismatches=_num(mismatches, int),
        gx_evaluated=_num(gx.get("evaluated"), int),
        gx_success_ratio=_num(gx.get("success_ratio"), float),
        data_docs_uri=gx.get("data_docs_uri"),
        report_uri=report_uri,
        scratch_dropped=bool(drop.get("dropped_ok")) if drop is not None else False,
        error=v.error,
        details=details,
        dag_id=run.dag_id,
        run_id=run.run_id,
        try_number=run.try_number,
        finished_at=utc(now, "now"),
        basis=dict(basis) if basis else None,
    )


def caveats(record: DrillRecord) -> list[str]:
    """What the verdict says besides pass or fail (``no_suites_note``), from ``details.caveats``."""
    found = (record.details or {}).get("caveats")
    return [str(c) for c in found] if isinstance(found, list) else []


def record_to_dict(record: DrillRecord) -> dict[str, Any]:
    """The drill as JSON (``drill.json``, the record step's XCom): no secrets are in a record."""
    return {
        "drill_id": record.id,
        "cluster": record.cluster,
        "target": record.target,
        "mode": record.mode,
        "status": record.status.value,
        "passed": record.status is DrillStatus.PASSED,
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "restore_ts": record.restore_ts,
        "restore_time": _iso(record.restore_time),
        "point_reason": record.point_reason,
        "point_seed": record.point_seed,
        "backups_used": list(record.backups_used),
        "rto_seconds": record.rto_seconds,
        "restore_seconds": record.restore_seconds,
        "validation_seconds": record.validation_seconds,
        "tables_checked": record.tables_checked,
        "rows_checked": record.rows_checked,
        "mismatches": record.mismatches,
        "gx_evaluated": record.gx_evaluated,
        "gx_success_ratio": record.gx_success_ratio,
        "data_docs_uri": record.data_docs_uri,
        "report_uri": record.report_uri,
        "scratch_dropped": record.scratch_dropped,
        "error": record.error,
        "details": dict(record.details or {}),
        "caveats": caveats(record),
        "basis": dict(record.basis) if record.basis else None,
        "dag_id": record.dag_id,
        "run_id": record.run_id,
        "try_number": record.try_number,
    }


def summary_line(record: DrillRecord) -> str:
    """``dev drill PASSED: restore point …, RTO 12.3s (restore 9.1s + validation 3.2s), …`` for logs."""
    verdict_word = "PASSED" if record.status is DrillStatus.PASSED else "FAILED"
    point = f"restore point {_iso(record.restore_time)}" if record.restore_time else "no restore point"
    rto = (
        f"RTO {record.rto_seconds}s (restore {record.restore_seconds}s + validation {record.validation_seconds or 0}s)"
        if record.rto_seconds is not None
        else "no RTO (the restore did not finish)"
    )
    checked = f"{record.tables_checked or 0} tables / {record.rows_checked or 0} rows checked"
    gx = (
        f"expectations {round(record.gx_success_ratio * 100, 1)}% of {record.gx_evaluated}"
        if record.gx_success_ratio is not None
        else "expectations did not run"
    )
    tail = f"; {record.error}" if record.error else ""
    tail += "".join(f"; CAVEAT: {c}" for c in caveats(record))
    return (
        f"{record.cluster} {record.mode} drill {record.id} into {record.target} {verdict_word}: {point}, {rto}, "
        f"{checked}, {record.mismatches or 0} mismatches, {gx}; Data Docs {record.data_docs_uri or '(none)'}{tail}"
    )


def record_drill(
    record: DrillRecord, *, storage: Storage | None, catalog: Catalog | None
) -> tuple[DrillRecord, tuple[str, ...]]:
    """Put the drill in the catalog, mark the backups it used at tier 3 (``details.tier3``), release its
    holds, then write ``drill.json`` into ``storage`` (the drill's directory, ``record.report_uri``) when
    given. The catalog may be down: the outage is noted and the report in storage still written (a
    storage error raises, after the catalog row is in). The holds are released whatever happened before."""
    notes: list[str] = []
    link = CatalogLink(catalog, notes)
    try:
        saved = link.call("record the drill", lambda c: c.save_drill(record))
        mark_tier3(record, link)
    finally:
        released = link.call("release the drill's holds", lambda c: c.release_holds(record.id))
    if released:
        log.info("drill %s released its holds on %d backup(s)", record.id, released)
    if storage is not None:
        storage.write_bytes(REPORT_NAME, report_bytes(saved or record), overwrite=True)
    return (saved or record), tuple(notes)


def mark_tier3(record: DrillRecord, link: CatalogLink) -> list[str]:
    """``Catalog.mark_verified(…, tier=3)`` for each backup the drill used, as ``details.tier3`` says (a
    backup no longer succeeded, or gone from the catalog, is noted and skipped); the backups marked."""
    tier3 = (record.details or {}).get("tier3")
    if not isinstance(tier3, Mapping) or tier3.get("ok") is None:
        return []
    ok, reason = bool(tier3["ok"]), str(tier3.get("reason") or "restore drill")

    def mark(backup_id: str) -> Callable[[Catalog], BackupRecord]:
        return lambda c: c.mark_verified(backup_id, ok, reason, tier=3)

    marked: list[str] = []
    for backup_id in record.backups_used:
        try:
            done = link.call(f"mark {backup_id} at tier 3", mark(backup_id))
        except CatalogError as exc:
            link.notes.append(f"{backup_id}: not marked at tier 3: {exc}")
            continue
        if done is not None:
            marked.append(backup_id)
    if marked:
        log.info("tier 3 %s: %s", "passed" if ok else "FAILED", ", ".join(marked))
    return marked


def report_bytes(record: DrillRecord) -> bytes:
    return (json.dumps(record_to_dict(record), indent=2, sort_keys=True, default=str) + "\n").encode()
