"""`tidbops verify` and the verification figure in `tidbops info` (#16)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.manifest import backup_path, build_manifest, write_manifest
from tidbops.catalog.records import BackupKind, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.cli import app
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit
runner = CliRunner()

MISMATCH = (
    "Error: \nbackup data checksum failed: store1/1.sst may be changed\ncalculated sha256 is "
    + "ab" * 32
    + ",\norigin sha256 is "
    + "cd" * 32
    + ": [BR:Backup:ErrBackupChecksumMismatch]backup checksum mismatch"
)


def fake_br(tmp_path: Path, *, ok: bool = True) -> Path:
    """A `br` that records its argv and answers `debug checksum` as BR does."""
    script = tmp_path / "br"
    answer = (
        'echo "backup data checksum succeed!"; exit 0'
        if ok
        else f"cat >&2 <<'EOF'\nDetail BR log in /tmp/x.log \n{MISMATCH}\nEOF\nexit 1"
    )
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/argv"\n{answer}\n')
    script.chmod(0o755)
    return script


def write_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, br: Path, encrypted: bool = False) -> None:
    enc = ", encryption: {method: aes256-ctr, key_conn_id: k}" if encrypted else ""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        f"""
version: 1
defaults:
  storage: {{uri: "local://{tmp_path}/backups"}}
  br: {{path: "{br}"{enc}}}
clusters:
  - {{name: dev, env: dev, pd: ["127.0.0.1:1"], tidb_conn_id: tidb_dev}}
  - {{name: scratch1, env: dev, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_s, scratch: true}}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("TIDBOPS_BR_LOG_DIR", str(tmp_path / "br-logs"))
    write_fleet(tmp_path, monkeypatch, br=fake_br(tmp_path))


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/catalog.db"


def backups(tmp_path: Path, n: int = 2) -> list[str]:
    """``n`` succeeded full backups of dev, files and manifests in local storage; their ids."""
    catalog = Catalog.from_url(url(tmp_path))
    catalog.migrate()
    ids = []
    for i in range(n):
        at = datetime.now(UTC) - timedelta(hours=10 - i)
        backup_id = f"dev-full-2024010{i}t000000z-1234567{i}"
        where = LocalStorage(tmp_path / "backups").child(backup_path("dev", BackupKind.FULL, backup_id))
        catalog.start_backup(
            NewBackup(id=backup_id, cluster="dev", kind=BackupKind.FULL, storage_uri=where.uri, started_at=at)
        )
        where.write_bytes("backupmeta", b"meta")
        where.write_bytes("store1/1.sst", b"x" * 2048)
        record = catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at), size_bytes=2052)
        catalog.record_manifest(backup_id, write_manifest(where, build_manifest(record, where)))
        ids.append(backup_id)
    catalog.close()
    return ids


def row_tier(tmp_path: Path, backup_id: str) -> int | None:
    catalog = Catalog.from_url(url(tmp_path))
    try:
        found = catalog.get(backup_id)
        assert found is not None
        return found.verified_tier
    finally:
        catalog.close()


def test_verify_passes_both_tiers_and_records_them(tmp_path: Path) -> None:
    first, second = backups(tmp_path)
    result = runner.invoke(app, ["verify", "--catalog", url(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "cluster dev, tier 1: 2 backup(s) checked, 2 passed, 0 failed",
        "cluster dev, tier 2: 2 backup(s) checked, 2 passed, 0 failed",
        "fleet: verified at tier >= 1 in the last 24 h: 2/2 (100%)",
    ]
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:4] == ["debug", "checksum", "--storage", f"local://{tmp_path}/backups/dev/full/{second}"]
    assert row_tier(tmp_path, first) == row_tier(tmp_path, second) == 2
    again = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "2"])
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == "cluster dev, tier 2: 0 backup(s) checked, 0 passed, 0 failed, 2 not checked"


def test_a_damaged_backup_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    good, bad = backups(tmp_path)
    sst = tmp_path / "backups" / "dev" / "full" / bad / "store1" / "1.sst"
    sst.write_bytes(b"y" + b"x" * 2047)
    result = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "1", "--cluster", "dev"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: backup {bad} (cluster dev) failed tier 1: read back: FAILED (sizes and sha256 checked): "
        "1 wrong sha256 (store1/1.sst)"
    ]
    assert "fleet: verified at tier >= 1 in the last 24 h: 1/2 (50%)" in result.stdout
    assert row_tier(tmp_path, good) == 1 and row_tier(tmp_path, bad) is None


def test_tier2_failure_from_br(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [only] = backups(tmp_path, 1)
    write_fleet(tmp_path, monkeypatch, br=fake_br(tmp_path, ok=False))
    result = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "2", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["errors"] == []
    [check] = doc["reports"][0]["checks"]
    assert check["backup_id"] == only and check["tier"] == 2 and check["recorded"] is True
    assert check["detail"].startswith(
        "br debug checksum: [BR:Backup:ErrBackupChecksumMismatch] store1/1.sst may be changed: its sha256 is "
    )
    assert doc["coverage"]["fleet"] == {"retained": 1, "verified": 0, "percent": 0.0}


def test_encrypted_cluster_needs_a_private_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [only] = backups(tmp_path, 1)
    write_fleet(tmp_path, monkeypatch, br=fake_br(tmp_path), encrypted=True)
    result = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "2"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: cluster dev, tier 2 not run: cluster dev encrypts its backups (aes256-ctr): pass --crypter-key-file, "
        "a file only you can read holding the hex key"
    ]
    key = tmp_path / "key"
    key.write_text("00" * 32)
    key.chmod(0o644)
    loose = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--crypter-key-file", str(key)])
    assert loose.exit_code == 2 and "readable by others (mode 644)" in loose.stderr
    key.chmod(0o600)
    ok = runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "2", "--crypter-key-file", str(key)])
    assert ok.exit_code == 0, ok.output
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[argv.index("--crypter.key-file") + 1] == str(key) and "00" * 32 not in argv
    assert row_tier(tmp_path, only) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "3"], "tier 3 is a restore drill"),
        (["--tier", "0"], "--tier is 1 or 2, not 0"),
        (["--cluster", "nope"], "nope"),
        (["--s3-endpoint", "ftp://x"], "--s3-endpoint"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["verify", "--catalog", url(tmp_path), *args])
    assert result.exit_code == 2 and message in result.stderr


def test_info_shows_the_verification_figure(tmp_path: Path) -> None:
    first, _ = backups(tmp_path)
    assert runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "1"]).exit_code == 0
    (tmp_path / "backups" / "dev" / "full" / first / "backupmeta").unlink()
    assert runner.invoke(app, ["verify", "--catalog", url(tmp_path), "--tier", "1"]).exit_code == 1
    text = runner.invoke(app, ["info", "--catalog", url(tmp_path)])
    assert text.exit_code == 0, text.output
    assert "    verified at tier >= 1 in the last 24 h: 1/2 retained backups (50%)" in text.stdout.splitlines()
    assert text.stdout.splitlines()[-2:] == [
        "fleet: verified at tier >= 1 in the last 24 h: 1/2 retained backups (50%)",
        "status: OK (exit 0): 1 cluster: 1 ok",
    ]
    doc = json.loads(runner.invoke(app, ["info", "--catalog", url(tmp_path), "--json"]).stdout)
    assert doc["verification"] == {
        "window_s": 86400,
        "min_tier": 1,
        "fleet": {"retained": 2, "verified": 1, "percent": 50.0},
    }
    assert [c["verification"] for c in doc["clusters"]] == [{"retained": 2, "verified": 1, "percent": 50.0}]
