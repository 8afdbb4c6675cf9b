"""``tidbops keys rewrap``: every retained backup's data key wrapped to the owner's new public key (#17).

Rotation without touching data: each backup keeps its own data key (BR's files are not re-encrypted);
only its wrapped form changes, in the backup's manifest and in the catalog (``Catalog.rewrap_key``,
audited as ``backup.key_rewrapped``). The old private key is needed once, to open each key.

Owner-key log keys (one per ``br log start``, ``tidbops.keys.logkeys``) are rewrapped the same way: their
manifest beside the log, then their ``log_keys`` row (``log_backup.key_rewrapped``).

The order makes rotation safe: the fleet config gets the new public key first (``owner_public_key``), so
every backup from then on is wrapped to it at once; then ``rewrap`` moves the older ones over. A backup
is rewritten manifest first, catalog second; one already on the new key is left as it is, so a rewrap
that stopped half way is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tidbops.catalog.logkeys import list_log_keys, rewrap_log_key
from tidbops.catalog.manifest import MANIFEST_NAME, Manifest, read_manifest
from tidbops.catalog.records import BackupRecord, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.keys.owner import OwnerKeyError, WrappedKey, key_id, key_id_of_private, rewrap
from tidbops.storage import Storage

OpenStorage = Callable[[str], Storage]


@dataclass
class RewrapReport:
    cluster: str
    from_key_id: str
    to_key_id: str
    rewrapped: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # on the new key already
    errors: list[str] = field(default_factory=list)
    log_keys_rewrapped: list[str] = field(default_factory=list)  # owner-key log keys (tidbops.keys.logkeys)
    log_keys_already: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = (
            f"{self.cluster}: {len(self.rewrapped)} backup(s) rewrapped from key id {self.from_key_id} to "
            f"{self.to_key_id}, {len(self.already)} on it already, {len(self.errors)} error(s)"
        )
        if self.log_keys_rewrapped or self.log_keys_already:
            text += (
                f"; log keys: {len(self.log_keys_rewrapped)} rewrapped, {len(self.log_keys_already)} on it already"
            )
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "from_key_id": self.from_key_id,
            "to_key_id": self.to_key_id,
            "rewrapped": self.rewrapped,
            "already": self.already,
            "errors": self.errors,
            "log_keys_rewrapped": self.log_keys_rewrapped,
            "log_keys_already": self.log_keys_already,
            "ok": self.ok,
        }


def retained_owner_key_backups(catalog: Catalog, cluster: str) -> list[BackupRecord]:
    """The cluster's backups whose files are still there and that hold a wrapped data key."""
    return [
        b
        for b in catalog.list_backups(cluster)
        if b.status is not BackupStatus.DELETED and b.key_id is not None and b.wrapped_key is not None
    ]


def _rewrite_manifest(storage: Storage, backup: BackupRecord, new: WrappedKey) -> None:
    """The manifest, if the backup has one, with the new wrapped key (overwritten in place)."""
    if not storage.exists(MANIFEST_NAME):
        return  # a running/failed backup has none yet; its record step builds it from the catalog row
    manifest: Manifest = read_manifest(storage)
    if manifest.id != backup.id:
        raise OwnerKeyError(f"{storage.uri}/{MANIFEST_NAME} describes backup {manifest.id}, not {backup.id}")
    if manifest.key_id == new.key_id and manifest.wrapped_key is not None:
        return  # rewritten by an earlier run that stopped before the catalog
    updated = replace(manifest, key_id=new.key_id, wrapped_key=new.wrapped)
    storage.write_bytes(MANIFEST_NAME, updated.to_json().encode("ascii"), overwrite=True)


def rewrap_cluster(
    catalog: Catalog,
    cluster: ClusterConfig,
    *,
    private_key: str,
    new_public_key: str,
    open_storage: OpenStorage,
    actor: str | None = None,
) -> RewrapReport:
    """Rewrap every retained backup of ``cluster`` from the key of ``private_key`` to ``new_public_key``."""
    enc = cluster.br.encryption
    if enc is None or not enc.owner_key:
        raise OwnerKeyError(f"cluster {cluster.name} does not back up with owner-held keys (br.encryption.mode)")
    old_id, new_id = key_id_of_private(private_key), key_id(new_public_key)
    if enc.owner_public_key is None or key_id(enc.owner_public_key) != new_id:
        raise OwnerKeyError(
            f"cluster {cluster.name}: set br.encryption.owner_public_key to the new public key (key id {new_id}) in "
            "the fleet config first, so new backups use it at once; then rewrap the older ones"
        )
    if old_id == new_id:
        raise OwnerKeyError(f"the private key given is of key id {new_id}, the new key; give the old one (--from-key)")
    report = RewrapReport(cluster.name, old_id, new_id)
    for backup in retained_owner_key_backups(catalog, cluster.name):
        assert backup.key_id is not None and backup.wrapped_key is not None
        if backup.key_id == new_id:
            report.already.append(backup.id)
            continue
        if backup.key_id != old_id:
            report.errors.append(
                f"{backup.id}: wrapped for key id {backup.key_id}, neither the old key ({old_id}) nor the new one"
            )
            continue
        try:
            new = rewrap(
                WrappedKey(key_id=backup.key_id, wrapped=backup.wrapped_key),
                private_key,
                enc.method,
                new_public_key,
                what=f"backup {backup.id}",
            )
            _rewrite_manifest(open_storage(backup.storage_uri), backup, new)
            catalog.rewrap_key(backup.id, key_id=new.key_id, wrapped_key=new.wrapped, expect_key_id=old_id, actor=actor)
        except Exception as exc:  # one backup's problem (storage, a damaged key) never stops the others
            report.errors.append(f"{backup.id}: {type(exc).__name__}: {exc}")
            continue
        report.rewrapped.append(backup.id)
    _rewrap_log_keys(catalog, cluster, report, private_key, new_public_key, open_storage, actor)
    return report


def _rewrap_log_keys(
    catalog: Catalog,
    cluster: ClusterConfig,
    report: RewrapReport,
    private_key: str,
    new_public_key: str,
    open_storage: OpenStorage,
    actor: str | None,
) -> None:
    """The cluster's log keys (one per owner-key ``br log start``) the same way: the manifest beside the
    log first, then the catalog row (``log_backup.key_rewrapped``); the log files are untouched."""
    for key in list_log_keys(catalog, cluster.name):
        if key.key_id == report.to_key_id:
            report.log_keys_already.append(key.id)
            continue
        if key.key_id != report.from_key_id:
            report.errors.append(
                f"log key {key.id}: wrapped for key id {key.key_id}, neither the old key ({report.from_key_id}) "
                "nor the new one"
            )
            continue
        try:
            new = rewrap(key.wrapped, private_key, key.method, new_public_key, what=f"log key {key.id}")
            moved = replace(key, key_id=new.key_id, wrapped_key=new.wrapped)
            open_storage(key.storage_uri).write_bytes(key.manifest_name(), moved.to_manifest(), overwrite=True)
            rewrap_log_key(
                catalog, key.id, key_id=new.key_id, wrapped_key=new.wrapped, expect_key_id=key.key_id, actor=actor
            )
        except Exception as exc:  # one key's problem never stops the others
            report.errors.append(f"log key {key.id}: {type(exc).__name__}: {exc}")
            continue
        report.log_keys_rewrapped.append(key.id)
