"""`tidbops keys rewrap` and `tidbops keys id` (#17): every retained backup's data key rewrapped to the new
public key in its manifest and the catalog, audited; the data untouched; the old key no longer opens it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyrage import x25519
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path, build_manifest, read_manifest, write_manifest
from tidbops.catalog.records import BackupKind, BackupStatus, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.cli import app
from tidbops.keys import owner
from tidbops.keys.owner import OwnerKeyError, WrappedKey
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit
runner = CliRunner()


def pair() -> tuple[str, str]:
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


def write_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, public: str) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        f"""
version: 1
defaults:
  storage: {{uri: "local://{tmp_path}/backups"}}
clusters:
  - name: own
    env: dev
    pd: ["127.0.0.1:1"]
    tidb_conn_id: tidb_own
    br: {{encryption: {{method: aes256-ctr, mode: owner-key, owner_public_key: "{public}"}}}}
    restore: {{owner_key_conn_id: owner_key_own}}
  - {{name: plain, env: dev, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_plain}}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/catalog.db"


def key_file(tmp_path: Path, name: str, private: str, mode: int = 0o600) -> Path:
    p = tmp_path / name
    p.write_text(f"# created: 2026-12-07T00:00:00Z\n# public key: x\n{private}\n")
    p.chmod(mode)
    return p


def owner_backups(tmp_path: Path, public: str, n: int = 3) -> dict[str, str]:
    """``n`` succeeded backups of ``own``, each with its own data key wrapped to ``public``, manifests in
    local storage (the last one without a manifest: its record step has not run); id → clear key."""
    catalog = Catalog.from_url(url(tmp_path))
    catalog.migrate()
    clear = {}
    for i in range(n):
        at = datetime.now(UTC) - timedelta(hours=10 - i)
        backup_id = f"own-full-2024010{i}t000000z-1234567{i}"
        where = LocalStorage(tmp_path / "backups").child(backup_path("own", BackupKind.FULL, backup_id))
        key = owner.new_data_key("aes256-ctr")
        wrapped = owner.wrap(key, public)
        catalog.start_backup(
            NewBackup(
                id=backup_id, cluster="own", kind=BackupKind.FULL, storage_uri=where.uri, started_at=at,
                encryption_method="aes256-ctr", key_id=wrapped.key_id, wrapped_key=wrapped.wrapped,
            )
        )  # fmt: skip
        where.write_bytes("backupmeta", b"meta")
        where.write_bytes("store1/1.sst", b"x" * 64)
        record = catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at), size_bytes=68)
        if i < n - 1:
            catalog.record_manifest(backup_id, write_manifest(where, build_manifest(record, where)))
        clear[backup_id] = key.hex
    catalog.close()
    return clear


