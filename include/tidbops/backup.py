"""One backup run, step by step: preflight, plan, run BR (or adopt what a try left), record, verify.

The backup DAGs' tasks are thin operators over these functions; nothing here imports Airflow. The
caller passes the catalog (``None`` when it cannot be reached), ``Storage`` objects (the cluster's
storage root, or one backup's own directory) and, for the step that runs BR, a callable that runs an
argv and raises ``BRError`` when BR fails.

Where a backup lives: ``<storage.uri>/<cluster>/<full|incr>/<backup id>/`` (the catalog's layout, which
``tidbops catalog rebuild`` walks), the id being ``make_backup_id(cluster, kind, <when the run really
started>, dag_id, run_id)``: named by the real time, not the schedule slot (a run that starts late, after
an unpause or a catch-up, says when it ran; the slot is kept as ``scheduled_for``), and unique across runs
by its hash of the run. The plan step picks it once: every later step reads it from the plan, and a
retried plan finds it again (the catalog row of the run, else the run's directory by that hash). So every
try of a run works on the same directory:

* ``backupmeta`` there (BR writes it last): the backup is complete, it is **adopted** — its BackupTS
  taken from the catalog row, else from the manifest, else from ``br debug decode --field=end-version``
  — and BR does not run again. A complete backup is never deleted or written over.
* files but no ``backupmeta``: what a failed try left; it is cleared, then BR runs.
* a manifest without ``backupmeta``: a damaged backup; the step fails and touches nothing.

The catalog may be down for a while: every catalog call is one attempt, and an outage (the database
does not answer) is logged and the step carries on. BR still runs, the manifest is still written next
to the backup, and the next run's plan step catches the catalog up from the manifests
(``rebuild_catalog``), as ``tidbops catalog rebuild`` does by hand. Without the catalog a plan falls back
to a full backup (the chain cannot be known), and a preflight cannot see other running jobs (the
per-cluster Airflow pool still serialises BR).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tidbops import tso
from tidbops.br import runner
from tidbops.br.command import _check_storage_uri, _crypter, _s3_options, backup_argv
from tidbops.br.output import BROutcome
from tidbops.br.seam import BRRunner
from tidbops.catalog.errors import ManifestError
from tidbops.catalog.info import human_age
from tidbops.catalog.manifest import (
    BACKUPMETA,
    MANIFEST_NAME,
    Manifest,
    VerifyResult,
    backup_path,
    build_manifest,
    read_manifest,
    rebuild_catalog,
    verify_backup,
    write_manifest,
)
from tidbops.catalog.planning import Plan, plan_incremental
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    BackupStatus,
    NewBackup,
    make_backup_id,
    utc,
)
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, EncryptionConfig
from tidbops.errors import TiDBOpsError
from tidbops.keys.owner import WrappedKey
from tidbops.redact import redact
from tidbops.storage import Storage, StorageError
from tidbops.tidb import ClusterFacts
from tidbops.timefmt import iso, iso_or_none, show

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors that mean "the catalog database does not answer" (not a bug, not a refused state change).
CATALOG_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError)
DECODE_TIMEOUT = 600.0


class BackupInProgressError(TiDBOpsError):
    """Another BR job of another run is still running on this cluster."""


class BackupTargetError(TiDBOpsError):
    """The backup directory of this run cannot be used without destroying or contradicting something."""


class BackupVerificationError(TiDBOpsError):
    """A backup does not match its manifest (or has none)."""


# ------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RunInfo:
    """The DAG run a step belongs to. ``started_at``: when the run really started (not its schedule
    slot); ``scheduled_for``: the slot of a scheduled run (None for a manual one)."""

    dag_id: str
    run_id: str
    try_number: int
    started_at: datetime
    triggered_by: str | None = None
    scheduled_for: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", utc(self.started_at, "started_at"))
        if self.scheduled_for is not None:
            object.__setattr__(self, "scheduled_for", utc(self.scheduled_for, "scheduled_for"))

    def owns(self, record: BackupRecord) -> bool:
        return record.dag_id == self.dag_id and record.run_id == self.run_id


class BRSessionLike(Protocol):
    """What a BR run needs besides argv (``tidbops.br.runner.BRSession`` has it)."""

    @property
    def cluster(self) -> ClusterConfig: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def log_file(self) -> str: ...
    @property
    def secrets(self) -> tuple[str, ...]: ...


class BRResultLike(Protocol):
    """What a finished BR run reports (``tidbops_airflow.hooks.br.BRResult`` has it)."""

    @property
    def outcome(self) -> BROutcome: ...
    @property
    def seconds(self) -> float: ...


RunBR = Callable[[list[str]], BRResultLike]


# ------------------------------------------------------------------------------------------ catalog


class CatalogLink:
    """The catalog, or none: each call is one attempt; after an outage the rest of the step goes without.

    ``notes`` collects what was skipped, for the task log and the step's result.
    """

    def __init__(self, catalog: Catalog | None, notes: list[str] | None = None) -> None:
        self.catalog = catalog
        self.notes: list[str] = notes if notes is not None else []
        self.down = catalog is None
        if catalog is None:
            self.notes.append("catalog unavailable: continuing without it")

    @property
    def available(self) -> bool:
        return not self.down

    def call(self, what: str, fn: Callable[[Catalog], T]) -> T | None:
        if self.catalog is None or self.down:
            return None
        try:
            return fn(self.catalog)
        except CATALOG_OUTAGES as exc:
            self.down = True
            orig = getattr(exc, "orig", None) or exc  # the driver's error, never the URL (it may hold a password)
            detail = redact(f"{type(orig).__name__}: {orig}", ())
            note = f"catalog unavailable ({what}): {detail.splitlines()[0][:300]}; continuing without it"
            log.warning("%s", note)
            self.notes.append(note)
            return None


# -------------------------------------------------------------------------------------- preflight


@dataclass(frozen=True)
class Preflight:
    cluster: str
    facts: ClusterFacts
    catalog: str  # "ok" or "unavailable"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, **self.facts.to_dict(), "catalog": self.catalog, "notes": list(self.notes)}


def _age_ref(record: BackupRecord) -> datetime:
    return record.updated_at or record.started_at


def preflight(
    cluster: ClusterConfig, facts: ClusterFacts, catalog: Catalog | None, run: RunInfo, now: datetime
) -> Preflight:
    """Refuse when another run's BR job on this cluster is still running; record the cluster's facts.

    A ``running`` row of another run counts while it is younger than ``br.timeout`` (BR is killed by
    then, so an older row is a run that died without saying so).
    """
    now = utc(now, "now")
    link = CatalogLink(catalog)
    running = link.call("list running backups", lambda c: c.list_backups(cluster.name, status=BackupStatus.RUNNING))
    limit = timedelta(seconds=cluster.br.timeout)
    busy = [b for b in running or [] if not run.owns(b) and now - _age_ref(b) < limit]
    if busy:
        b = max(busy, key=_age_ref)
        raise BackupInProgressError(
            f"cluster {cluster.name}: {b.kind.value} backup {b.id} of {b.dag_id or '?'} run {b.run_id or '?'} "
            f"has been running for {human_age(now - _age_ref(b))}; BR runs one job per cluster. If that run died, "
            f"clear its run_br_backup task (the retry adopts or redoes the backup and settles the row); the row "
            f"stops blocking after br.timeout ({human_age(limit)})"
        )
    link.call(
        "record the cluster check",
        lambda c: c.add_event(
            "cluster.checked",
            f"{cluster.name}: TiDB {facts.tidb_version or facts.server_version}, GC safepoint "
            f"{show(facts.gc_safe_point)}, "
            f"tidb_gc_life_time {facts.gc_life_time_seconds}s",
            cluster=cluster.name,
            details={**facts.to_dict(), "dag_id": run.dag_id, "run_id": run.run_id},
        ),
    )
    return Preflight(cluster.name, facts, "ok" if link.available else "unavailable", tuple(link.notes))


# -------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class BackupTarget:
    """What this run backs up, and where. JSON round trip for XCom (``to_dict``/``from_dict``)."""

    cluster: str
    kind: BackupKind
    backup_id: str
    storage_uri: str
    started_at: datetime
    reason: str
    base_backup_id: str | None = None
    last_backup_ts: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BackupKind(self.kind))
        object.__setattr__(self, "started_at", utc(self.started_at, "started_at"))
        if (self.kind is BackupKind.INCREMENTAL) != (self.last_backup_ts is not None):
            raise ValueError(f"{self.backup_id}: an incremental has a last_backup_ts, a full has none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "kind": self.kind.value,
            "backup_id": self.backup_id,
            "storage_uri": self.storage_uri,
            "started_at": iso(self.started_at, timespec="microseconds"),
            "reason": self.reason,
            "base_backup_id": self.base_backup_id,
            "last_backup_ts": self.last_backup_ts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BackupTarget:
        started = d["started_at"]
        return cls(
            cluster=str(d["cluster"]),
            kind=BackupKind(d["kind"]),
            backup_id=str(d["backup_id"]),
            storage_uri=str(d["storage_uri"]),
            started_at=started if isinstance(started, datetime) else datetime.fromisoformat(str(started)),
            reason=str(d.get("reason") or ""),
            base_backup_id=d.get("base_backup_id"),
            last_backup_ts=int(d["last_backup_ts"]) if d.get("last_backup_ts") is not None else None,
        )

    def encryption_method(self, cluster: ClusterConfig) -> str | None:
        enc: EncryptionConfig | None = cluster.br.encryption
        return enc.method if enc else None


def target_for(cluster: ClusterConfig, plan: Plan, run: RunInfo) -> BackupTarget:
    """The backup id and directory of ``plan`` in this run, named by when the run really started."""
    backup_id = make_backup_id(cluster.name, plan.kind, run.started_at, dag_id=run.dag_id, run_id=run.run_id)
    return BackupTarget(
        cluster=cluster.name,
        kind=plan.kind,
        backup_id=backup_id,
        storage_uri=f"{cluster.storage.uri}/{backup_path(cluster.name, plan.kind, backup_id)}",
        started_at=run.started_at,
        reason=plan.reason,
        base_backup_id=plan.base.id if plan.base is not None else None,
        last_backup_ts=plan.last_backup_ts,
    )


def _target_from_record(record: BackupRecord, reason: str) -> BackupTarget:
    return BackupTarget(
        cluster=record.cluster,
        kind=record.kind,
        backup_id=record.id,
        storage_uri=record.storage_uri,
        started_at=record.started_at,
        reason=reason,
        base_backup_id=record.base_backup_id,
        last_backup_ts=record.last_backup_ts,
    )


def _target_from_manifest(manifest: Manifest, reason: str) -> BackupTarget:
    return BackupTarget(
        cluster=manifest.cluster,
        kind=manifest.kind,
        backup_id=manifest.id,
        storage_uri=manifest.storage_uri,
        started_at=manifest.started_at,
        reason=reason,
        base_backup_id=manifest.base_backup_id,
        last_backup_ts=manifest.last_backup_ts,
    )


@dataclass(frozen=True)
class CatchUp:
    """What the plan step's catalog catch-up (rebuild from manifests) did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    verified: tuple[str, ...] = ()
    verify_failed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanResult:
    target: BackupTarget
    catch_up: CatchUp | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        catch_up = None
        if self.catch_up is not None:
            catch_up = {k: list(getattr(self.catch_up, k)) for k in ("added", "updated", "verified", "verify_failed")}
            catch_up["errors"] = list(self.catch_up.errors)
        return {**self.target.to_dict(), "catch_up": catch_up, "notes": list(self.notes)}


