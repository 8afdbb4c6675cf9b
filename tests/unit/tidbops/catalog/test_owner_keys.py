"""Migration 9 (#17): an owner-key backup's wrapped data key and key id, in the catalog and the manifest;
rewrapping is audited and loses to a concurrent rewrap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyrage import x25519
from sqlalchemy import inspect

from tidbops import tso
from tidbops.catalog import migrations as mig
from tidbops.catalog.errors import CatalogStateError, ManifestError
from tidbops.catalog.manifest import Manifest
from tidbops.catalog.records import BackupKind, NewBackup
from tidbops.catalog.schema import metadata
from tidbops.catalog.store import Catalog
from tidbops.keys import owner

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def pair() -> tuple[str, str]:
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


def start(catalog: Catalog, backup_id: str, wrapped: owner.WrappedKey | None) -> None:
    catalog.start_backup(
        NewBackup(
            id=backup_id,
            cluster="own",
            kind=BackupKind.FULL,
            storage_uri=f"s3://bucket/own/full/{backup_id}",
            started_at=T0,
            encryption_method="aes256-ctr",
            key_id=wrapped.key_id if wrapped else None,
            wrapped_key=wrapped.wrapped if wrapped else None,
        )
    )
    catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(T0), backup_time=T0)


def test_migration_9_is_rerunnable_and_matches_the_schema(catalog: Catalog) -> None:
    assert mig.MIGRATIONS[8].version == 9
    with catalog.engine.begin() as conn:
        mig.MIGRATIONS[8].apply(conn)
        cols = [c["name"] for c in inspect(conn).get_columns("backups")]
    assert cols == [c.name for c in metadata.tables["backups"].columns]
    assert cols[-2:] == ["key_id", "wrapped_key"]


def test_a_version_8_catalog_migrates_keeping_its_rows(tmp_path: Path) -> None:
    old = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert mig.migrate(old.engine, mig.MIGRATIONS[:8]).to_version == 8
    old.close()
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert cat.migrate().to_version == mig.LATEST_VERSION >= 9
    start(cat, "own-full-1", None)
    row = cat.get("own-full-1")
    assert row is not None and row.key_id is None and row.wrapped_key is None
    cat.close()


def test_wrapped_key_is_catalogued_and_in_the_manifest_never_the_clear_key(catalog: Catalog) -> None:
    pub, priv = pair()
    key = owner.new_data_key("aes256-ctr")
    wrapped = owner.wrap(key, pub)
    start(catalog, "own-full-1", wrapped)
    row = catalog.get("own-full-1")
    assert row is not None and row.key_id == owner.key_id(pub) and row.wrapped_key == wrapped.wrapped
    started = [e for e in catalog.list_events(backup_id="own-full-1") if e.kind == "backup.started"]
    assert started[0].details is not None and started[0].details["key_id"] == owner.key_id(pub)
    manifest = Manifest.from_record(row, ())
    text = manifest.to_json()
    assert key.hex not in text and priv not in text
    back = Manifest.from_json(text)
    assert back.key_id == row.key_id and back.wrapped_key == row.wrapped_key
    got = owner.unwrap(owner.WrappedKey(back.key_id or "", back.wrapped_key or ""), priv, "aes256-ctr")
    assert got == key


def test_a_manifest_with_half_a_wrapped_key_or_a_bad_one_is_refused(catalog: Catalog) -> None:
    pub, _ = pair()
    start(catalog, "own-full-1", owner.wrap(owner.new_data_key("aes256-ctr"), pub))
    row = catalog.get("own-full-1")
    assert row is not None
    doc = Manifest.from_record(row, ()).to_dict()
    half = {**doc, "backup": {**doc["backup"], "wrapped_key": None}}
    with pytest.raises(ManifestError, match="go together"):
        Manifest.from_dict(half)
    bad = {**doc, "backup": {**doc["backup"], "key_id": "sha:00"}}
    with pytest.raises(ManifestError, match="key_id"):
        Manifest.from_dict(bad)
    bad = {**doc, "backup": {**doc["backup"], "wrapped_key": "not base64!"}}
    with pytest.raises(ManifestError, match="wrapped_key"):
        Manifest.from_dict(bad)


def test_new_backup_refuses_half_a_wrapped_key() -> None:
    with pytest.raises(ValueError, match="go together"):
        NewBackup(
            id="own-full-1",
            cluster="own",
            kind=BackupKind.FULL,
            storage_uri="s3://bucket/own/full/own-full-1",
            started_at=T0,
            key_id="age:0123456789abcdef",
        )


def test_rewrap_is_audited_and_a_stale_rewrap_loses(catalog: Catalog) -> None:
    old_pub, old_priv = pair()
    new_pub, new_priv = pair()
    key = owner.new_data_key("aes256-ctr")
    w = owner.wrap(key, old_pub)
    start(catalog, "own-full-1", w)
    w2 = owner.rewrap(w, old_priv, "aes256-ctr", new_pub, what="own-full-1")
    rec = catalog.rewrap_key(
        "own-full-1", key_id=w2.key_id, wrapped_key=w2.wrapped, expect_key_id=w.key_id, actor="alice"
    )
    assert rec.key_id == owner.key_id(new_pub)
    assert owner.unwrap(owner.WrappedKey(rec.key_id or "", rec.wrapped_key or ""), new_priv, "aes256-ctr") == key
    ev = [e for e in catalog.list_events(backup_id="own-full-1") if e.kind == "backup.key_rewrapped"]
    assert len(ev) == 1 and ev[0].actor == "alice" and ev[0].status == "succeeded" and ev[0].category == "backup"
    assert ev[0].details == {"from_key_id": w.key_id, "to_key_id": w2.key_id}
    with pytest.raises(CatalogStateError, match="not rewrapped"):
        catalog.rewrap_key("own-full-1", key_id=w.key_id, wrapped_key=w.wrapped, expect_key_id=w.key_id)
    assert catalog.get("own-full-1").key_id == w2.key_id  # type: ignore[union-attr]
