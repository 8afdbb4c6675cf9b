"""The catalog's plain data: backup records, their kinds and states, ids, and chains.

Pure: no SQL, no storage. Every datetime here is timezone-aware UTC; naive datetimes are refused at the
edges (the database stores naive UTC, ``store`` converts).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from tidbops import tso
from tidbops.catalog.errors import BrokenChainError
from tidbops.redact import redact
from tidbops.text import one_line
from tidbops.timefmt import iso_or_none
from tidbops.timefmt import utc as utc  # the one ``utc``; re-exported for the catalog's callers

BACKUP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
ID_MAX = 128
CLUSTER_MAX = 64
URI_MAX = 1024
NAME_MAX = 250  # dag_id, run_id (Airflow's own limit is 250)
SHORT_MAX = 255  # triggered_by, br_version
ERROR_MAX = 4000  # error and verification summaries are cut to this many characters
ENCRYPTION_METHODS = frozenset({"aes128-ctr", "aes192-ctr", "aes256-ctr"})


class BackupKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"

    @property
    def short(self) -> str:
        """The word used in ids and storage paths: ``full`` or ``incr``."""
        return "full" if self is BackupKind.FULL else "incr"


class BackupStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"  # retention decided it may go; its files may still be there
    DELETED = "deleted"  # its files are gone; the row stays as history


def utcnow() -> datetime:
    return datetime.now(UTC)


def summarise_error(text: str) -> str:
    """An error summary fit for the catalog: secrets redacted, at most ``ERROR_MAX`` characters."""
    cleaned = redact(text.strip())
    if len(cleaned) <= ERROR_MAX:
        return cleaned
    suffix = " … (truncated)"
    return cleaned[: ERROR_MAX - len(suffix)] + suffix


def make_backup_id(
    cluster: str,
    kind: BackupKind,
    when: datetime,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
) -> str:
    """``<cluster>-<full|incr>-<yyyymmddTHHMMSSZ>-<hash>``.

    The hash is of ``dag_id`` and ``run_id``: every try of one DAG run gets the same id (so a retry
    updates its row instead of adding one). Without a run, the hash is random.
    """
    return _run_scoped_id(cluster, kind.short, when, dag_id, run_id)


def _run_scoped_id(prefix: str, word: str, when: datetime, dag_id: str | None, run_id: str | None) -> str:
    """``<prefix>-<word>-<yyyymmddTHHMMSSZ>-<hash>``, the hash of ``dag_id`` and ``run_id`` (random without a
    run): every try of one DAG run gets the same id."""
    stamp = utc(when, "when").strftime("%Y%m%dT%H%M%SZ")
    if dag_id is not None and run_id is not None:
        digest = hashlib.sha256(f"{dag_id}\x00{run_id}".encode()).hexdigest()[:8]
    else:
        digest = secrets.token_hex(4)
    return check_backup_id(f"{prefix}-{word}-{stamp}-{digest}".lower())


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        raise ValueError(
            f"{backup_id!r} is not a valid backup id; use lower-case letters, digits, '-' and '_' "
            f"(at most {ID_MAX} characters); it names a storage directory"
        )
    return backup_id


def _opt_utc(dt: datetime | None, what: str) -> datetime | None:
    return None if dt is None else utc(dt, what)


def _check_len(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long; the catalog keeps at most {limit}")


def check_storage_uri(uri: str) -> str:
    """A storage URI fit for the catalog: no query string (credentials), no user info."""
    if "?" in uri or re.search(r"://[^/]*@", uri):
        raise ValueError("a storage URI in the catalog must not carry credentials or query parameters")
    _check_len(uri, URI_MAX, "storage_uri")
    return uri


KEY_ID_RE = re.compile(r"^age:[0-9a-f]{16}$")
WRAPPED_KEY_MAX = 4096


def check_wrapped_key(key_id: str | None, wrapped_key: str | None) -> None:
    """Owner-key backups (#17): a key id (``age:<16 hex>``) and a wrapped key (base64), both or neither."""
    if (key_id is None) != (wrapped_key is None):
        raise ValueError("key_id and wrapped_key go together (an owner-key backup has both)")
    if key_id is not None and not KEY_ID_RE.match(key_id):
        raise ValueError(f"key_id {key_id[:40]!r} is not age:<16 hex>")
    if wrapped_key is not None and not (
        0 < len(wrapped_key) <= WRAPPED_KEY_MAX and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", wrapped_key)
    ):
        raise ValueError(f"wrapped_key is not base64 of at most {WRAPPED_KEY_MAX} characters")


@dataclass(frozen=True)
class NewBackup:
    """What is known when a backup starts: the input of ``Catalog.start_backup``."""

    id: str
    cluster: str
    kind: BackupKind
    storage_uri: str
    started_at: datetime
    base_backup_id: str | None = None  # incrementals: the previous link of the chain
    last_backup_ts: int | None = None  # incrementals: the --lastbackupts passed to BR (the base's backup_ts)
    encryption_method: str | None = None  # never the key
    br_version: str | None = None
    key_id: str | None = None  # owner-key (#17): the owner public key the data key is wrapped to
    wrapped_key: str | None = None  # owner-key: the backup's data key, wrapped (never the clear key)
    dag_id: str | None = None
    run_id: str | None = None
    try_number: int = 1
    triggered_by: str | None = None  # "<run type>:<user>", or the run type ("scheduled")
    scheduled_for: datetime | None = None  # the schedule slot of the run that made it (None: not scheduled)

    def __post_init__(self) -> None:
        check_backup_id(self.id)
        object.__setattr__(self, "kind", BackupKind(self.kind))
        object.__setattr__(self, "started_at", utc(self.started_at, "started_at"))
        object.__setattr__(self, "scheduled_for", _opt_utc(self.scheduled_for, "scheduled_for"))
        check_storage_uri(self.storage_uri)
        _check_len(self.cluster, CLUSTER_MAX, "cluster")
        _check_len(self.dag_id, NAME_MAX, "dag_id")
        _check_len(self.run_id, NAME_MAX, "run_id")
        _check_len(self.triggered_by, SHORT_MAX, "triggered_by")
        _check_len(self.br_version, SHORT_MAX, "br_version")
        if self.encryption_method is not None and self.encryption_method not in ENCRYPTION_METHODS:
            raise ValueError(
                f"encryption_method {self.encryption_method!r} is not one of {', '.join(sorted(ENCRYPTION_METHODS))}"
            )
        if self.try_number < 1:
            raise ValueError(f"try_number must be at least 1, not {self.try_number}")
        check_wrapped_key(self.key_id, self.wrapped_key)
        if self.kind is BackupKind.INCREMENTAL:
            if self.base_backup_id is None or self.last_backup_ts is None:
                raise ValueError(f"{self.id}: an incremental backup needs base_backup_id and last_backup_ts")
            check_backup_id(self.base_backup_id)
        elif self.base_backup_id is not None or self.last_backup_ts is not None:
            raise ValueError(f"{self.id}: a full backup has no base_backup_id or last_backup_ts")
        if self.last_backup_ts is not None and self.last_backup_ts <= 0:
            raise ValueError(f"{self.id}: last_backup_ts must be a positive TSO")


@dataclass(frozen=True)
class BackupRecord:
    """One row of the catalog: one backup attempt (its retries share the row)."""

    id: str
    cluster: str
    kind: BackupKind
    status: BackupStatus
    storage_uri: str
    started_at: datetime
    verified: bool = False
    verified_at: datetime | None = None  # None: never checked; with verified False: the check failed
    verify_detail: str | None = None
    verified_tier: int | None = None  # the highest tier passed: 1 files, 2 BR's checksum, 3 a drill (#16)
    backup_ts: int | None = None  # BR's BackupTS (TSO); None while running or when it failed
    backup_time: datetime | None = None  # the UTC time of backup_ts
    base_backup_id: str | None = None
    last_backup_ts: int | None = None
    size_bytes: int | None = None
    total_kv: int | None = None
    br_duration_s: float | None = None
    br_version: str | None = None
    encryption_method: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    try_number: int = 1
    triggered_by: str | None = None
    finished_at: datetime | None = None
    key_id: str | None = None  # owner-key (#17): the owner public key the data key is wrapped to
    wrapped_key: str | None = None  # owner-key: the backup's data key, wrapped (never the clear key)
    error: str | None = None
    manifest_uri: str | None = None
    updated_at: datetime | None = None
    scheduled_for: datetime | None = None  # the schedule slot of the run that made it; started_at is real time

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BackupKind(self.kind))
        object.__setattr__(self, "status", BackupStatus(self.status))

    @property
    def is_full(self) -> bool:
        return self.kind is BackupKind.FULL

    @property
    def succeeded(self) -> bool:
        return self.status is BackupStatus.SUCCEEDED

    @property
    def verify_failed(self) -> bool:
        return not self.verified and self.verified_at is not None

    @property
    def when(self) -> datetime:
        """The backup's point in time: backup_time once known, else when it started."""
        return self.backup_time or self.started_at

    def sort_key(self) -> tuple[int, datetime, str]:
        """Oldest first by backup_ts; backups without one (running, failed) after, by start time."""
        return (
            self.backup_ts if self.backup_ts is not None else 1 << 63,
            self.started_at,
            self.id,
        )