def test_rewrap_moves_every_retained_backup_to_the_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_pub, old_priv = pair()
    new_pub, new_priv = pair()
    clear = owner_backups(tmp_path, old_pub)
    data_before = {
        p: p.read_bytes() for p in (tmp_path / "backups").rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    }
    write_fleet(tmp_path, monkeypatch, new_pub)  # the config first: new backups use the new key at once
    args = ["keys", "rewrap", "--cluster", "own", "--from-key", str(key_file(tmp_path, "old.key", old_priv))]
    result = runner.invoke(app, [*args, "--catalog", url(tmp_path), "--actor", "alice"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"own: 3 backup(s) rewrapped from key id {owner.key_id(old_pub)} to {owner.key_id(new_pub)}, "
        "0 on it already, 0 error(s)"
    )
    assert old_priv not in result.output and not any(k in result.output for k in clear.values())
    catalog = Catalog.from_url(url(tmp_path))
    try:
        for backup_id, key in clear.items():
            row = catalog.get(backup_id)
            assert row is not None and row.key_id == owner.key_id(new_pub)
            w = WrappedKey(row.key_id, row.wrapped_key or "")
            assert owner.unwrap(w, new_priv, "aes256-ctr").hex == key  # the same data key
            with pytest.raises(OwnerKeyError, match="wrong owner private key"):
                owner.unwrap(w, old_priv, "aes256-ctr")
            where = LocalStorage(tmp_path / "backups").child(backup_path("own", BackupKind.FULL, backup_id))
            if where.exists(MANIFEST_NAME):
                m = read_manifest(where)
                assert (m.key_id, m.wrapped_key) == (row.key_id, row.wrapped_key)
                with pytest.raises(OwnerKeyError, match="wrong owner private key"):
                    owner.unwrap(WrappedKey(m.key_id or "", m.wrapped_key or ""), old_priv, "aes256-ctr")
        events = [e for e in catalog.list_events(cluster="own") if e.kind == "backup.key_rewrapped"]
        assert len(events) == 3 and {e.actor for e in events} == {"alice"}
    finally:
        catalog.close()
    data_after = {
        p: p.read_bytes() for p in (tmp_path / "backups").rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    }
    assert data_after == data_before  # BR's files untouched
    again = runner.invoke(app, [*args, "--catalog", url(tmp_path)])
    assert again.exit_code == 0 and "0 backup(s) rewrapped" in again.stdout and "3 on it already" in again.stdout


def test_rewrap_refuses_before_the_config_names_the_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_pub, old_priv = pair()
    new_pub, _ = pair()
    owner_backups(tmp_path, old_pub, n=1)
    write_fleet(tmp_path, monkeypatch, old_pub)
    old = key_file(tmp_path, "old.key", old_priv)
    result = runner.invoke(
        app, ["keys", "rewrap", "--cluster", "own", "--from-key", str(old), "--to", new_pub, "--catalog", url(tmp_path)]
    )
    assert result.exit_code == 1 and "set br.encryption.owner_public_key to the new public key" in result.output
    same = runner.invoke(
        app, ["keys", "rewrap", "--cluster", "own", "--from-key", str(old), "--catalog", url(tmp_path)]
    )
    assert same.exit_code == 1 and "give the old one" in same.output


def test_rewrap_with_the_wrong_old_key_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_pub, _ = pair()
    new_pub, _ = pair()
    _, stranger = pair()
    owner_backups(tmp_path, old_pub, n=2)
    write_fleet(tmp_path, monkeypatch, new_pub)
    result = runner.invoke(
        app,
        ["keys", "rewrap", "--cluster", "own", "--from-key", str(key_file(tmp_path, "s.key", stranger)),
         "--catalog", url(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["rewrapped"] == [] and len(doc["errors"]) == 2
    assert all(f"wrapped for key id {owner.key_id(old_pub)}" in e for e in doc["errors"])
    catalog = Catalog.from_url(url(tmp_path))
    try:
        assert {b.key_id for b in catalog.list_backups("own")} == {owner.key_id(old_pub)}
    finally:
        catalog.close()


def test_deleted_backups_are_not_rewrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_pub, old_priv = pair()
    new_pub, _ = pair()
    ids = list(owner_backups(tmp_path, old_pub, n=2))
    catalog = Catalog.from_url(url(tmp_path))
    with catalog.engine.begin() as conn:  # as retention leaves a deleted backup's row
        from tidbops.catalog.schema import backups

        conn.execute(backups.update().where(backups.c.id == ids[0]).values(status=BackupStatus.DELETED.value))
    catalog.close()
    write_fleet(tmp_path, monkeypatch, new_pub)
    result = runner.invoke(
        app,
        ["keys", "rewrap", "--cluster", "own", "--from-key", str(key_file(tmp_path, "o.key", old_priv)),
         "--catalog", url(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rewrapped"] == [ids[1]]


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pub, priv = pair()
    write_fleet(tmp_path, monkeypatch, pub)
    loose = key_file(tmp_path, "loose.key", priv, mode=0o644)
    r = runner.invoke(app, ["keys", "rewrap", "--cluster", "own", "--from-key", str(loose)])
    assert r.exit_code == 2 and "readable by others (mode 644); chmod 600 it" in r.output
    r = runner.invoke(app, ["keys", "rewrap", "--cluster", "nope", "--from-key", str(key_file(tmp_path, "k", priv))])
    assert r.exit_code == 2 and "unknown cluster 'nope'" in r.output
    r = runner.invoke(
        app, ["keys", "rewrap", "--cluster", "own", "--from-key", str(key_file(tmp_path, "k2", priv)), "--to", "age1x"]
    )
    assert r.exit_code == 2 and "age X25519 recipient" in r.output
    r = runner.invoke(
        app,
        ["keys", "rewrap", "--cluster", "plain", "--from-key", str(key_file(tmp_path, "k3", priv)), "--to", pub,
         "--catalog", url(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 1 and "does not back up with owner-held keys" in r.output


def test_keys_id(tmp_path: Path) -> None:
    pub, priv = pair()
    r = runner.invoke(app, ["keys", "id", pub])
    assert r.exit_code == 0 and r.stdout.strip() == owner.key_id(pub)
    r = runner.invoke(app, ["keys", "id", "--private-key-file", str(key_file(tmp_path, "p", priv))])
    assert r.exit_code == 0 and r.stdout.strip() == owner.key_id(pub) and priv not in r.output
    assert runner.invoke(app, ["keys", "id"]).exit_code == 2
    r = runner.invoke(app, ["keys", "id", pub, "--json"])
    assert json.loads(r.stdout) == {"key_id": owner.key_id(pub)}


def test_verify_tier_2_says_why_it_cannot_run_on_an_owner_key_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub, _ = pair()
    owner_backups(tmp_path, pub, n=1)
    write_fleet(tmp_path, monkeypatch, pub)
    r = runner.invoke(app, ["verify", "--cluster", "own", "--tier", "2", "--catalog", url(tmp_path)])
    assert r.exit_code == 1
    assert "cluster own, tier 2 not run: cluster own backs up with owner-held keys" in r.output