def catch_up_catalog(catalog: Catalog, root: Storage, cluster: str) -> CatchUp:
    """Upsert a row for every manifest of ``cluster`` in storage, and verify the rows this added or changed.

    Backups written while the catalog was down get their rows here; verifying just those (not every
    backup again) keeps the step cheap, and lets the incremental planner build on them.
    """
    # rows already recorded with their manifest need no second look (a backup's manifest never changes)
    known = {b.id for b in catalog.list_backups(cluster) if b.manifest_uri and b.status is not BackupStatus.RUNNING}
    report = rebuild_catalog(catalog, root, cluster, skip=known)
    verified: list[str] = []
    failed: list[str] = []
    errors = list(report.errors)
    for backup_id in (*report.inserted, *report.updated):
        record = catalog.get(backup_id)
        if record is None or not record.succeeded or record.verified_at is not None:
            continue
        where = root.child(backup_path(record.cluster, record.kind, record.id))
        try:
            result = verify_backup(where, read_manifest(where))
        except (StorageError, ManifestError) as exc:
            errors.append(f"{backup_id}: cannot verify: {exc}")
            continue
        catalog.mark_verified(backup_id, result.ok, result.summary())
        (verified if result.ok else failed).append(backup_id)
    return CatchUp(
        added=report.inserted,
        updated=report.updated,
        verified=tuple(verified),
        verify_failed=tuple(failed),
        errors=tuple(errors),
    )


