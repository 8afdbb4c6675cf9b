"""Log-backup keys of owner-key clusters: a fresh data key at every ``br log start``, stored only wrapped,
and the key segments a PITR restore must stay inside (#17).

BR v8.4+ encrypts log backup with a plaintext data key given at ``br log start`` (``--log.crypter.method``
and ``--log.crypter.key-file``; ``task/common.go``, ``parseLogBackupCipherInfo``). BR puts that key into
the task's definition in PD (``task/stream.go``, ``generateSecurityConfig``:
``StreamBackupTaskSecurityConfig.PlaintextDataKey``), where TiKV reads it to encrypt every log file, for the
whole life of the task: BR's own comment calls it "not recommended in a serious environment since data key
is stored in PD in plaintext". So the key of a log task cannot rotate while the task runs. tidbops gives
each start (the first, and each restart by the log check) a **fresh** key, wrapped to the owner's public key
like a snapshot backup's (``tidbops.keys.owner``), catalogued and written next to the log data (a small
manifest under ``tidbops-log-keys/``, wrapped only) **before** BR starts, so a retried or crashed start
never leaves log files whose key is lost.

A key encrypts the log files of one **segment**: from the task's start TS (``start_ts``, the TS BR chose:
the current TS on a first start, the storage's log checkpoint on a restart) to the next start's
(``end_ts``; None for the current key). ``br restore point`` takes one ``--log.crypter`` key, so a PITR
must read the log of one segment only: its full backup at or after the segment's start, its point at or
before the segment's end (``key_for_point``). The restorable window of such a cluster is the current
segment's (``restrict_window``); older segments stay restorable from a full backup inside them (the window's
notes list them).

Pure: no SQL, no BR, no Airflow.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tidbops.keys.owner import DataKey, OwnerKeyError, WrappedKey, backup_key, unwrap
from tidbops.timefmt import show_tso

if TYPE_CHECKING:
    from tidbops.config import ClusterConfig
    from tidbops.pitr import PitrWindow

LOG_KEYS_DIR = "tidbops-log-keys"
MANIFEST_KIND = "tidbops-log-key"


class LogKeyError(OwnerKeyError):
    """A PITR of an owner-key cluster cannot get one log key for its whole range (or none is known)."""


@dataclass(frozen=True)
class LogKey:
    """One log task start's data key, wrapped to the owner's public key, and the segment it encrypts."""

    id: str
    cluster: str
    task_name: str
    storage_uri: str
    method: str
    key_id: str  # the owner public key's id (``age:…``) the data key is wrapped to
    wrapped_key: str  # base64 of the age file; never the clear key
    created_at: datetime
    start_ts: int | None = None  # the task's start TS as BR chose it; None: BR not known to have started
    end_ts: int | None = None  # the next start's TS; None: the current key

    @property
    def wrapped(self) -> WrappedKey:
        return WrappedKey(key_id=self.key_id, wrapped=self.wrapped_key)

    @property
    def confirmed(self) -> bool:
        return self.start_ts is not None

    def covers(self, start_ts: int, restore_ts: int) -> bool:
        """Whether the log a PITR reads, from ``start_ts`` (its full backup) to ``restore_ts``, is all
        encrypted with this key."""
        if self.start_ts is None or not self.start_ts <= start_ts <= restore_ts:
            return False
        return self.end_ts is None or restore_ts <= self.end_ts

    def span(self) -> str:
        """The segment in words: ``from <TS> to <TS or 'now (the current key)'>``."""
        start = show_tso(self.start_ts) if self.start_ts is not None else "(start not confirmed)"
        end = show_tso(self.end_ts) if self.end_ts is not None else "the log checkpoint (the current key)"
        return f"from {start} to {end}"

    def manifest_name(self) -> str:
        """Where the key's manifest lives, relative to the log storage."""
        return f"{LOG_KEYS_DIR}/{self.id}.json"

    def to_manifest(self) -> bytes:
        """The manifest written next to the log data: the wrapped key and what it covers, no clear key."""
        doc = {
            "kind": MANIFEST_KIND,
            "id": self.id,
            "cluster": self.cluster,
            "task_name": self.task_name,
            "method": self.method,
            "wrapped_key": self.wrapped.to_dict(),
            "created_at": self.created_at.isoformat(),
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode("ascii")

    @classmethod
    def from_manifest(cls, data: bytes, storage_uri: str) -> LogKey:
        try:
            doc = json.loads(data)
        except ValueError:
            raise OwnerKeyError("a log key manifest is not JSON") from None
        if not isinstance(doc, dict) or doc.get("kind") != MANIFEST_KIND:
            raise OwnerKeyError(f"not a {MANIFEST_KIND} manifest")
        wrapped = WrappedKey.from_dict(doc.get("wrapped_key"))
        return cls(
            id=str(doc["id"]),
            cluster=str(doc["cluster"]),
            task_name=str(doc["task_name"]),
            storage_uri=storage_uri,
            method=str(doc["method"]),
            key_id=wrapped.key_id,
            wrapped_key=wrapped.wrapped,
            created_at=datetime.fromisoformat(str(doc["created_at"])),
            start_ts=_opt_int(doc.get("start_ts")),
            end_ts=_opt_int(doc.get("end_ts")),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def new_log_key(cluster: ClusterConfig, *, task_name: str, now: datetime) -> tuple[DataKey, LogKey] | None:
    """A fresh data key for one ``br log start`` of an owner-key cluster, and its catalog/manifest record
    (wrapped to the owner's public key); None for any other cluster."""
    made = backup_key(cluster)
    if made is None:
        return None
    key, wrapped = made
    key_row = LogKey(
        id=f"logkey-{cluster.name}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}",
        cluster=cluster.name,
        task_name=task_name,
        storage_uri=cluster.log_storage_uri,
        method=key.method,
        key_id=wrapped.key_id,
        wrapped_key=wrapped.wrapped,
        created_at=now,
    )
    return key, key_row


def segments(keys: Iterable[LogKey]) -> list[LogKey]:
    """The confirmed keys (BR started with them), oldest segment first."""
    return sorted((k for k in keys if k.start_ts is not None), key=lambda k: (k.start_ts or 0, k.id))


def close_segments(keys: Sequence[LogKey], confirmed: LogKey) -> list[LogKey]:
    """The keys whose segment ends where ``confirmed`` starts: every other confirmed key still open
    (``end_ts`` None) that started before it, of the same cluster."""
    assert confirmed.start_ts is not None
    return [
        replace(k, end_ts=confirmed.start_ts)
        for k in keys
        if k.id != confirmed.id
        and k.cluster == confirmed.cluster
        and k.start_ts is not None
        and k.end_ts is None
        and k.start_ts <= confirmed.start_ts
    ]


def windows_text(keys: Iterable[LogKey]) -> str:
    segs = segments(keys)
    if not segs:
        return "no log key is confirmed yet (no log task was started with one)"
    return "; ".join(f"log key {k.id} {k.span()}" for k in segs)


def key_for_point(cluster: str, keys: Sequence[LogKey], *, start_ts: int, restore_ts: int) -> LogKey:
    """The one log key a PITR from ``start_ts`` (its full backup's BackupTS) to ``restore_ts`` needs.

    Refused (``LogKeyError``) when the range crosses a log restart (two keys: ``br restore point`` takes
    one) or no key covers it; the message says which ranges are restorable and from what.
    """
    for key in segments(keys):
        if key.covers(start_ts, restore_ts):
            return key
    holder = next(
        (k for k in segments(keys) if k.start_ts is not None and k.start_ts <= restore_ts and
         (k.end_ts is None or restore_ts <= k.end_ts)),
        None,
    )  # fmt: skip
    if holder is not None and holder.start_ts is not None and start_ts < holder.start_ts:
        raise LogKeyError(
            f"PITR of {cluster} to {show_tso(restore_ts)} refused: its log from {show_tso(start_ts)} (the full "
            f"backup) crosses a log restart at {show_tso(holder.start_ts)}, where the log key rotated, and "
            f"br restore point takes one log key. Restorable: a point of log key {holder.id} "
            f"({holder.span()}) from a full backup taken at or after {show_tso(holder.start_ts)}; "
            f"the log key segments: {windows_text(keys)}"
        )
    raise LogKeyError(
        f"PITR of {cluster} to {show_tso(restore_ts)} refused: no log key covers the log from "
        f"{show_tso(start_ts)} to {show_tso(restore_ts)}; the log key segments: {windows_text(keys)}"
    )


def unwrap_log_key(source: ClusterConfig, key: LogKey, private_key: str | None, *, what: str) -> DataKey:
    """The clear data key of ``key`` with the owner's private key; refused before BR, naming the log key and
    its key id, when there is no private key here (or another owner's)."""
    conn_id = source.restore.owner_key_conn_id
    if private_key is None or not private_key.strip():
        where = (
            f"connection {conn_id!r} (restore.owner_key_conn_id) is not set on this worker"
            if conn_id
            else f"cluster {source.name} names no restore.owner_key_conn_id in the fleet config"
        )
        raise LogKeyError(
            f"{what} refused before BR ran: the log backup of {source.name} is encrypted with log key {key.id} "
            f"({key.span()}), which opens only with the private key of key id {key.key_id}; {where}"
        )
    try:
        return unwrap(key.wrapped, private_key, key.method, what=f"log key {key.id}")
    except OwnerKeyError as exc:
        raise LogKeyError(f"{what} refused before BR ran: {exc}") from None


def restrict_window(window: PitrWindow, keys: Sequence[LogKey]) -> PitrWindow:
    """An owner-key cluster's PITR window cut to one log key segment: the current one (where the log
    checkpoint is), from its first full backup; the older segments' restorable ranges become notes."""
    if not window.exists or window.log is None or window.end_ts is None:
        return window
    segs = segments(keys)
    if not segs:
        return window  # no log key (a log started before owner-key log encryption, or another cluster)
    end = window.end_ts
    current = next((k for k in reversed(segs) if k.start_ts is not None and k.start_ts <= end), None)
    notes = list(window.notes)
    older = [k for k in segs if current is None or (k.start_ts or 0) < (current.start_ts or 0)]
    for k in older:
        inside = [b for b in window.bases if k.covers(b.backup_ts, b.backup_ts)]
        if inside:
            notes.append(
                f"log key {k.id} ({k.span()}): restorable from full backup {inside[0].backup_id} "
                f"({show_tso(inside[0].backup_ts)}) to its end (a PITR cannot cross a log key rotation)"
            )
    if current is None or current.start_ts is None:
        reason = (
            "no PITR window: the log of this owner-key cluster has no confirmed log key "
            f"({windows_text(keys)}); it is encrypted with a key tidbops does not know"
        )
        return replace(window, start_ts=None, end_ts=None, base=None, bases=(), reason=reason, notes=tuple(notes))
    seg_start = current.start_ts
    bases = tuple(b for b in window.bases if seg_start <= b.backup_ts <= end)
    if not bases:
        reason = (
            f"no PITR window: the log key rotated at {show_tso(seg_start)} (a log restart, log key {current.id}) "
            "and no full backup was taken since; a PITR cannot cross a log key rotation. Take a full backup "
            "to start one"
        )
        return replace(window, start_ts=None, end_ts=None, base=None, bases=(), reason=reason, notes=tuple(notes))
    base = bases[0]
    reason = (
        f"PITR from {show_tso(base.backup_ts)} (full backup {base.backup_id}) to {show_tso(end)} (log checkpoint), "
        f"inside log key {current.id} (the log restarted at {show_tso(seg_start)})"
    )
    return replace(window, start_ts=base.backup_ts, base=base, bases=bases, reason=reason, notes=tuple(notes))
