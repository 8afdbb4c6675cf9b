"""The catalog's plain data: backup records, their kinds and states, ids, and chains.

Pure: no SQL, no storage. Every datetime here is timezone-aware UTC; naive datetimes are refused at the
edges (the database stores naive UTC, ``store`` converts).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tidbops.catalog.errors import BrokenChainError

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


def utc(dt: datetime, what: str = "datetime") -> datetime:
    """``dt`` in UTC; a naive datetime is refused (we cannot know what zone it meant)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} {dt.isoformat()} has no time zone; pass an aware datetime (UTC)")
    return dt.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)((?:secret-access-key|access-key|session-token|account-key|sas-token|password|passwd|pwd|"
            r"crypter\.key|encryption-key|aws_secret_access_key|aws_session_token)\s*[=:]\s*)([^\s&,;'\"]+)"
        ),
        r"\1***",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1***@"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), r"\1****************"),
)


def redact_secrets(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``***``."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def summarise_error(text: str) -> str:
    """An error summary fit for the catalog: secrets redacted, at most ``ERROR_MAX`` characters."""
    cleaned = redact_secrets(text.strip())
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
    stamp = utc(when, "when").strftime("%Y%m%dT%H%M%SZ")
    if dag_id is not None and run_id is not None:
        digest = hashlib.sha256(f"{dag_id}\x00{run_id}".encode()).hexdigest()[:8]
    else:
        digest = secrets.token_hex(4)
    backup_id = f"{cluster}-{kind.short}-{stamp}-{digest}".lower()
    check_backup_id(backup_id)
    return backup_id


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        raise ValueError(
            f"{backup_id!r} is not a valid backup id; use lower-case letters, digits, '-' and '_' "
            f"(at most {ID_MAX} characters); it names a storage directory"
        )
    return backup_id


def _check_len(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long; the catalog keeps at most {limit}")


def check_storage_uri(uri: str) -> str:
    """A storage URI fit for the catalog: no query string (credentials), no user info."""
    if "?" in uri or re.search(r"://[^/]*@", uri):
        raise ValueError("a storage URI in the catalog must not carry credentials or query parameters")
    _check_len(uri, URI_MAX, "storage_uri")
    return uri


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
    dag_id: str | None = None
    run_id: str | None = None
    try_number: int = 1
    triggered_by: str | None = None  # a user name, or "schedule"

    def __post_init__(self) -> None:
        check_backup_id(self.id)
        object.__setattr__(self, "kind", BackupKind(self.kind))
        object.__setattr__(self, "started_at", utc(self.started_at, "started_at"))
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
    error: str | None = None
    manifest_uri: str | None = None
    updated_at: datetime | None = None

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