def _older_than_gc(plan: Plan, gc_safe_point: datetime | None) -> Plan:
    """A full backup instead of an incremental whose base BR would refuse (``lastbackupts`` below GC)."""
    base = plan.base
    if plan.is_full or base is None or base.backup_time is None or gc_safe_point is None:
        return plan
    if base.backup_time > utc(gc_safe_point, "gc_safe_point"):
        return plan
    return Plan(
        cluster=plan.cluster,
        kind=BackupKind.FULL,
        reason=(
            f"the chain's last backup {base.id} ({show(base.backup_time, ms=True)}) is older than the GC safepoint "
            f"({show(gc_safe_point, ms=True)}): BR would refuse an incremental on it (ErrBackupGCSafepointExceeded); "
            "raise tidb_gc_life_time above the incremental interval"
        ),
    )


def _retry_of_this_run(link: CatalogLink, root: Storage, cluster: ClusterConfig, run: RunInfo) -> BackupTarget | None:
    """The target an earlier try of this run already chose (the plan must not change within a run)."""
    rows = link.call("find this run's backup", lambda c: c.list_backups(cluster.name))
    if rows is not None:
        mine = [b for b in rows if run.owns(b)]
        if mine:
            record = max(mine, key=lambda b: b.started_at)
            return _target_from_record(
                record, f"this run already started {record.kind.value} backup {record.id} ({record.status.value})"
            )
        if link.available:
            return None
    # no catalog: look for this run's directories in storage, by the run's hash (the time in an id is when
    # the try that planned it ran, which a later try cannot know)
    for kind in BackupKind:
        for backup_id in _run_backup_ids(root, cluster.name, kind, run):
            where = root.child(backup_path(cluster.name, kind, backup_id))
            if where.exists(MANIFEST_NAME):
                manifest = read_manifest(where)
                return _target_from_manifest(manifest, f"this run already wrote {kind.value} backup {backup_id}")
            if kind is BackupKind.FULL and where.list(""):
                return _target_from_id(cluster, kind, backup_id, f"this run already started full backup {backup_id}")
    return None


def _run_backup_ids(root: Storage, cluster: str, kind: BackupKind, run: RunInfo) -> list[str]:
    """The backup directories of ``kind`` this run made (ids end with the run's hash), newest first."""
    digest = make_backup_id(cluster, kind, run.started_at, dag_id=run.dag_id, run_id=run.run_id).rsplit("-", 1)[1]
    prefix = f"{cluster}-{kind.short}-"
    mine = [d for d in root.list_dirs(f"{cluster}/{kind.short}") if d.startswith(prefix) and d.endswith(f"-{digest}")]
    return sorted(mine, reverse=True)


def _target_from_id(cluster: ClusterConfig, kind: BackupKind, backup_id: str, reason: str) -> BackupTarget:
    """The target of a directory an earlier try of this run started (its id says when that try ran)."""
    stamp = backup_id[len(f"{cluster.name}-{kind.short}-") :].split("-", 1)[0]
    return BackupTarget(
        cluster=cluster.name,
        kind=kind,
        backup_id=backup_id,
        storage_uri=f"{cluster.storage.uri}/{backup_path(cluster.name, kind, backup_id)}",
        started_at=datetime.strptime(stamp, "%Y%m%dt%H%M%Sz").replace(tzinfo=UTC),
        reason=reason,
    )


