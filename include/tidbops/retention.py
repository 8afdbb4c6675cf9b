"""One retention run of a cluster: reconcile storage with the catalog, plan, report, expire, truncate the log.

The decisions are ``tidbops.catalog.planning.plan_retention``'s; this module adds what a run needs around
them, in this order:

1. **Reconcile** (``survey_storage`` + ``reconcile``). The catalog and the storage must tell the same
   story before anything is deleted: a catalogued backup missing from storage, or a manifest in storage
   without a catalog row, refuses the whole run (``RetentionReport.refused``), and each difference is named.
2. **Plan** (``plan_cluster``). Besides the planner's rules: held backups (a running drill or restore)
   stay; when the newest full backup failed verification nothing expires; with log backup on and its range
   unknown, the planner keeps every full the log could need (``log_min_ts`` taken as 0) and the log is not
   truncated.
3. **Report**: every decision with its reason (``RetentionReport.lines``, ``note_markdown``).
4. **Expire** (``apply``), per backup: the row becomes ``expired`` (an event says why), the manifest is
   deleted first (no stored file claims a complete backup any more), then the rest of its prefix, then the
   row becomes ``deleted``. A crash or a storage failure at any point leaves a row that says ``expired``
   ("its files may still be there"), never a ``succeeded`` row pointing at missing data; the next run
   finishes those rows first (``resume``). Holds are read again right before each deletion.
5. **Truncate the log** (``truncate_until``): up to the BackupTS of the earliest retained full backup that
   point-in-time recovery can start from, never past it, never past the log's checkpoint, and only when
   that moves the log's start forward.

A retried or repeated run finds nothing more to do: expired rows are finished, deleted rows stay deleted,
and a truncation point the log already starts at is not applied again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.planning import RetentionDecision, plan_retention
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, utc
from tidbops.config import ClusterConfig
from tidbops.errors import TiDBOpsError
from tidbops.pitr import LogRange
from tidbops.storage import Storage, StorageError
from tidbops.timefmt import iso, show, show_tso


class RetentionError(TiDBOpsError):
    """A retention run could not finish; what it did so far is in the catalog (rows say ``expired``)."""


# ------------------------------------------------------------------------------------------ survey


@dataclass(frozen=True)
class StoredBackup:
    """A backup directory found below ``<root>/<cluster>/{full,incr}/``."""

    kind: BackupKind
    id: str
    has_manifest: bool
    files: int


def survey_storage(root: Storage, cluster: str) -> dict[str, StoredBackup]:
    """Every backup directory of ``cluster`` in storage, by id (one listing per kind, then one per dir).

    Raises ``StorageError`` when the storage cannot be listed: a run that cannot see the storage must not
    decide anything.
    """
    found: dict[str, StoredBackup] = {}
    for kind in BackupKind:
        kind_dir = f"{cluster}/{kind.short}"
        for name in root.list_dirs(kind_dir):
            objects = root.child(f"{kind_dir}/{name}").list("")
            paths = {o.path for o in objects}
            if not paths:
                continue  # an empty directory (local storage after a delete): S3 has no such thing
            found[name] = StoredBackup(kind=kind, id=name, has_manifest=MANIFEST_NAME in paths, files=len(paths))
    return found


@dataclass(frozen=True)
class Difference:
    backup_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.backup_id}: {self.what}"


def reconcile(records: Iterable[BackupRecord], stored: Mapping[str, StoredBackup]) -> list[Difference]:
    """Where the catalog and the storage disagree about a backup that matters.

    - a ``succeeded`` row whose directory or manifest is gone (deleted behind our back);
    - a manifest in storage with no row, or with a row that is not ``succeeded`` (a ``failed`` row over a
      complete backup, or a ``running`` one that finished unseen) — except ``expired``/``deleted`` rows,
      whose leftovers retention itself finishes deleting;
    - a row and a directory of different kinds.

    Directories without a manifest and without a row (a backup still running while the catalog was down,
    or something that is not ours) are left alone and do not block: nothing claims them as restore points.
    """
    rows = {r.id: r for r in records}
    diffs: list[Difference] = []
    for r in sorted(rows.values(), key=BackupRecord.sort_key):
        s = stored.get(r.id)
        if r.status is BackupStatus.SUCCEEDED:
            if s is None:
                diffs.append(Difference(r.id, f"catalogued as succeeded but its directory {_dir(r)} is gone"))
            elif not s.has_manifest:
                diffs.append(Difference(r.id, f"catalogued as succeeded but {_dir(r)}/{MANIFEST_NAME} is missing"))
        if s is not None and s.kind is not r.kind:
            diffs.append(Difference(r.id, f"catalogued as {r.kind.value} but stored under {s.kind.short}/"))
    for s in sorted(stored.values(), key=lambda x: x.id):
        row = rows.get(s.id)
        if not s.has_manifest:
            continue
        if row is None:
            diffs.append(Difference(s.id, f"{s.kind.short}/{s.id}/{MANIFEST_NAME} is in storage with no catalog row"))
        elif row.status is BackupStatus.FAILED:
            diffs.append(
                Difference(s.id, f"catalogued as {row.status.value} but storage holds its manifest (a complete backup)")
            )
    return diffs


def _dir(r: BackupRecord) -> str:
    return f"{r.kind.short}/{r.id}"


# ------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class RetentionReport:
    cluster: str
    now: datetime
    window_start: datetime
    window_text: str
    dry_run: bool
    keep: tuple[RetentionDecision, ...]
    expire: tuple[RetentionDecision, ...]
    resume: tuple[str, ...]  # rows already expired (or deleted) whose files a run still has to delete
    differences: tuple[Difference, ...] = ()
    refused: str | None = None  # why this run deletes nothing (differences, a failed verification)
    log_enabled: bool = False
    log_range: LogRange | None = None
    truncate_until: int | None = None
    truncate_reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def will_delete(self) -> bool:
        return not self.dry_run and self.refused is None

    @property
    def expire_ids(self) -> list[str]:
        return [d.backup.id for d in self.expire]

    def lines(self) -> list[str]:
        """The whole report, one decision a line: for the task log."""
        mode = "DRY RUN (report only)" if self.dry_run else "deleting"
        head = [
            f"retention of {self.cluster}: {mode}; window {self.window_text} from {show(self.window_start)}; "
            f"keep {len(self.keep)}, expire {len(self.expire)}, finish {len(self.resume)}"
        ]
        if self.refused:
            head.append(f"REFUSED, nothing is deleted: {self.refused}")
        head += [f"  differs: {d}" for d in self.differences]
        head += [f"  keep    {d.backup.id}: {d.reason}" for d in self.keep]
        head += [f"  expire  {d.backup.id}: {d.reason}" for d in self.expire]
        head += [f"  finish  {backup_id}: expired earlier, its files are deleted now" for backup_id in self.resume]
        head.append(f"  log: {self.truncate_reason}" if self.log_enabled else "  log: log backup is off")
        head += [f"  note: {n}" for n in self.notes]
        return head

    def note_markdown(self, limit: int = 900) -> str:
        """A few Markdown lines for the Airflow run note (Airflow renders notes as Markdown)."""
        state = "dry run" if self.dry_run else ("**refused**" if self.refused else "applied")
        out = [
            f"**Retention of {self.cluster}** ({state}): keep {len(self.keep)}, expire {len(self.expire)}"
            + (f", finish {len(self.resume)}" if self.resume else ""),
            "",
        ]
        if self.refused:
            out += [f"- Refused: {_md(self.refused)}", ""]
        if self.expire:
            out.append("- Expire: " + ", ".join(f"`{d.backup.id}`" for d in self.expire[:8]))
            if len(self.expire) > 8:
                out[-1] += f" and {len(self.expire) - 8} more"
        if self.log_enabled:
            out.append(f"- Log: {_md(self.truncate_reason)}")
        out.append("- Every decision with its reason is in the task log.")
        text = "\n".join(out)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "now": iso(self.now),
            "window_start": iso(self.window_start),
            "dry_run": self.dry_run,
            "refused": self.refused,
            "differences": [str(d) for d in self.differences],
            "keep": [{"id": d.backup.id, "reason": d.reason} for d in self.keep],
            "expire": [{"id": d.backup.id, "reason": d.reason} for d in self.expire],
            "resume": list(self.resume),
            "log_enabled": self.log_enabled,
            "log_min_ts": self.log_range.min_ts if self.log_range else None,
            "log_max_ts": self.log_range.max_ts if self.log_range else None,
            "truncate_until": self.truncate_until,
            "truncate_reason": self.truncate_reason,
            "notes": list(self.notes),
        }


def _md(text: str) -> str:
    """Plain text safe in a Markdown note: no HTML-like tags, no emphasis by accident."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("_", "\\_")