def chain_to(by_id: Mapping[str, BackupRecord], tip: BackupRecord) -> list[BackupRecord]:
    """``[full, incr1, …, tip]``: ``tip`` and its bases back to the full. Raises ``BrokenChainError``."""
    links = [tip]
    seen = {tip.id}
    current = tip
    while current.kind is BackupKind.INCREMENTAL:
        base_id = current.base_backup_id
        if base_id is None:
            raise BrokenChainError(f"{current.id}: an incremental backup without base_backup_id")
        base = by_id.get(base_id)
        if base is None:
            raise BrokenChainError(f"{current.id}: its base {base_id!r} is not in the catalog")
        if base.id in seen:
            raise BrokenChainError(f"{current.id}: the chain loops back to {base.id!r}")
        if base.cluster != tip.cluster:
            raise BrokenChainError(f"{current.id}: its base {base.id!r} belongs to cluster {base.cluster!r}")
        links.append(base)
        seen.add(base.id)
        current = base
    links.reverse()
    return links


def restorable_chain(by_id: Mapping[str, BackupRecord], tip: BackupRecord) -> list[BackupRecord] | None:
    """The chain to ``tip`` when every link succeeded (so a restore to ``tip`` can work), else None."""
    try:
        links = chain_to(by_id, tip)
    except BrokenChainError:
        return None
    if all(b.succeeded and b.backup_ts is not None for b in links):
        return links
    return None