def plan_backup(
    cluster: ClusterConfig,
    kind: BackupKind,
    run: RunInfo,
    catalog: Catalog | None,
    root: Storage,
    now: datetime,
    gc_safe_point: datetime | None = None,
) -> PlanResult:
    """This run's target: a full backup, or (``kind`` incremental) an incremental when it is safe.

    First the catalog catches up with the manifests in storage (backups made while it was down). A
    retry of the run keeps what an earlier try chose. An incremental is planned by
    ``plan_incremental`` (base = last succeeded and verified link of the chain; no base, a failed
    attempt, an unverified link or a chain at ``retention.max_chain_length`` give a full backup), and
    becomes a full one when its base is older than the cluster's GC safepoint or the catalog is down.
    """
    kind = BackupKind(kind)
    # the storage must answer before anything is planned: a StorageError here names the endpoint, where
    # BR would fail later and less clearly (and the catch-up below only logs what it cannot read)
    root.list_dirs(cluster.name)
    link = CatalogLink(catalog)
    catch_up = link.call("catch up from manifests", lambda c: catch_up_catalog(c, root, cluster.name))
    if catch_up is not None:
        if catch_up.added or catch_up.updated:
            note = (
                f"catalog caught up from manifests: {len(catch_up.added)} added, {len(catch_up.updated)} updated "
                f"({', '.join((*catch_up.added, *catch_up.updated))}); verified {len(catch_up.verified)}, "
                f"failed verification {len(catch_up.verify_failed)}"
            )
            log.info("%s", note)
            link.notes.append(note)
        for error in catch_up.errors:
            log.warning("catalog catch-up: %s", error)
            link.notes.append(f"catch-up: {error}")
    retry = _retry_of_this_run(link, root, cluster, run)
    if retry is not None:
        return PlanResult(retry, catch_up, tuple(link.notes))
    plan: Plan
    if kind is BackupKind.FULL:
        plan = Plan(cluster.name, BackupKind.FULL, "the full-backup pipeline always takes a full backup")
    else:
        backups = link.call("read the chain", lambda c: c.list_backups(cluster.name))
        if backups is None:
            plan = Plan(
                cluster.name,
                BackupKind.FULL,
                "the catalog is unavailable, so the chain cannot be known: a full backup instead",
            )
        else:
            plan = _older_than_gc(plan_incremental(backups, cluster, now), gc_safe_point)
    return PlanResult(target_for(cluster, plan, run), catch_up, tuple(link.notes))