def _newest_failed_full(records: Sequence[BackupRecord]) -> BackupRecord | None:
    fulls = [r for r in records if r.is_full and r.succeeded and r.backup_ts is not None]
    if not fulls:
        return None
    newest = max(fulls, key=lambda r: r.backup_ts or 0)
    return newest if newest.verify_failed else None


def plan_cluster(
    cluster: ClusterConfig,
    records: Sequence[BackupRecord],
    stored: Mapping[str, StoredBackup] | None,
    now: datetime,
    *,
    held: Mapping[str, Sequence[str]] | None = None,
    log_range: LogRange | None = None,
    dry_run: bool | None = None,
) -> RetentionReport:
    """The retention decisions for one cluster, and whether this run may act on them.

    ``stored`` is ``survey_storage``'s result (None: the storage could not be read, which refuses the run).
    ``log_range`` is the log backup's range from ``br log metadata`` (None: unknown or log backup off).
    """
    now = utc(now, "now")
    mine = [r for r in records if r.cluster == cluster.name]
    held = held or {}
    notes: list[str] = []
    log_enabled = cluster.log_backup.enabled
    if log_enabled and log_range is None:
        notes.append(
            "the log backup's range is unknown: every full backup the log could start a restore from is kept, "
            "and the log is not truncated"
        )
    pitr_min = (log_range.min_ts if log_range else 0) if log_enabled else None
    plan = plan_retention(mine, cluster.retention, now, pitr_min, held)

    refused: str | None = None
    differences: tuple[Difference, ...] = ()
    if stored is None:
        refused = "the storage could not be listed, so it cannot be reconciled with the catalog"
    else:
        differences = tuple(reconcile(mine, stored))
        if differences:
            refused = (
                f"storage and catalog disagree about {len(differences)} backup(s) "
                f"({', '.join(sorted({d.backup_id for d in differences})[:5])}); fix or catalog them "
                "(tidbops catalog rebuild --verify), then run again"
            )
    failed_full = _newest_failed_full(mine)
    if refused is None and failed_full is not None:
        refused = (
            f"the newest full backup {failed_full.id} failed verification ({(failed_full.verify_detail or '')[:120]}); "
            "nothing expires until a newer full backup is verified"
        )

    resume: list[str] = []
    for r in sorted(mine, key=BackupRecord.sort_key):
        if r.status is BackupStatus.EXPIRED:
            resume.append(r.id)
        elif r.status is BackupStatus.DELETED and stored is not None and r.id in stored:
            resume.append(r.id)

    until, why = truncate_until(plan.keep, log_range) if log_enabled else (None, "log backup is off")
    if log_enabled and refused is not None and until is not None:
        until, why = None, f"not truncated: the run is refused ({why})"
    return RetentionReport(
        cluster=cluster.name,
        now=now,
        window_start=plan.window_start,
        window_text=cluster.retention.window_text,
        dry_run=cluster.retention_dry_run if dry_run is None else dry_run,
        keep=plan.keep,
        expire=plan.expire,
        resume=tuple(resume),
        differences=differences,
        refused=refused,
        log_enabled=log_enabled,
        log_range=log_range,
        truncate_until=until,
        truncate_reason=why,
        notes=tuple(notes),
    )


