"""``tidbops-manifest.json``: written next to every successful backup, so storage can prove itself.

A manifest holds the backup's catalog fields (never a secret: the encryption *method*, never the key)
and every file of the backup with its size and SHA-256, paths relative to the backup's own directory.
From manifests alone the catalog can be rebuilt (``rebuild_catalog``), and a backup can be checked
against its manifest without the catalog (``verify_backup``).

Storage layout: ``<storage root>/<cluster>/{full,incr}/<backup id>/`` holds BR's files and the manifest.
The functions here take a ``Storage`` rooted at the backup's own directory, except ``rebuild_catalog``
which takes the storage root.

Imports go one way: the catalog's store (``tidbops.catalog.store``) reads manifests through this module;
this module writes into a catalog only through the two methods ``ManifestCatalog`` names, and never
imports the store.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from importlib import metadata
from typing import Any, Protocol

from tidbops.catalog.errors import CatalogConflictError, CatalogStateError, ManifestError
from tidbops.catalog.records import (
    BACKUP_ID,
    CLUSTER_MAX,
    ID_MAX,
    NAME_MAX,
    SHORT_MAX,
    URI_MAX,
    WRAPPED_KEY_MAX,
    BackupKind,
    BackupRecord,
    BackupStatus,
    check_backup_id,
    check_storage_uri,
    check_wrapped_key,
    utcnow,
)
from tidbops.config import CLUSTER_NAME, MAX_NAME
from tidbops.storage import ObjectExistsError, ObjectNotFoundError, Storage, StorageError
from tidbops.text import shown
from tidbops.timefmt import iso_or_none, utc

MANIFEST_NAME = "tidbops-manifest.json"
MANIFEST_FORMAT = 1
BACKUPMETA = "backupmeta"
_CHUNK = 1 << 20

# The catalog columns a manifest carries (and ``Catalog.upsert_from_manifest`` writes back).
MANIFEST_ROW_FIELDS: tuple[str, ...] = (
    "id",
    "cluster",
    "kind",
    "backup_ts",
    "backup_time",
    "base_backup_id",
    "last_backup_ts",
    "storage_uri",
    "size_bytes",
    "total_kv",
    "br_duration_s",
    "br_version",
    "encryption_method",
    "dag_id",
    "run_id",
    "try_number",
    "triggered_by",
    "started_at",
    "finished_at",
    "key_id",  # owner-key (#17): the owner public key the data key is wrapped to
    "wrapped_key",  # owner-key: the backup's data key, wrapped (never the clear key)
)
_DATETIME_FIELDS = frozenset({"backup_time", "started_at", "finished_at"})
_INT_FIELDS = frozenset({"backup_ts", "last_backup_ts", "size_bytes", "total_kv", "try_number"})
# What a manifest may hold (it comes from storage, which anybody with write access can edit): ranges
# the catalog's columns and BR's own types hold, strings no longer than their column, no control
# characters, relative file paths that stay inside the backup's directory.
INT64_MAX = (1 << 63) - 1
MAX_MANIFEST_BYTES = 256 << 20  # about 2 million files; BR writes one SST per region and CF
_INT_RANGES: dict[str, tuple[int, int, str]] = {
    "backup_ts": (1, (1 << 64) - 1, "a TSO: 1 … 2^64-1"),
    "last_backup_ts": (1, (1 << 64) - 1, "a TSO: 1 … 2^64-1"),
    "size_bytes": (0, INT64_MAX, "0 … 2^63-1"),
    "total_kv": (0, INT64_MAX, "0 … 2^63-1"),
    "try_number": (1, 10_000, "1 … 10000"),
}
MAX_DURATION_S = 10 * 365 * 86400.0
_STR_MAX = {
    "id": ID_MAX, "cluster": CLUSTER_MAX, "storage_uri": URI_MAX, "base_backup_id": ID_MAX, "dag_id": NAME_MAX,
    "run_id": NAME_MAX, "triggered_by": SHORT_MAX, "br_version": SHORT_MAX, "encryption_method": SHORT_MAX,
    "key_id": 32, "wrapped_key": WRAPPED_KEY_MAX,
}  # fmt: skip
_PATH_MAX = 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = frozenset({"id", "cluster", "kind", "backup_ts", "backup_time", "storage_uri", "started_at"})


def backup_path(cluster: str, kind: BackupKind, backup_id: str) -> str:
    """Where a backup lives below the storage root: ``<cluster>/<full|incr>/<id>``."""
    return f"{cluster}/{BackupKind(kind).short}/{check_backup_id(backup_id)}"


def _tool_version() -> str:
    try:
        return f"tidbops {metadata.version('tidbops')}"
    except metadata.PackageNotFoundError:
        return "tidbops"


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative to the backup's directory
    size: int
    sha256: str | None  # None when the manifest was built without hashing


@dataclass(frozen=True)
class Manifest:
    id: str
    cluster: str
    kind: BackupKind
    backup_ts: int
    backup_time: datetime
    storage_uri: str
    started_at: datetime
    files: tuple[ManifestFile, ...]
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
    key_id: str | None = None
    wrapped_key: str | None = None
    format_version: int = MANIFEST_FORMAT
    created_at: datetime | None = None
    tool: str = field(default_factory=_tool_version)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BackupKind(self.kind))
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def same_backup(self, other: Manifest) -> bool:
        """Equal but for when and by what the manifest itself was written."""
        return replace(self, created_at=None, tool="") == replace(other, created_at=None, tool="")

    def to_dict(self) -> dict[str, Any]:
        backup: dict[str, Any] = {}
        for name in MANIFEST_ROW_FIELDS:
            value = getattr(self, name)
            backup[name] = iso_or_none(value, timespec="microseconds") if name in _DATETIME_FIELDS else value
        backup["kind"] = self.kind.value
        return {
            "format_version": self.format_version,
            "created_at": iso_or_none(self.created_at, timespec="microseconds"),
            "tool": self.tool,
            "backup": backup,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest") -> Manifest:
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{source}: {len(text)} bytes; a manifest is at most {MAX_MANIFEST_BYTES} bytes")
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source}: not JSON: {exc}") from None
        except RecursionError:
            raise ManifestError(f"{source}: not a manifest: JSON nested too deeply") from None
        return cls.from_dict(doc, source=source)

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "manifest") -> Manifest:
        if not isinstance(doc, Mapping):
            raise ManifestError(f"{source}: a manifest is a JSON object")
        version = doc.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ManifestError(f"{source}: format_version {shown(version)} is not a manifest format version")
        if version > MANIFEST_FORMAT:
            raise ManifestError(
                f"{source}: format version {version} is newer than this code reads ({MANIFEST_FORMAT}); upgrade tidbops"
            )
        backup = doc.get("backup")
        if not isinstance(backup, Mapping):
            raise ManifestError(f"{source}: 'backup' must be an object")
        values: dict[str, Any] = {}
        for name in MANIFEST_ROW_FIELDS:
            raw = backup.get(name)
            if raw is None:
                if name in _REQUIRED:
                    raise ManifestError(f"{source}: backup.{name} is missing")
                continue
            values[name] = _field(source, name, raw)
        try:
            values["kind"] = BackupKind(values["kind"])
        except ValueError:
            valid = ", ".join(k.value for k in BackupKind)
            raise ManifestError(f"{source}: backup.kind: {shown(values['kind'])} is not one of {valid}") from None
        try:
            check_backup_id(values["id"])
        except ValueError:
            raise ManifestError(f"{source}: backup.id: {shown(values['id'])} is not a backup id") from None
        if ("key_id" in values) != ("wrapped_key" in values):
            raise ManifestError(f"{source}: backup.key_id and backup.wrapped_key go together (owner-key backups)")
        raw_files = doc.get("files")
        if not isinstance(raw_files, list):
            raise ManifestError(f"{source}: 'files' must be a list")
        files = [_file(source, i, f) for i, f in enumerate(raw_files)]
        created = doc.get("created_at")
        return cls(
            **values,
            files=tuple(files),
            format_version=version,
            created_at=_field(source, "created_at", created) if created is not None else None,
            tool=_field(source, "tool", doc.get("tool") or ""),
        )

    @classmethod
    def from_record(
        cls, record: BackupRecord, files: tuple[ManifestFile, ...], *, created_at: datetime | None = None
    ) -> Manifest:
        if record.status is not BackupStatus.SUCCEEDED or record.backup_ts is None or record.backup_time is None:
            raise CatalogStateError(
                f"backup {record.id} is {record.status.value}; a manifest is written for succeeded backups only"
            )
        values = {name: getattr(record, name) for name in MANIFEST_ROW_FIELDS}
        if values["size_bytes"] is None:
            values["size_bytes"] = sum(f.size for f in files)
        return cls(**values, files=files, created_at=created_at)


def _field(source: str, name: str, raw: Any) -> Any:
    """One field of a manifest, checked for type and range; ``ManifestError`` naming it otherwise."""
    where = f"{source}: {name}" if name in ("created_at", "tool") else f"{source}: backup.{name}"
    if name in _DATETIME_FIELDS or name == "created_at":
        if not isinstance(raw, str) or len(raw) > 64:
            raise ManifestError(f"{where} must be an ISO 8601 time string with its zone")
        try:
            value = utc(datetime.fromisoformat(raw), name)
        except (ValueError, OverflowError) as exc:
            raise ManifestError(f"{where}: {shown(raw)} is not a time this catalog holds ({exc})") from None
        if not 1970 <= value.year <= 9998:
            raise ManifestError(f"{where}: {shown(raw)} is not between 1970 and 9998")
        return value
    if name in _INT_FIELDS:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ManifestError(f"{where} must be an integer")
        low, high, valid = _INT_RANGES[name]
        if not low <= raw <= high:
            raise ManifestError(f"{where}: {shown(raw)} is out of range ({valid})")
        return raw
    if name == "br_duration_s":
        if not isinstance(raw, int | float) or isinstance(raw, bool):
            raise ManifestError(f"{where} must be a number")
        if not (math.isfinite(raw) and 0 <= raw <= MAX_DURATION_S):
            raise ManifestError(f"{where}: {shown(raw)} is out of range (0 … {MAX_DURATION_S:.0f} seconds)")
        return float(raw)
    if not isinstance(raw, str):
        raise ManifestError(f"{where} must be a string")
    limit = _STR_MAX.get(name, SHORT_MAX)
    if len(raw) > limit:
        raise ManifestError(f"{where} is {len(raw)} characters long; the catalog keeps at most {limit}")
    if not raw.isprintable():
        raise ManifestError(f"{where}: {shown(raw)} contains a control character")
    if name == "cluster" and not (CLUSTER_NAME.match(raw) and len(raw) <= MAX_NAME):
        raise ManifestError(f"{where}: {shown(raw)} is not a cluster name")
    if name == "base_backup_id" and not BACKUP_ID.match(raw):
        raise ManifestError(f"{where}: {shown(raw)} is not a backup id")
    if name == "storage_uri":
        try:
            check_storage_uri(raw)
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
    if name in ("key_id", "wrapped_key"):
        try:
            check_wrapped_key(raw if name == "key_id" else "age:" + "0" * 16, raw if name == "wrapped_key" else "A")
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
    return raw


def _file(source: str, index: int, raw: Any) -> ManifestFile:
    where = f"{source}: files[{index}]"
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{where} needs path (string), size (integer ≥ 0), sha256")
    path, size, sha = raw.get("path"), raw.get("size"), raw.get("sha256")
    if not isinstance(path, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where} needs path (string), size (integer ≥ 0), sha256")
    if size > INT64_MAX:
        raise ManifestError(f"{where}: size {shown(size)} is out of range (0 … 2^63-1)")
    parts = path.split("/")
    if (
        not path
        or len(path) > _PATH_MAX
        or path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in path
        or not path.isprintable()
    ):
        raise ManifestError(
            f"{where}: path {shown(path)} is not a relative path inside the backup's directory "
            f"(no '..', no leading '/', no control characters, at most {_PATH_MAX} characters)"
        )
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise ManifestError(f"{where}: sha256 must be 64 lower-case hex characters or null")
    return ManifestFile(path, size, sha)


# ------------------------------------------------------------------------------------------- building


def _sha256(storage: Storage, path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with storage.open_read(path) as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def build_manifest(
    record: BackupRecord,
    storage: Storage,
    *,
    hash_files: bool = True,
    workers: int = 8,
    clock: Callable[[], datetime] = utcnow,
) -> Manifest:
    """The manifest of a succeeded backup: every file under ``storage`` (the backup's own directory).

    Refuses a directory without ``backupmeta`` (BR writes it last: without it there is no backup).
    """
    objects = [o for o in storage.list("") if o.path != MANIFEST_NAME]
    if not any(o.path == BACKUPMETA for o in objects):
        raise ManifestError(f"{storage.uri}: no {BACKUPMETA}; this is not a complete BR backup")
    hashes: dict[str, str | None] = {o.path: None for o in objects}
    if hash_files and objects:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tidbops-sha256") as pool:
            results = dict(zip(objects, pool.map(lambda o: _sha256(storage, o.path), objects), strict=True))
        for obj, (digest, size) in results.items():
            if size != obj.size:
                raise ManifestError(f"{storage.uri}/{obj.path} changed while it was hashed ({obj.size} → {size} bytes)")
            hashes[obj.path] = digest
    files = tuple(ManifestFile(o.path, o.size, hashes[o.path]) for o in objects)
    return Manifest.from_record(record, files, created_at=clock())


def write_manifest(storage: Storage, manifest: Manifest) -> str:
    """Write ``tidbops-manifest.json`` into the backup's directory; returns its URI.

    Written once: if a manifest is there already and describes the same backup, nothing is written (a
    retried task); if it describes something else, ``ManifestError``.
    """
    uri = f"{storage.uri}/{MANIFEST_NAME}"
    try:
        storage.write_bytes(MANIFEST_NAME, manifest.to_json().encode("ascii"))
    except ObjectExistsError:
        existing = read_manifest(storage)
        if not existing.same_backup(manifest):
            raise ManifestError(
                f"{uri} exists and describes a different backup ({existing.id}); not overwriting it"
            ) from None
    return uri


def read_manifest(storage: Storage) -> Manifest:
    """The manifest in the backup directory ``storage``."""
    uri = f"{storage.uri}/{MANIFEST_NAME}"
    try:
        data = storage.read_bytes(MANIFEST_NAME)
    except ObjectNotFoundError:
        raise ManifestError(f"{uri} does not exist") from None
    return Manifest.from_json(data, source=uri)


# ------------------------------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class SizeMismatch:
    path: str
    expected: int
    actual: int


@dataclass(frozen=True)
class VerifyResult:
    backup_id: str
    storage_uri: str
    checked_files: int
    checked_bytes: int
    hashes_checked: bool
    backupmeta_present: bool
    missing: tuple[str, ...] = ()
    wrong_size: tuple[SizeMismatch, ...] = ()
    wrong_hash: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()  # in storage, not in the manifest: reported, not a failure

    @property
    def ok(self) -> bool:
        return self.backupmeta_present and not (self.missing or self.wrong_size or self.wrong_hash)

    def summary(self) -> str:
        how = "sizes and sha256" if self.hashes_checked else "sizes"
        if self.ok:
            extra = f"; {len(self.unexpected)} file(s) not in the manifest" if self.unexpected else ""
            return f"ok: {self.checked_files} files, {self.checked_bytes} bytes ({how} checked){extra}"
        problems = []
        if not self.backupmeta_present:
            problems.append(f"no {BACKUPMETA}")
        if self.missing:
            problems.append(f"{len(self.missing)} missing ({_few(self.missing)})")
        if self.wrong_size:
            problems.append(
                f"{len(self.wrong_size)} wrong size ("
                + _few([f"{m.path}: {m.actual} bytes, expected {m.expected}" for m in self.wrong_size])
                + ")"
            )
        if self.wrong_hash:
            problems.append(f"{len(self.wrong_hash)} wrong sha256 ({_few(self.wrong_hash)})")
        return f"FAILED ({how} checked): " + "; ".join(problems)


def _few(items: tuple[str, ...] | list[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", … {len(items) - n} more" if len(items) > n else "")


def verify_backup(
    storage: Storage, manifest: Manifest, *, check_hashes: bool = False, workers: int = 8
) -> VerifyResult:
    """Check the backup directory ``storage`` against its manifest: every file there, the right size
    (and with ``check_hashes``, the right SHA-256), and ``backupmeta`` present."""
    present = {o.path: o.size for o in storage.list("") if o.path != MANIFEST_NAME}
    listed = {f.path for f in manifest.files}
    missing = tuple(f.path for f in manifest.files if f.path not in present)
    wrong_size = tuple(
        SizeMismatch(f.path, f.size, present[f.path])
        for f in manifest.files
        if f.path in present and present[f.path] != f.size
    )
    to_hash = [f for f in manifest.files if f.path in present and present[f.path] == f.size and f.sha256]
    hashes_checked = check_hashes and all(f.sha256 for f in manifest.files)
    wrong_hash: tuple[str, ...] = ()
    if check_hashes and to_hash:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tidbops-verify") as pool:
            digests = list(pool.map(lambda f: _sha256(storage, f.path)[0], to_hash))
        wrong_hash = tuple(f.path for f, d in zip(to_hash, digests, strict=True) if d != f.sha256)
    return VerifyResult(
        backup_id=manifest.id,
        storage_uri=storage.uri,
        checked_files=len(manifest.files),
        checked_bytes=manifest.total_bytes,
        hashes_checked=hashes_checked,
        backupmeta_present=BACKUPMETA in listed and BACKUPMETA in present,
        missing=missing,
        wrong_size=wrong_size,
        wrong_hash=wrong_hash,
        unexpected=tuple(sorted(set(present) - listed)),
    )


# ------------------------------------------------------------------------------------------ rebuilding


class UpsertOutcome(StrEnum):
    """What writing a manifest's backup into the catalog did to its row."""

    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class ManifestCatalog(Protocol):
    """What ``rebuild_catalog`` needs of a catalog (``tidbops.catalog.store.Catalog`` has it)."""

    def upsert_from_manifest(
        self, manifest: Manifest, *, storage_uri: str | None = None, manifest_uri: str | None = None
    ) -> tuple[BackupRecord, UpsertOutcome]: ...

    def mark_verified(self, backup_id: str, ok: bool, reason: str) -> BackupRecord: ...


@dataclass(frozen=True)
class RebuildReport:
    storage_uri: str
    found: int = 0
    inserted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    verified: tuple[str, ...] = ()
    verify_failed: tuple[str, ...] = ()
    without_manifest: tuple[str, ...] = ()  # backup directories with no manifest (running, failed, foreign)
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and not self.verify_failed

    def summary(self) -> str:
        parts = [
            f"{self.found} manifest(s) in {self.storage_uri}",
            f"{len(self.inserted)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
        ]
        if self.verified or self.verify_failed:
            parts.append(f"{len(self.verified)} verified, {len(self.verify_failed)} failed verification")
        if self.without_manifest:
            parts.append(f"{len(self.without_manifest)} director(ies) without a manifest")
        if self.errors:
            parts.append(f"{len(self.errors)} error(s)")
        return ", ".join(parts)


def rebuild_catalog(
    catalog: ManifestCatalog,
    storage_root: Storage,
    cluster: str | None = None,
    *,
    verify: bool = False,
    check_hashes: bool = False,
    skip: Collection[str] = (),
    on_backup: Callable[[str], None] | None = None,
) -> RebuildReport:
    """Walk ``<root>/<cluster>/{full,incr}/*/tidbops-manifest.json`` and upsert a row for each (idempotent).

    A manifest that cannot be read, or that disagrees with where it was found (cluster, kind, id), is
    reported in ``errors`` and not cataloged. With ``verify``, each backup is checked against its
    manifest and the result recorded with ``Catalog.mark_verified``. Backup directories named in
    ``skip`` (ids the caller knows are cataloged from their manifest) are not read at all: a catch-up
    then costs two listings per cluster, not two requests per backup ever kept. ``on_backup`` is called
    with each backup directory (``<cluster>/<kind>/<id>``) as its work begins (a progress bar's step).
    """
    outcomes: dict[UpsertOutcome, list[str]] = {o: [] for o in UpsertOutcome}
    verified: list[str] = []
    verify_failed: list[str] = []
    without: list[str] = []
    errors: list[str] = []
    found = 0
    try:
        clusters = [cluster] if cluster else storage_root.list_dirs("")
    except StorageError as exc:
        return RebuildReport(storage_root.uri, errors=(str(exc),))
    for name in clusters:
        for kind in BackupKind:
            kind_dir = f"{name}/{kind.short}"
            try:
                dirs = storage_root.list_dirs(kind_dir)
            except StorageError as exc:
                errors.append(str(exc))
                continue
            for backup_dir in dirs:
                if backup_dir in skip:
                    continue
                where = f"{kind_dir}/{backup_dir}"
                if on_backup is not None:
                    on_backup(where)
                try:
                    sub = storage_root.child(where)
                    if not sub.exists(MANIFEST_NAME):
                        without.append(where)
                        continue
                    found += 1
                    manifest = read_manifest(sub)
                except (StorageError, ManifestError) as exc:
                    errors.append(str(exc))
                    continue
                if (manifest.cluster, manifest.kind, manifest.id) != (name, kind, backup_dir):
                    errors.append(
                        f"{sub.uri}/{MANIFEST_NAME}: describes {manifest.kind.value} backup {manifest.id} of "
                        f"cluster {manifest.cluster!r}, but lies in {where}; not cataloged"
                    )
                    continue
                try:
                    record, outcome = catalog.upsert_from_manifest(
                        manifest, storage_uri=sub.uri, manifest_uri=f"{sub.uri}/{MANIFEST_NAME}"
                    )
                except CatalogConflictError as exc:
                    errors.append(str(exc))
                    continue
                outcomes[outcome].append(manifest.id)
                if verify and record.status is BackupStatus.SUCCEEDED:
                    try:
                        result = verify_backup(sub, manifest, check_hashes=check_hashes)
                    except StorageError as exc:
                        errors.append(f"{manifest.id}: cannot verify: {exc}")
                        continue
                    catalog.mark_verified(manifest.id, result.ok, result.summary())
                    (verified if result.ok else verify_failed).append(manifest.id)
    return RebuildReport(
        storage_uri=storage_root.uri,
        found=found,
        inserted=tuple(outcomes[UpsertOutcome.INSERTED]),
        updated=tuple(outcomes[UpsertOutcome.UPDATED]),
        unchanged=tuple(outcomes[UpsertOutcome.UNCHANGED]),
        verified=tuple(verified),
        verify_failed=tuple(verify_failed),
        without_manifest=tuple(without),
        errors=tuple(errors),
    )