# --------------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class BackupOutcome:
    """What ``run_backup`` did: ran BR, or adopted a backup an earlier try completed. JSON via to_dict."""

    backup_id: str
    storage_uri: str
    backup_ts: int
    action: str  # "ran" or "adopted"
    source: str  # where backup_ts came from: "br", "catalog", "manifest", "br debug decode"
    try_number: int
    size_bytes: int | None = None
    total_kv: int | None = None
    br_seconds: float | None = None
    cleared_files: int = 0
    catalog: str = "recorded"  # or "unavailable"
    notes: tuple[str, ...] = ()
    key_id: str | None = None  # owner-key (#17): the owner key id and the wrapped data key (never the clear key)
    wrapped_key: str | None = None
    replanned: Mapping[str, Any] | None = None  # the full backup taken instead of a refused incremental (#18)
    replanned_now: bool = False  # this try switched to it (the notice is sent once, by that try)

    @property
    def backup_time(self) -> datetime:
        return tso.to_datetime(self.backup_ts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "storage_uri": self.storage_uri,
            "backup_ts": self.backup_ts,
            "backup_time": iso(self.backup_time),
            "action": self.action,
            "source": self.source,
            "try_number": self.try_number,
            "size_bytes": self.size_bytes,
            "total_kv": self.total_kv,
            "br_seconds": self.br_seconds,
            "cleared_files": self.cleared_files,
            "catalog": self.catalog,
            "notes": list(self.notes),
            "key_id": self.key_id,
            "wrapped_key": self.wrapped_key,
            "replanned": dict(self.replanned) if self.replanned is not None else None,
            "replanned_now": self.replanned_now,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BackupOutcome:
        return cls(
            backup_id=str(d["backup_id"]),
            storage_uri=str(d["storage_uri"]),
            backup_ts=int(d["backup_ts"]),
            action=str(d["action"]),
            source=str(d["source"]),
            try_number=int(d["try_number"]),
            size_bytes=d.get("size_bytes"),
            total_kv=d.get("total_kv"),
            br_seconds=d.get("br_seconds"),
            cleared_files=int(d.get("cleared_files") or 0),
            catalog=str(d.get("catalog") or "recorded"),
            notes=tuple(d.get("notes") or ()),
            key_id=d.get("key_id"),
            wrapped_key=d.get("wrapped_key"),
            replanned=d.get("replanned"),
            replanned_now=bool(d.get("replanned_now")),
        )


def decode_end_version_argv(session: BRSessionLike, storage_uri: str) -> list[str]:
    """``br debug decode --field=end-version``: a backup's BackupTS, read from its ``backupmeta``.

    Built with the argv builders' own checks (no credentials in the URI; the crypter key only as a file).
    """
    cluster = session.cluster
    argv = [cluster.br.path, "debug", "decode", "--field=end-version", "--storage", _check_storage_uri(storage_uri)]
    argv += _s3_options([storage_uri], cluster.storage)
    argv += _crypter(cluster.br.encryption, session.key_file, cluster.name)
    return [*argv, "--log-file", session.log_file]


def read_end_version(
    session: BRSessionLike, storage_uri: str, timeout: float = DECODE_TIMEOUT, *, br: BRRunner | None = None
) -> int:
    """The BackupTS recorded in a backup's ``backupmeta``, as BR decodes it (the last line it prints).

    Run by ``br``, else the session's runner (``BRHook.session`` gives the cluster's), else ``LocalRunner``.
    """
    argv = decode_end_version_argv(session, storage_uri)
    result = runner.runner_of(session, br).run(argv, runner.as_session(session), timeout=timeout)
    lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if result.exit_code != 0 or not re.fullmatch(r"[0-9]{1,20}", last) or int(last) <= 0:
        tail = redact(result.stderr_tail or last, session.secrets).strip().splitlines()
        raise BackupTargetError(
            f"{storage_uri} has a backupmeta, but `br debug decode --field=end-version` did not give a BackupTS "
            f"(exit {result.exit_code}: {tail[-1][:300] if tail else 'no output'}); the backup is left as it is"
        )
    return int(last)


@dataclass(frozen=True)
class TargetState:
    files: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.files

    @property
    def complete(self) -> bool:
        return BACKUPMETA in self.files

    @property
    def has_manifest(self) -> bool:
        return MANIFEST_NAME in self.files


def inspect_target(storage: Storage) -> TargetState:
    return TargetState(tuple(o.path for o in storage.list("")))


def _new_backup(
    target: BackupTarget, cluster: ClusterConfig, run: RunInfo, wrapped: WrappedKey | None = None
) -> NewBackup:
    return NewBackup(
        key_id=wrapped.key_id if wrapped else None,
        wrapped_key=wrapped.wrapped if wrapped else None,
        id=target.backup_id,
        cluster=target.cluster,
        kind=target.kind,
        storage_uri=target.storage_uri,
        started_at=target.started_at,
        base_backup_id=target.base_backup_id,
        last_backup_ts=target.last_backup_ts,
        encryption_method=target.encryption_method(cluster),
        dag_id=run.dag_id,
        run_id=run.run_id,
        try_number=run.try_number,
        triggered_by=run.triggered_by,
        scheduled_for=run.scheduled_for,
    )


def _adopt(
    target: BackupTarget,
    cluster: ClusterConfig,
    run: RunInfo,
    state: TargetState,
    storage: Storage,
    link: CatalogLink,
    session: BRSessionLike,
) -> BackupOutcome:
    row = link.call("read this backup's row", lambda c: c.get(target.backup_id))
    if row is not None and row.status not in (BackupStatus.RUNNING, BackupStatus.FAILED, BackupStatus.SUCCEEDED):
        raise BackupTargetError(f"backup {target.backup_id} is {row.status.value} in the catalog; not adopting it")
    manifest: Manifest | None = None
    figures: dict[str, Any] = {}
    if row is not None and row.succeeded and row.backup_ts is not None:
        ts, source = row.backup_ts, "catalog"
        figures = {"size_bytes": row.size_bytes, "total_kv": row.total_kv}
        figures |= {"key_id": row.key_id, "wrapped_key": row.wrapped_key}
    elif state.has_manifest:
        manifest = read_manifest(storage)
        if manifest.id != target.backup_id:
            raise BackupTargetError(
                f"{storage.uri} holds the manifest of backup {manifest.id}, not {target.backup_id}; left as it is"
            )
        ts, source = manifest.backup_ts, "manifest"
        figures = {"size_bytes": manifest.size_bytes, "total_kv": manifest.total_kv}
        figures |= {"key_id": manifest.key_id, "wrapped_key": manifest.wrapped_key}
    else:
        ts, source = read_end_version(session, target.storage_uri), "br debug decode"
    if target.last_backup_ts is not None and ts <= target.last_backup_ts:
        raise BackupTargetError(
            f"{target.storage_uri}: its BackupTS {ts} is not after the base's {target.last_backup_ts}; "
            "not adopting it (left as it is)"
        )
    if manifest is not None:
        found = manifest
        link.call(
            "catalog the adopted backup",
            lambda c: c.upsert_from_manifest(
                found, storage_uri=storage.uri, manifest_uri=f"{storage.uri}/{MANIFEST_NAME}"
            ),
        )
    elif source == "br debug decode":
        link.call("record the adopted backup", lambda c: c.start_backup(_new_backup(target, cluster, run)))
        link.call(
            "record the adopted backup",
            lambda c: c.finish_backup(target.backup_id, backup_ts=ts, backup_time=tso.to_datetime(ts)),
        )
    note = (
        f"adopted backup {target.backup_id}: {target.storage_uri} already holds a complete backup (backupmeta) "
        f"from an earlier try of this run; BackupTS {ts} from the {source}; BR not run again"
    )
    log.info("%s", note)
    link.notes.append(note)
    return BackupOutcome(
        backup_id=target.backup_id,
        storage_uri=target.storage_uri,
        backup_ts=ts,
        action="adopted",
        source=source,
        try_number=run.try_number,
        catalog="recorded" if link.available else "unavailable",
        notes=tuple(link.notes),
        **figures,
    )


#: BR's refusal of an incremental whose ``--lastbackupts`` is below the GC safepoint
GC_REFUSED = "ErrBackupGCSafepointExceeded"


def gc_refused(error: BaseException | str | None) -> bool:
    """Whether BR refused an incremental because its base is older than the GC safepoint."""
    return error is not None and GC_REFUSED in str(error)


def full_instead(target: BackupTarget, run: RunInfo, cluster: ClusterConfig, error: object) -> BackupTarget:
    """The full backup this run takes when BR refused its incremental ``target`` (base below GC).

    The plan reads the GC safepoint over SQL before BR runs; GC can pass the base in between (or PD's
    safepoint is ahead of what SQL shows), and then BR refuses the incremental on every try. The run
    then takes a full backup, a new chain, in its own directory (named as the plan would have named it).
    """
    reason = (
        f"BR refused incremental {target.backup_id} on {target.base_backup_id} ({GC_REFUSED}: its base, "
        f"lastbackupts {target.last_backup_ts}, is older than the GC safepoint, which passed it after the plan "
        f"read it): a full backup instead, starting a new chain; BR said: {_first_line(str(error))}"
    )
    return target_for(cluster, Plan(cluster.name, BackupKind.FULL, reason), run)


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else "no detail"


def run_backup(
    target: BackupTarget,
    run: RunInfo,
    *,
    session: BRSessionLike,
    storage: Storage,
    catalog: Catalog | None,
    run_br: RunBR,
    wrapped: WrappedKey | None = None,
    storage_for: Callable[[str], Storage] | None = None,
    resumed: bool = False,
) -> BackupOutcome:
    """Run BR for ``target`` (rows: running → succeeded | failed), or adopt what an earlier try completed.

    ``storage`` is the backup's own directory; ``session`` the BR session (storage-resolved cluster,
    key file, log file); ``run_br`` runs an argv and raises ``BRError`` when BR fails. An owner-key
    cluster (#17): ``session.key_file`` holds this backup's fresh data key and ``wrapped`` that key
    wrapped to the owner's public key, catalogued before BR runs (so a retry finds it).

    An incremental BR refuses with ``ErrBackupGCSafepointExceeded`` (its base fell below the GC safepoint
    after the plan read it) stays catalogued failed with BR's error, and the same step takes a full
    backup instead (``full_instead``; its directory from ``storage_for(uri)``); the outcome's ``replanned``
    is that full backup's target, which the record and verify steps then use. A retry whose incremental
    row already failed so goes straight to the full backup. Without ``storage_for`` the error is raised.

    ``resumed``: this try's BR already ran while the task was deferred (BR in a Kubernetes pod): the steps
    before BR (inspecting, clearing, the running row) were done before it deferred and are not repeated;
    ``run_br`` gives that BR's result, which settles the row as a run that waited would.
    """
    if target.kind is BackupKind.INCREMENTAL and storage_for is not None:
        row = CatalogLink(catalog).call("read this backup's row", lambda c: c.get(target.backup_id))
        if row is not None and row.status is BackupStatus.FAILED and gc_refused(row.error):
            full = full_instead(target, run, session.cluster, row.error)
            outcome = _run_target(full, run, session, storage_for(full.storage_uri), catalog, run_br, wrapped, resumed)
            return replace(outcome, replanned=full.to_dict(), notes=(full.reason, *outcome.notes))
    try:
        return _run_target(target, run, session, storage, catalog, run_br, wrapped, resumed)
    except TiDBOpsError as exc:
        if target.kind is not BackupKind.INCREMENTAL or storage_for is None or not gc_refused(exc):
            raise
        full = full_instead(target, run, session.cluster, exc)
        log.warning("%s", full.reason)
        replaced = f"replaced by full backup {full.backup_id} of this run (GC safepoint past the base); BR: {exc}"
        CatalogLink(catalog).call("note the full backup instead", lambda c: c.fail_backup(target.backup_id, replaced))
    outcome = _run_target(full, run, session, storage_for(full.storage_uri), catalog, run_br, wrapped)
    return replace(outcome, replanned=full.to_dict(), replanned_now=True, notes=(full.reason, *outcome.notes))


def _run_target(
    target: BackupTarget,
    run: RunInfo,
    session: BRSessionLike,
    storage: Storage,
    catalog: Catalog | None,
    run_br: RunBR,
    wrapped: WrappedKey | None,
    resumed: bool = False,
) -> BackupOutcome:
    cluster = session.cluster
    enc = cluster.br.encryption
    owner_key = enc is not None and enc.owner_key
    if owner_key != (wrapped is not None):
        raise BackupTargetError(
            f"cluster {cluster.name}: an owner-key cluster's backup needs its wrapped data key, "
            "and only such a backup has one"
        )
    link = CatalogLink(catalog)
    cleared = 0
    if resumed:  # this try's BR already ran (the task deferred while it ran): its steps before BR were done
        log.info("resuming backup %s after BR ran: taking BR's result", target.backup_id)
    else:
        state = inspect_target(storage)
        if state.complete and owner_key and not _adoptable_without_key(target, state, link):
            # an earlier try's data key is only wrapped here (no private key on backup workers): its backup
            # cannot be read back to adopt it, so it is backed up again under this try's fresh key
            note = (
                f"{target.storage_uri} holds a complete backup of an earlier try whose data key this worker cannot "
                "open (owner-key); backing up again under a fresh key"
            )
            log.info("%s", note)
            link.notes.append(note)
            storage.delete(state.files)
            state = inspect_target(storage)
        if state.complete:
            return _adopt(target, cluster, run, state, storage, link, session)
        if state.has_manifest:
            raise BackupTargetError(
                f"{target.storage_uri} has a {MANIFEST_NAME} but no {BACKUPMETA}: a damaged backup. Left as it is; "
                "check the storage, then remove the directory by hand to back up again"
            )
        row = link.call("read this backup's row", lambda c: c.get(target.backup_id))
        if row is not None and row.status not in (BackupStatus.RUNNING, BackupStatus.FAILED):
            raise BackupTargetError(
                f"the catalog says backup {target.backup_id} is {row.status.value}, but {target.storage_uri} has no "
                f"{BACKUPMETA}; not backing up over it. Check the storage (tidbops catalog rebuild --verify)"
            )
        if not state.empty:
            cleared = storage.delete(state.files)
            note = (
                f"cleared {cleared} file(s) an earlier try left in {target.storage_uri} without a {BACKUPMETA} "
                f"(an unfinished backup)"
            )
            log.info("%s", note)
            link.notes.append(note)
        link.call("record the start", lambda c: c.start_backup(_new_backup(target, cluster, run, wrapped)))
    argv = backup_argv(
        cluster,
        kind="full" if target.kind is BackupKind.FULL else "incremental",
        storage_uri=target.storage_uri,
        lastbackupts=target.last_backup_ts,
        log_file=session.log_file,
        crypter_key_file=session.key_file,
    )
    try:
        result = run_br(argv)
    except Exception as exc:
        error = str(exc)
        link.call("record the failure", lambda c: c.fail_backup(target.backup_id, error))
        raise
    ts = result.outcome.backup_ts
    source = "br"
    if ts is None:
        ts, source = read_end_version(session, target.storage_uri), "br debug decode"
    link.call(
        "record the success",
        lambda c: c.finish_backup(
            target.backup_id,
            backup_ts=ts,
            backup_time=tso.to_datetime(ts),
            size_bytes=result.outcome.size_bytes,
            total_kv=result.outcome.total_kv,
            br_duration_s=round(result.seconds, 3),
        ),
    )
    return BackupOutcome(
        backup_id=target.backup_id,
        storage_uri=target.storage_uri,
        backup_ts=ts,
        action="ran",
        source=source,
        try_number=run.try_number,
        size_bytes=result.outcome.size_bytes,
        total_kv=result.outcome.total_kv,
        br_seconds=round(result.seconds, 3),
        cleared_files=cleared,
        catalog="recorded" if link.available else "unavailable",
        notes=tuple(link.notes),
        key_id=wrapped.key_id if wrapped else None,
        wrapped_key=wrapped.wrapped if wrapped else None,
    )


def _adoptable_without_key(target: BackupTarget, state: TargetState, link: CatalogLink) -> bool:
    """Whether a complete backup of an earlier try can be adopted without reading it (owner-key, #17): the
    catalog has it succeeded, or its manifest is there; either holds its wrapped key and BackupTS."""
    row = link.call("read this backup's row", lambda c: c.get(target.backup_id))
    return state.has_manifest or (row is not None and row.succeeded and row.backup_ts is not None)


# ------------------------------------------------------------------------------------------ record


@dataclass(frozen=True)
class RecordResult:
    backup_id: str
    manifest_uri: str
    files: int
    total_bytes: int
    written: bool  # False: a manifest of this backup was there already (a retried task)
    catalog: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "manifest_uri": self.manifest_uri,
            "files": self.files,
            "total_bytes": self.total_bytes,
            "written": self.written,
            "catalog": self.catalog,
            "notes": list(self.notes),
        }