def truncate_until(keep: Iterable[RetentionDecision], log_range: LogRange | None) -> tuple[int | None, str]:
    """How far ``br log truncate --until`` may go, and why: the BackupTS of the earliest retained full
    backup taken after the log's start (the first full a point-in-time restore can still start from).

    Nothing to truncate when the log's range is unknown, when no retained full lies inside the log, or
    when the log already starts there. Never past the log's checkpoint (``max_ts``).
    """
    if log_range is None:
        return None, "not truncated: the log backup's range is unknown"
    anchors = [
        d.backup
        for d in keep
        if d.backup.is_full
        and d.backup.succeeded
        and d.backup.backup_ts is not None
        and d.backup.backup_ts >= log_range.min_ts
    ]
    if not anchors:
        return None, "not truncated: no retained full backup lies inside the log, so all of it may still be needed"
    anchor = min(anchors, key=lambda b: b.backup_ts or 0)
    assert anchor.backup_ts is not None
    until = min(anchor.backup_ts, log_range.max_ts)
    if until <= log_range.min_ts:
        return None, f"not truncated: the log already starts at the earliest retained full {anchor.id}"
    return until, (
        f"truncate until {until} ({show_tso(until)}), the BackupTS of {anchor.id}, the earliest "
        "retained full backup point-in-time recovery can start from"
    )


