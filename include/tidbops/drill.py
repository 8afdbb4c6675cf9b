"""Restore drills: restore a cluster's backups into a scratch cluster, prove the data right, measure the RTO.

A drill is one front door of the restore engine (``tidbops.recovery``, where planning BR's steps, the
scratch target, the holds, running BR and validating live); what only a drill does is here:

1. **choose the restore point** (``plan_drill``). ``snapshot`` mode: the newest snapshot restore point
   whose chain is whole and verified (``tidbops.pitr.snapshot_points``): its full backup and incrementals,
   in order. ``pitr`` mode: a point inside the PITR window (``tidbops.pitr.compute_window``), drawn with a
   recorded seed from its recent end (the last ``recent`` seconds up to now: the log checkpoint may still
   be behind it, so the DAG waits for the checkpoint to pass it before restoring). The drill's id
   (``drill_id_for``: deterministic per DAG run) names every step's work.
2. then the engine: the scratch target (``recovery.scratch``: only a cluster marked ``scratch: true``),
   the restore (``recovery.run``: timed, the RTO's restore part), the validation (``recovery.validate``:
   schema, content and the expectation suites against the source as of the point).
3. **the verdict** (``verdict``, ``tier3_verdict``) and **the record** (``drill_record``, ``record_drill``):
   the ``drills`` catalog row with the RTO, tier 3 of the backups it used, and ``drill.json`` next to the
   Data Docs, under ``<storage>/<cluster>/drills/<drill id>/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from tidbops import tso
from tidbops.catalog.errors import CatalogError
from tidbops.catalog.info import human_age
from tidbops.catalog.records import BackupRecord, DrillRecord, DrillStatus, index, make_drill_id, summarise_error
from tidbops.config import ClusterConfig
from tidbops.pitr import PitrWindow, snapshot_points
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import RecoveryPlan, RestoreMode, RestoreStep, chain_steps, parse_time, plan_dir
from tidbops.recovery.run import Reported, number
from tidbops.recovery.scratch import ensure_scratch
from tidbops.recovery.validate import no_suites_note
from tidbops.timefmt import iso, iso_or_none, show_tso, utc

if TYPE_CHECKING:
    from tidbops.backup import CatalogLink, RunInfo
    from tidbops.catalog.store import Catalog
    from tidbops.storage import Storage

log = logging.getLogger(__name__)

DrillMode = RestoreMode
DEFAULT_RECENT = timedelta(minutes=10)
REPORT_NAME = "drill.json"


class DrillError(RecoveryError):
    """A drill cannot go on as asked."""


class NoRestorePointError(DrillError):
    """Nothing to drill: no restorable snapshot chain, or no PITR window."""


# -------------------------------------------------------------------------------------- the point


@dataclass(frozen=True, kw_only=True)
class DrillPlan(RecoveryPlan):
    """What a drill restores (``plan_id``: the drill id; ``source``: the drilled cluster; ``target``: a
    scratch cluster) and to which point, why that point, and the PITR point's seed. JSON round trip for
    XCom (``to_dict``/``from_dict``)."""

    reason: str
    chosen_at: datetime
    seed: int | None = None

    kind: ClassVar[str] = "drill"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "chosen_at", utc(self.chosen_at, "chosen_at"))

    @property
    def drill_id(self) -> str:
        return self.plan_id

    @property
    def cluster(self) -> str:
        return self.source

    def clusters(self, clusters: Mapping[str, ClusterConfig]) -> tuple[ClusterConfig, ClusterConfig]:
        """The drilled cluster and the scratch target from the fleet config as it is now: a target no longer
        marked scratch is refused (``NotScratchError``: nothing is touched)."""
        source = clusters.get(self.source)
        if source is None:
            raise DrillError(f"drill {self.drill_id}: cluster {self.source!r} is no longer in the fleet config")
        return source, ensure_scratch(clusters.get(self.target), self.target, source=self.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id,
            "cluster": self.cluster,
            **self.common_dict(),
            "reason": self.reason,
            "chosen_at": iso(self.chosen_at),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DrillPlan:
        return cls(
            plan_id=str(d["drill_id"]),
            source=str(d["cluster"]),
            **cls.common_fields(d),
            reason=str(d.get("reason") or ""),
            chosen_at=parse_time(d["chosen_at"]),
            seed=int(d["seed"]) if d.get("seed") is not None else None,
        )


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
    steps = chain_steps(rows, point.chain)
    links = "the full backup" if len(steps) == 1 else f"the full backup and {len(steps) - 1} incremental(s)"
    reason = f"the newest snapshot restore point, {point.backup_id} ({show_tso(point.backup_ts)}): {links}"
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
            f"the PITR window of {window.cluster} starts at {show_tso(window.start_ts)}, not before now; "
            "a point needs a full backup and some log after it"
        )
    rng = random.Random(seed)  # noqa: S311 (a reproducible draw, not a secret)
    physical = rng.randrange(tso.physical_ms(low), tso.physical_ms(now_ts))
    point = max(low, tso.compose(physical))
    base = max((b for b in window.bases if b.backup_ts < point), key=lambda b: b.backup_ts)
    end = window.end_ts or 0
    waits = "" if point <= end else f"; the log checkpoint ({show_tso(end)}) must pass it first"
    reason = (
        f"a PITR point drawn (seed {seed}) from the last {human_age(recent)} of the window "
        f"{show_tso(window.start_ts)} → now: {show_tso(point)}, from full backup {base.backup_id}{waits}"
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
    chosen: DrillMode = mode or source.drill.mode
    used_seed, log_storage_uri = None, None
    if chosen == "snapshot":
        steps, ts, reason = choose_snapshot(rows)
    else:
        if window is None:
            raise NoRestorePointError(f"a PITR drill of {source.name} needs its PITR window (the log range)")
        used_seed = seed if seed is not None else seed_for(drill_id)
        step, ts, reason = choose_pitr(window, now, seed=used_seed, recent=recent)
        base = index(rows).get(step.backup_id)
        if base is None:
            raise NoRestorePointError(f"full backup {step.backup_id} of the PITR window is not in the catalog")
        steps, log_storage_uri = (replace(step, storage_uri=base.storage_uri),), source.log_storage_uri
    return DrillPlan(
        plan_id=drill_id,
        source=source.name,
        target=target.name,
        mode=chosen,
        restore_ts=ts,
        steps=steps,
        log_storage_uri=log_storage_uri,
        reason=reason,
        chosen_at=now,
        seed=used_seed,
    )


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
    return plan_dir(cluster, DrillPlan.kind, drill_id)


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
    figures = Reported.of(results.get("restore"), results.get("validate"))
    return DrillRecord(
        id=drill_id_for(cluster, run),
        cluster=cluster.name,
        target=str(choose.get("target") or target),
        mode=mode,
        status=v.status,
        started_at=run.started_at,
        restore_ts=number(choose.get("restore_ts"), int),
        point_reason=choose.get("reason"),
        point_seed=number(choose.get("seed"), int),
        backups_used=tuple(s["backup_id"] for s in choose.get("steps") or ()),
        restore_seconds=figures.restore_seconds,
        validation_seconds=figures.validation_seconds,
        tables_checked=figures.tables_checked,
        rows_checked=figures.rows_checked,
        mismatches=figures.mismatches,
        gx_evaluated=number(gx.get("evaluated"), int),
        gx_success_ratio=number(gx.get("success_ratio"), float),
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
        "started_at": iso_or_none(record.started_at),
        "finished_at": iso_or_none(record.finished_at),
        "restore_ts": record.restore_ts,
        "restore_time": iso_or_none(record.restore_time),
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
    point = f"restore point {iso_or_none(record.restore_time)}" if record.restore_time else "no restore point"
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
    from tidbops.backup import CatalogLink

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
