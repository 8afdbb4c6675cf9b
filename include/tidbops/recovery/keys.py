"""The data keys a restore needs, when its source backs up with owner-held keys (#17).

Each backup of an owner-key cluster has its own data key, kept only wrapped to the owner's public key
(``backups.wrapped_key``, ``tidbops.keys.owner``). A restore (on-demand, a drill, ``tidbops restore``)
unwraps the key of every backup it restores with the owner's private key, from the connection named by
the source's ``restore.owner_key_conn_id``: that connection exists only where restores run. Without it
the restore is refused here, before BR runs, naming the key id it needs; with another owner's key, the
error names both key ids. The clear keys go only into 0600 key files, one per BR run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tidbops.catalog.records import BackupRecord
from tidbops.config import ClusterConfig
from tidbops.keys.logkeys import LogKey, key_for_point, segments, unwrap_log_key
from tidbops.keys.owner import DataKey, OwnerKeyError, WrappedKey, unwrap
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import RestoreStep


class OwnerKeyRefused(RecoveryError):
    """A restore of owner-key backups cannot get their data keys: no private key here, or the wrong one."""


def needs_owner_key(source: ClusterConfig) -> bool:
    enc = source.br.encryption
    return enc is not None and enc.owner_key


def wrapped_keys(
    source: ClusterConfig, steps: Sequence[RestoreStep], records: Mapping[str, BackupRecord | None]
) -> dict[str, WrappedKey]:
    """Each step's backup's wrapped data key, from its catalog row; refused when one has none."""
    found: dict[str, WrappedKey] = {}
    for step in steps:
        rec = records.get(step.backup_id)
        if rec is None:
            raise OwnerKeyRefused(f"backup {step.backup_id} is not in the catalog: its wrapped data key is unknown")
        if rec.key_id is None or rec.wrapped_key is None:
            raise OwnerKeyRefused(
                f"backup {step.backup_id} of owner-key cluster {source.name} has no wrapped data key in the "
                "catalog (taken before owner-key was set?); restore it with the crypter key it was taken with"
            )
        found[step.backup_id] = WrappedKey(key_id=rec.key_id, wrapped=rec.wrapped_key)
    return found


def unwrap_step_keys(
    source: ClusterConfig,
    steps: Sequence[RestoreStep],
    records: Mapping[str, BackupRecord | None],
    private_key: str | None,
    *,
    what: str = "restore",
) -> dict[str, DataKey]:
    """The clear data key of each step's backup (by backup id); ``{}`` when ``source`` is not owner-key.

    ``private_key`` None (the connection is missing here): refused, naming the key id(s) and the
    connection. The wrong private key: refused, naming both key ids.
    """
    if not needs_owner_key(source):
        return {}
    enc = source.br.encryption
    assert enc is not None
    wrapped = wrapped_keys(source, steps, records)
    key_ids = sorted({w.key_id for w in wrapped.values()})
    conn_id = source.restore.owner_key_conn_id
    if private_key is None or not private_key.strip():
        where = (
            f"connection {conn_id!r} (restore.owner_key_conn_id) is not set on this worker"
            if conn_id
            else f"cluster {source.name} names no restore.owner_key_conn_id in the fleet config"
        )
        raise OwnerKeyRefused(
            f"{what} refused before BR ran: the backups of {source.name} ({', '.join(wrapped)}) are encrypted "
            f"with owner-held keys and open only with the private key of key id {', '.join(key_ids)}; {where}"
        )
    keys: dict[str, DataKey] = {}
    for backup_id, w in wrapped.items():
        try:
            keys[backup_id] = unwrap(w, private_key, enc.method, what=f"backup {backup_id}")
        except OwnerKeyError as exc:
            raise OwnerKeyRefused(f"{what} refused before BR ran: {exc}") from None
    return keys


def unwrap_plan_log_key(
    source: ClusterConfig,
    steps: Sequence[RestoreStep],
    restore_ts: int,
    log_keys: Sequence[LogKey],
    private_key: str | None,
    *,
    what: str = "restore",
) -> tuple[LogKey, DataKey] | None:
    """The log key a PITR of an owner-key source needs (``--log.crypter.*``), unwrapped; None when the plan
    is no PITR, the source is not owner-key, or its log predates owner-key log encryption (no log key
    covers anything before the first one). Refused (``OwnerKeyRefused``) before BR when the range crosses a
    log restart, or without the private key (naming the log key and its key id), or with another's."""
    if not needs_owner_key(source) or [s.kind for s in steps] != ["point"]:
        return None
    confirmed = segments(log_keys)
    start_ts = steps[0].backup_ts
    if not confirmed or (confirmed[0].start_ts is not None and restore_ts <= confirmed[0].start_ts):
        return None  # a log started before owner-key log encryption: not encrypted by tidbops
    try:
        key = key_for_point(source.name, confirmed, start_ts=start_ts, restore_ts=restore_ts)
        return key, unwrap_log_key(source, key, private_key, what=what)
    except OwnerKeyError as exc:
        raise OwnerKeyRefused(str(exc) if "refused" in str(exc) else f"{what} refused before BR ran: {exc}") from None