# ------------------------------------------------------------------------------------------ apply


class CatalogLike(Protocol):
    def set_status(self, backup_id: str, status: BackupStatus, reason: str) -> BackupRecord: ...
    def get(self, backup_id: str) -> BackupRecord | None: ...
    def held_backups(self, cluster: str) -> dict[str, list[str]]: ...
    def add_event(
        self,
        kind: str,
        message: str,
        *,
        cluster: str | None = None,
        backup_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> None: ...


@dataclass
class ApplyResult:
    expired: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    objects_deleted: int = 0
    skipped_held: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "deleted": self.deleted,
            "objects_deleted": self.objects_deleted,
            "skipped_held": self.skipped_held,
            "errors": self.errors,
        }


def _delete_backup_files(root: Storage, record: BackupRecord) -> int:
    """Delete a backup's prefix: its manifest first (no stored file claims a complete backup any more),
    then every other object. Returns how many objects went."""
    where = root.child(backup_path(record.cluster, record.kind, record.id))
    objects = [o.path for o in where.list("")]
    first = [p for p in objects if p == MANIFEST_NAME]
    count = where.delete(first) if first else 0
    rest = [p for p in objects if p != MANIFEST_NAME]
    return count + (where.delete(rest) if rest else 0)


def apply(
    report: RetentionReport,
    catalog: CatalogLike,
    root: Storage,
    *,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> ApplyResult:
    """Carry out ``report``: finish earlier expired rows, then expire and delete what the plan expires.

    Nothing happens for a dry run or a refused report. Raises ``RetentionError`` after trying every
    backup when some could not be deleted (their rows stay ``expired``; a retry finishes them).
    """
    result = ApplyResult()
    if not report.will_delete:
        return result
    reasons = {d.backup.id: d.reason for d in report.expire}
    for backup_id in (*report.resume, *report.expire_ids):
        record = catalog.get(backup_id)
        if record is None or record.cluster != report.cluster:
            result.errors.append(f"{backup_id}: no longer in the catalog; skipped")
            continue
        try:
            if record.status in (BackupStatus.SUCCEEDED, BackupStatus.FAILED):
                record = catalog.set_status(backup_id, BackupStatus.EXPIRED, f"retention: {reasons.get(backup_id, '')}")
                result.expired.append(backup_id)
                on_progress(f"expired {backup_id}: {reasons.get(backup_id, '')}")
            holders = catalog.held_backups(report.cluster).get(backup_id)
            if holders:  # taken after the plan: keep the files, the row stays expired until a later run
                result.skipped_held.append(backup_id)
                on_progress(f"kept the files of {backup_id}: held by {', '.join(holders)}")
                continue
            count = _delete_backup_files(root, record)
            result.objects_deleted += count
            if record.status is not BackupStatus.DELETED:
                catalog.set_status(
                    backup_id,
                    BackupStatus.DELETED,
                    f"retention deleted {count} object(s) below {backup_path(record.cluster, record.kind, record.id)}",
                )
            result.deleted.append(backup_id)
            on_progress(f"deleted {backup_id}: {count} object(s)")
        except StorageError as exc:
            result.errors.append(f"{backup_id}: {exc}")
            on_progress(f"could not delete {backup_id}: {exc} (its row says expired; the next run finishes it)")
    if result.errors:
        raise RetentionError(
            f"retention of {report.cluster}: {len(result.errors)} backup(s) not finished "
            f"({'; '.join(result.errors[:3])}); their rows say expired and the next run finishes them"
        )
    return result
