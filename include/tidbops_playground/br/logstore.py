"""The log-backup storage layout (§4.3 of the reference) and its readers.

::

    <root>/backup.lock
    <root>/backupmeta                        JSON: StartVersion = log start-ts, ClusterId, EndVersion = 0,
                                             plus the schemas at start ("Emulator.tables")
    <root>/v1/backupmeta/<016X resolved_ts>-<uuid>.meta   JSON per flush: files with min/max ts, kv counts
    <root>/v1/global_checkpoint/<store_id>.ts             8-byte little-endian uint64
    <root>/v1/<yyyymmdd>/<hh>/<store_id>/<min_ts>-<uuid>.log   the emulator container: change events
    <root>/v1_stream_trancate_safepoint.txt  decimal TSO (written by ``log truncate``)
    <root>/truncating.lock                   only while a truncate runs
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from . import codec
from .common import META_FILE
from .crypter import PLAINTEXT, Cipher
from .errors import BRError, br_error, plain
from .storage import ExternalStorage

META_PREFIX = "v1/backupmeta"
CHECKPOINT_PREFIX = "v1/global_checkpoint"
TRUNCATE_SAFEPOINT_FILE = "v1_stream_trancate_safepoint.txt"
TRUNCATE_LOCK = "truncating.lock"


@dataclass
class LogInfo:
    min_ts: int
    max_ts: int
    cluster_id: int
    meta: dict[str, Any]


def read_log_meta(storage: ExternalStorage) -> dict[str, Any]:
    data = storage.read_file(META_FILE)
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError):
        raise plain("proto: BackupMeta: illegal tag 0 (wire type 0)") from None
    return meta


def get_ts_from_file(storage: ExternalStorage, name: str) -> int:
    if not storage.file_exists(name):
        return 0
    text = storage.read_file(name).decode("utf-8", errors="replace").strip()
    try:
        return int(text)
    except ValueError:
        raise plain(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None


def set_ts_to_file(storage: ExternalStorage, ts: int, name: str) -> None:
    storage.write_file(name, str(ts).encode())


def global_checkpoint(storage: ExternalStorage) -> int:
    best = 0
    for path, _size in storage.walk(CHECKPOINT_PREFIX):
        if not path.endswith(".ts"):
            continue
        buf = storage.read_file(path)
        if len(buf) >= 8:
            best = max(best, struct.unpack("<Q", buf[:8])[0])
    return best


def get_log_range(storage: ExternalStorage) -> LogInfo:
    """``getLogRangeWithStorage``."""
    meta = read_log_meta(storage)
    if int(meta.get("EndVersion", 0)) > 0:
        raise br_error("ErrStorageUnknown", "the storage has been used for full backup")
    start = int(meta.get("StartVersion", 0))
    truncate = get_ts_from_file(storage, TRUNCATE_SAFEPOINT_FILE)
    min_ts = max(start, truncate)
    max_ts = max(min_ts, global_checkpoint(storage))
    return LogInfo(min_ts=min_ts, max_ts=max_ts, cluster_id=int(meta.get("ClusterId", 0)), meta=meta)


def list_metas(storage: ExternalStorage) -> list[tuple[str, dict[str, Any]]]:
    metas: list[tuple[str, dict[str, Any]]] = []
    for path, _size in storage.walk(META_PREFIX):
        if not path.endswith(".meta"):
            continue
        try:
            metas.append((path, json.loads(storage.read_file(path))))
        except ValueError:
            raise br_error("ErrPiTRMalformedMetadata", f"failed to parse {path}") from None
    metas.sort(key=lambda item: int(item[1].get("resolved_ts", 0)))
    return metas


def read_log_file(
    storage: ExternalStorage, path: str, file: dict[str, Any] | None = None, cipher: Cipher = PLAINTEXT
) -> dict[str, Any]:
    """A log file's change events. An encrypted one (``file["encryption"]``, from ``--log.crypter.*`` at
    ``br log start``) opens only with ``cipher``, as BR's ``MetadataHelper.ReadFile`` /
    ``encryption.Manager.Decrypt`` and ``LogFileManager.ReadAllEntries`` do: no key → "need to decrypt data
    but encryption manager not set"; another key → the SHA-256 of what it decrypts to is not the file's
    (``ErrInvalidMetaFile``: "checksum mismatch expect …, got …")."""
    data = storage.read_file(path)
    info = (file or {}).get("encryption")
    if info:
        if not cipher.enabled:
            raise plain("need to decrypt data but encryption manager not set")
        try:
            data = cipher.decrypt(data)
        except ValueError:  # a key of another length than the file's method: AES refuses it
            data = b""
        want = str((file or {}).get("sha256") or "")
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise br_error("ErrInvalidMetaFile", f"checksum mismatch expect {want}, got {got}")
    try:
        return codec.decode_container(data, path)
    except BRError as exc:
        raise exc.annotate(f"failed to read log file {path}") from None