def _record_for_manifest(
    target: BackupTarget, outcome: BackupOutcome, cluster: ClusterConfig, run: RunInfo, now: datetime
) -> BackupRecord:
    """The row as it would be: used when the catalog is down (or behind), so the manifest is complete."""
    return BackupRecord(
        id=target.backup_id,
        cluster=target.cluster,
        kind=target.kind,
        status=BackupStatus.SUCCEEDED,
        storage_uri=target.storage_uri,
        started_at=target.started_at,
        backup_ts=outcome.backup_ts,
        backup_time=outcome.backup_time,
        base_backup_id=target.base_backup_id,
        last_backup_ts=target.last_backup_ts,
        size_bytes=outcome.size_bytes,
        total_kv=outcome.total_kv,
        br_duration_s=outcome.br_seconds,
        encryption_method=target.encryption_method(cluster),
        dag_id=run.dag_id,
        run_id=run.run_id,
        try_number=outcome.try_number,
        triggered_by=run.triggered_by,
        finished_at=utc(now, "now"),
        scheduled_for=run.scheduled_for,
        key_id=outcome.key_id,
        wrapped_key=outcome.wrapped_key,
    )


def record_backup(
    target: BackupTarget,
    outcome: BackupOutcome,
    cluster: ClusterConfig,
    run: RunInfo,
    *,
    storage: Storage,
    catalog: Catalog | None,
    now: datetime,
) -> RecordResult:
    """Write ``tidbops-manifest.json`` next to the backup (once) and put it in the catalog.

    The manifest is built from the catalog row when the catalog has it, else from what the run step
    reported; either way it is written, so a catalog outage loses nothing (the next plan step, or
    ``tidbops catalog rebuild``, catalogs it). A row the catalog lacks or still has as running is made
    succeeded from the manifest.
    """
    if outcome.backup_id != target.backup_id:
        raise BackupTargetError(f"the run step reported backup {outcome.backup_id}, the plan {target.backup_id}")
    link = CatalogLink(catalog)
    row = link.call("read this backup's row", lambda c: c.get(target.backup_id))
    manifest_uri = f"{storage.uri}/{MANIFEST_NAME}"
    written = False
    if storage.exists(MANIFEST_NAME):
        manifest = read_manifest(storage)
        if manifest.id != target.backup_id or manifest.backup_ts != outcome.backup_ts:
            raise ManifestError(
                f"{manifest_uri} describes backup {manifest.id} at ts {manifest.backup_ts}, not {target.backup_id} "
                f"at ts {outcome.backup_ts}; not overwriting it"
            )
    else:
        if row is not None and row.succeeded and row.backup_ts == outcome.backup_ts:
            record = row
        else:
            record = _record_for_manifest(target, outcome, cluster, run, now)
        manifest = build_manifest(record, storage)
        manifest_uri = write_manifest(storage, manifest)
        written = True
    if row is not None and row.succeeded and row.backup_ts == manifest.backup_ts:
        link.call(
            "record the manifest",
            lambda c: c.record_manifest(target.backup_id, manifest_uri, size_bytes=manifest.total_bytes),
        )
    else:
        link.call(
            "catalog the backup from its manifest",
            lambda c: c.upsert_from_manifest(manifest, storage_uri=storage.uri, manifest_uri=manifest_uri),
        )
    return RecordResult(
        backup_id=target.backup_id,
        manifest_uri=manifest_uri,
        files=len(manifest.files),
        total_bytes=manifest.total_bytes,
        written=written,
        catalog="recorded" if link.available else "unavailable",
        notes=tuple(link.notes),
    )