def index(backups: Iterable[BackupRecord]) -> dict[str, BackupRecord]:
    return {b.id: b for b in backups}


# ------------------------------------------------------------------------------------- log backup (PITR)

LOG_CHECK_STATUSES = frozenset({"NORMAL", "PAUSE", "ERROR", "ABSENT", "UNKNOWN"})
ALERT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ALERT_SEVERITIES = frozenset({"critical", "warning"})
TASK_NAME_MAX = 128


def _tso_utc(ts: int | None) -> datetime | None:
    return None if ts is None or ts <= 0 else tso.to_datetime(ts)


@dataclass(frozen=True)
class LogBackupCheck:
    """One check of a cluster's log backup: a row of ``log_backup_checks``, the RPO history.

    ``status`` is the task's state as read (``NORMAL``, ``PAUSE``, ``ERROR``), ``ABSENT`` (no task) or
    ``UNKNOWN`` (BR printed no status); ``lag_seconds`` is check time minus the global checkpoint;
    ``log_min_ts``/``log_max_ts`` the log range (``br log metadata``, else the task's start and
    checkpoint) and ``window_*`` the PITR window computed from it; ``findings`` the problems found
    (``{"key", "severity", "message"}``). ``id`` is set by the catalog.
    """

    cluster: str
    checked_at: datetime
    status: str
    healthy: bool
    task_name: str | None = None
    status_source: str | None = None  # json | text | json+text
    checkpoint_ts: int | None = None
    lag_seconds: float | None = None
    log_min_ts: int | None = None
    log_max_ts: int | None = None
    log_range_source: str | None = None  # metadata (br log metadata) | status (the task's start, checkpoint)
    window_start_ts: int | None = None
    window_end_ts: int | None = None
    window_base_backup_id: str | None = None
    gc_safe_point: datetime | None = None
    gc_hold_seconds: float | None = None
    findings: tuple[Mapping[str, str], ...] = ()
    dag_id: str | None = None
    run_id: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checked_at", utc(self.checked_at, "checked_at"))
        object.__setattr__(self, "gc_safe_point", _opt_utc(self.gc_safe_point, "gc_safe_point"))
        object.__setattr__(self, "findings", tuple(dict(f) for f in self.findings))
        if self.status not in LOG_CHECK_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(sorted(LOG_CHECK_STATUSES))}")
        _check_len(self.cluster, CLUSTER_MAX, "cluster")
        _check_len(self.task_name, TASK_NAME_MAX, "task_name")
        _check_len(self.window_base_backup_id, ID_MAX, "window_base_backup_id")
        _check_len(self.dag_id, NAME_MAX, "dag_id")
        _check_len(self.run_id, NAME_MAX, "run_id")
        for name in ("checkpoint_ts", "log_min_ts", "log_max_ts", "window_start_ts", "window_end_ts"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive TSO, not {value}")

    @property
    def checkpoint_time(self) -> datetime | None:
        return _tso_utc(self.checkpoint_ts)

    @property
    def window_start_time(self) -> datetime | None:
        return _tso_utc(self.window_start_ts)

    @property
    def window_end_time(self) -> datetime | None:
        return _tso_utc(self.window_end_ts)

    @property
    def finding_keys(self) -> tuple[str, ...]:
        return tuple(str(f.get("key")) for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe: times as ISO 8601 UTC, TSOs with their UTC times."""
        return {
            "id": self.id,
            "cluster": self.cluster,
            "checked_at": iso_or_none(self.checked_at),
            "task_name": self.task_name,
            "status": self.status,
            "status_source": self.status_source,
            "healthy": self.healthy,
            "checkpoint_ts": self.checkpoint_ts,
            "checkpoint_time": iso_or_none(self.checkpoint_time),
            "lag_seconds": self.lag_seconds,
            "log_min_ts": self.log_min_ts,
            "log_max_ts": self.log_max_ts,
            "log_range_source": self.log_range_source,
            "window_start_ts": self.window_start_ts,
            "window_start_time": iso_or_none(self.window_start_time),
            "window_end_ts": self.window_end_ts,
            "window_end_time": iso_or_none(self.window_end_time),
            "window_base_backup_id": self.window_base_backup_id,
            "gc_safe_point": iso_or_none(self.gc_safe_point),
            "gc_hold_seconds": self.gc_hold_seconds,
            "findings": [dict(f) for f in self.findings],
            "dag_id": self.dag_id,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class AlertState:
    """De-duplication state of one alert of one cluster: a row of ``log_backup_alerts``.

    One row per (cluster, key), reused episode after episode: an episode opens when the problem is
    first seen (``first_seen``, ``episodes`` + 1, ``resolved_at`` cleared) and closes when a check no
    longer finds it (``resolved_at``). ``notified_at`` is when the episode was last notified (``None``:
    not yet), ``recovery_notified_at`` when its recovery was. The history of episodes is in ``events``.
    """

    cluster: str
    key: str
    severity: str
    message: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int = 1  # checks that found it in this episode
    episodes: int = 1
    notified_at: datetime | None = None
    notify_count: int = 0  # notifications of this episode (the first one and reminders)
    resolved_at: datetime | None = None
    recovery_notified_at: datetime | None = None
    details: Mapping[str, object] | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not ALERT_KEY.match(self.key):
            raise ValueError(f"alert key {self.key!r}: lower-case letters, digits and '_', at most 64 characters")
        if self.severity not in ALERT_SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(sorted(ALERT_SEVERITIES))}")
        _check_len(self.cluster, CLUSTER_MAX, "cluster")
        for name in ("first_seen", "last_seen", "notified_at", "resolved_at", "recovery_notified_at", "updated_at"):
            object.__setattr__(self, name, _opt_utc(getattr(self, name), name))

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


# ------------------------------------------------------------------------------ restore drills (#6)

DRILL_MODES = frozenset({"snapshot", "pitr"})


class DrillStatus(StrEnum):
    RUNNING = "running"  # from prepare_scratch until record_drill: the drill holds its scratch target
    PASSED = "passed"
    FAILED = "failed"


def make_drill_id(cluster: str, when: datetime, *, dag_id: str | None = None, run_id: str | None = None) -> str:
    """``<cluster>-drill-<yyyymmddTHHMMSSZ>-<hash>``: the same for every try of one DAG run (as backup ids)."""
    return _run_scoped_id(cluster, "drill", when, dag_id, run_id)


@dataclass(frozen=True)
class DrillRecord:
    """One restore drill: a row of ``drills`` (its retries share the row).

    ``restore_ts`` is the restore point (a snapshot chain's last BackupTS, or the PITR ``--restored-ts``),
    ``backups_used`` the backups restored, in order. RTO figures: ``restore_seconds`` (the BR restores,
    first start to last end) and ``validation_seconds`` (schema, content and expectations). ``mismatches``
    counts what differed (missing or different tables, chunks whose fingerprints differ, failed
    expectations are counted by ``gx_*``); ``details`` holds the per-table report.
    """

    id: str
    cluster: str
    target: str
    mode: str
    status: DrillStatus
    started_at: datetime
    restore_ts: int | None = None
    point_reason: str | None = None
    point_seed: int | None = None
    backups_used: tuple[str, ...] = ()
    restore_seconds: float | None = None
    validation_seconds: float | None = None
    tables_checked: int | None = None
    rows_checked: int | None = None
    mismatches: int | None = None
    gx_evaluated: int | None = None
    gx_success_ratio: float | None = None
    data_docs_uri: str | None = None
    report_uri: str | None = None
    scratch_dropped: bool | None = None
    error: str | None = None
    details: Mapping[str, object] | None = None
    dag_id: str | None = None
    run_id: str | None = None
    try_number: int = 1
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    basis: Mapping[str, object] | None = None  # what the verdict stood on: versions, encryption, storage (#16)

    def __post_init__(self) -> None:
        check_backup_id(self.id)
        object.__setattr__(self, "status", DrillStatus(self.status))
        object.__setattr__(self, "backups_used", tuple(self.backups_used))
        for name in ("started_at", "finished_at", "updated_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value, name))
        if self.mode not in DRILL_MODES:
            raise ValueError(f"drill mode {self.mode!r} is not one of {', '.join(sorted(DRILL_MODES))}")
        _check_len(self.cluster, CLUSTER_MAX, "cluster")
        _check_len(self.target, CLUSTER_MAX, "target")
        _check_len(self.dag_id, NAME_MAX, "dag_id")
        _check_len(self.run_id, NAME_MAX, "run_id")
        for uri in (self.data_docs_uri, self.report_uri):
            if uri is not None:
                check_storage_uri(uri)
        if self.restore_ts is not None and self.restore_ts <= 0:
            raise ValueError(f"restore_ts must be a positive TSO, not {self.restore_ts}")
        if self.gx_success_ratio is not None and not 0.0 <= self.gx_success_ratio <= 1.0:
            raise ValueError(f"gx_success_ratio must be between 0 and 1, not {self.gx_success_ratio}")

    @property
    def restore_time(self) -> datetime | None:
        if self.restore_ts is None:
            return None
        from tidbops import tso  # local: records is imported by everything, tso by few

        return tso.to_datetime(self.restore_ts)

    @property
    def rto_seconds(self) -> float | None:
        """Restore plus validation: how long it took to get the data back and know it is right."""
        if self.restore_seconds is None:
            return None
        return round(self.restore_seconds + (self.validation_seconds or 0.0), 3)

    @property
    def holds_target(self) -> bool:
        return self.status is DrillStatus.RUNNING


# --------------------------------------------------------------------------------- on-demand restores (#7)


class RestoreStatus(StrEnum):
    DRY_RUN = "dry_run"  # the plan was the whole request
    REFUSED = "refused"  # a guardrail refused it: nothing ran
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def make_restore_id(source: str, when: datetime, *, dag_id: str | None = None, run_id: str | None = None) -> str:
    """``<source>-restore-<yyyymmddTHHMMSSZ>-<hash>``: the same for every task and try of one DAG run."""
    return _run_scoped_id(source, "restore", when, dag_id, run_id)


@dataclass(frozen=True)
class RestoreRecord:
    """One on-demand restore request: a row of ``restores`` (the audit of who restored what, and why).

    ``restore_point`` is what the user typed; ``restore_ts`` what it resolved to. ``request`` and
    ``plan`` are the JSON of the request and of the plan (BR command lines redacted). ``requested_by``
    is the Airflow user who triggered the run."""

    id: str
    source: str
    target: str
    status: RestoreStatus
    requested_by: str | None
    reason: str
    requested_at: datetime
    restore_point: str
    restore_ts: int | None = None
    mode: str | None = None
    tables: tuple[str, ...] = ()
    dry_run: bool = True
    validate_after: bool = False
    backups_used: tuple[str, ...] = ()
    request: Mapping[str, object] = field(default_factory=dict)
    plan: Mapping[str, object] | None = None
    restore_seconds: float | None = None
    validation_seconds: float | None = None
    validation_ok: bool | None = None
    rows_checked: int | None = None
    error: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        check_backup_id(self.id)
        object.__setattr__(self, "status", RestoreStatus(self.status))
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "backups_used", tuple(self.backups_used))
        for name in ("requested_at", "finished_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value, name))
        _check_len(self.source, CLUSTER_MAX, "source")
        _check_len(self.target, CLUSTER_MAX, "target")
        _check_len(self.requested_by, NAME_MAX, "requested_by")
        _check_len(self.dag_id, NAME_MAX, "dag_id")
        _check_len(self.run_id, NAME_MAX, "run_id")
        if self.mode is not None and self.mode not in DRILL_MODES:
            raise ValueError(f"restore mode {self.mode!r} is not one of {', '.join(sorted(DRILL_MODES))}")
        if self.restore_ts is not None and self.restore_ts <= 0:
            raise ValueError(f"restore_ts must be a positive TSO, not {self.restore_ts}")

    @property
    def restore_time(self) -> datetime | None:
        if self.restore_ts is None:
            return None
        from tidbops import tso

        return tso.to_datetime(self.restore_ts)

    @property
    def rto_seconds(self) -> float | None:
        """Restore plus validation, when the restore ran."""
        if self.restore_seconds is None:
            return None
        return round(self.restore_seconds + (self.validation_seconds or 0.0), 3)


# ------------------------------------------------------------------------------------ audit events (#13)

SCHEDULE_ACTOR = "schedule"  # a scheduled run did it
SYSTEM_ACTOR = "airflow"  # the platform did it, for no user we know of
EVENT_MESSAGE_MAX = 1000
ACTOR_MAX = NAME_MAX

# What an event is about: the audit's ``category`` filter. The first matching prefix wins.
EVENT_CATEGORIES: tuple[str, ...] = (
    "backup", "verification", "drill", "restore", "alert", "retention", "log", "cluster", "other",
)  # fmt: skip
_CATEGORY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("backup.verified", "verification"),
    ("backup.verify_failed", "verification"),
    ("backup.", "backup"),
    ("drill.", "drill"),
    ("restore.", "restore"),
    ("log_backup.alert_", "alert"),
    ("log_backup.", "log"),
    ("log.", "log"),
    ("retention.", "retention"),
    ("cluster.", "cluster"),
)

# The state a transition leaves its subject in: the audit's ``status`` filter, from the kind's last word.
EVENT_STATUSES: tuple[str, ...] = (
    "running", "succeeded", "failed", "passed", "expired", "deleted", "abandoned",
    "requested", "dry_run", "refused", "open", "notified", "resolved", "info",
)  # fmt: skip
_STATUS_OF_SUFFIX: dict[str, str] = {
    "started": "running",
    "restarted": "running",
    "succeeded": "succeeded",
    "manifest": "succeeded",
    "cataloged": "succeeded",
    "resumed": "succeeded",
    "truncated": "succeeded",
    "run": "succeeded",
    "checked": "succeeded",
    "failed": "failed",
    "verify_failed": "failed",
    "start_failed": "failed",
    "resume_failed": "failed",
    "verified": "passed",
    "passed": "passed",
    "expired": "expired",
    "deleted": "deleted",
    "abandoned": "abandoned",
    "requested": "requested",
    "dry_run": "dry_run",
    "refused": "refused",
    "alert_opened": "open",
    "alert_notified": "notified",
    "alert_recovery_notified": "notified",
    "alert_resolved": "resolved",
}


def event_category(kind: str) -> str:
    """``backup.verified`` → ``verification``, ``log_backup.alert_opened`` → ``alert``, … (else ``other``)."""
    for prefix, category in _CATEGORY_PREFIXES:
        if kind.startswith(prefix):
            return category
    return "other"


def event_status(kind: str) -> str:
    """The status an event of ``kind`` records: ``backup.failed`` → ``failed``; unknown kinds → ``info``."""
    suffix = kind.split(".", 1)[1] if "." in kind else kind
    return _STATUS_OF_SUFFIX.get(suffix, "info")


def actor_from_trigger(triggered_by: str | None) -> str:
    """Who, from a backup's ``triggered_by`` (``manual:dba`` → ``dba``, ``scheduled`` → ``schedule``)."""
    if not triggered_by:
        return SYSTEM_ACTOR
    run_type, _, user = triggered_by.partition(":")
    if user.strip():
        return user.strip()[:ACTOR_MAX]
    return SCHEDULE_ACTOR if run_type.strip() == "scheduled" else SYSTEM_ACTOR


def actor_from_run_id(run_id: str | None) -> str:
    """Who, when only the Airflow run id is known: a ``scheduled__…`` run is the schedule."""
    return SCHEDULE_ACTOR if run_id and run_id.startswith("scheduled__") else SYSTEM_ACTOR


def event_message(text: str) -> str:
    """An event message: one line (redacted, whitespace and line breaks collapsed, escaped), cut short."""
    return one_line(" ".join(redact(text).split()), EVENT_MESSAGE_MAX)