# ------------------------------------------------------------------------------------------ verify


@dataclass(frozen=True)
class VerifyOutcome:
    """A verified backup, with what its manifest says of it (for the step's result and its Asset event)."""

    backup_id: str
    ok: bool
    summary: str
    catalog: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    kind: str | None = None
    backup_ts: int | None = None
    backup_time: datetime | None = None
    size_bytes: int | None = None  # as the catalog records it: BR's figure, else every file of the manifest

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "summary": self.summary,
            "catalog": self.catalog,
            "notes": list(self.notes),
            "kind": self.kind,
            "backup_ts": self.backup_ts,
            "backup_time": iso_or_none(self.backup_time),
            "size_bytes": self.size_bytes,
        }


def verify_recorded_backup(
    target: BackupTarget, *, storage: Storage, catalog: Catalog | None, check_hashes: bool = False
) -> VerifyOutcome:
    """Check every file of the manifest is there with its size (and ``backupmeta``); record the result.

    Raises ``BackupVerificationError`` (after marking the row unverified) when the backup does not
    match its manifest or has none.
    """
    link = CatalogLink(catalog)
    try:
        manifest = read_manifest(storage)
        if manifest.id != target.backup_id:
            raise ManifestError(f"{storage.uri}/{MANIFEST_NAME} describes backup {manifest.id}, not {target.backup_id}")
    except ManifestError as exc:
        reason = f"cannot verify: {exc}"
        link.call("record the failed verification", lambda c: _mark(c, target.backup_id, None, False, reason))
        raise BackupVerificationError(f"backup {target.backup_id}: {reason}") from exc
    result: VerifyResult = verify_backup(storage, manifest, check_hashes=check_hashes)
    summary = result.summary()
    link.call("record the verification", lambda c: _mark(c, target.backup_id, (manifest, storage), result.ok, summary))
    if not result.ok:
        raise BackupVerificationError(
            f"backup {target.backup_id} at {storage.uri} does not match its manifest: {summary}"
        )
    return VerifyOutcome(
        target.backup_id,
        True,
        summary,
        "recorded" if link.available else "unavailable",
        tuple(link.notes),
        kind=manifest.kind.value,
        backup_ts=manifest.backup_ts,
        backup_time=manifest.backup_time,
        size_bytes=manifest.size_bytes if manifest.size_bytes is not None else manifest.total_bytes,
    )


def _mark(
    catalog: Catalog, backup_id: str, found: tuple[Manifest, Storage] | None, ok: bool, reason: str
) -> BackupRecord | None:
    row = catalog.get(backup_id)
    if (row is None or not row.succeeded) and found is not None:
        manifest, storage = found  # the catalog missed the record step: catch it up first
        row, _ = catalog.upsert_from_manifest(
            manifest, storage_uri=storage.uri, manifest_uri=f"{storage.uri}/{MANIFEST_NAME}"
        )
    if row is None or not row.succeeded:
        log.warning("backup %s is not a succeeded backup in the catalog; verification not recorded", backup_id)
        return None
    return catalog.mark_verified(backup_id, ok, reason)


# ----------------------------------------------------------------------------------------- helpers


def describe(target: BackupTarget) -> str:
    """``incremental backup dev-incr-… on dev-full-… (--lastbackupts 4358…)`` for log lines."""
    if target.kind is BackupKind.INCREMENTAL:
        return (
            f"incremental backup {target.backup_id} on {target.base_backup_id} (--lastbackupts {target.last_backup_ts})"
        )
    return f"full backup {target.backup_id}"
