"""Verification tier 2 (#16) against the br emulator: ``br debug checksum`` through ``tidbops.verification``.

Real emulator backups in local storage (plain and encrypted), a real SQLite catalog; the files are then
damaged the way storage damages them (a flipped byte, a lost file) and each tier says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.playground.br.conftest import BR, Playground
from tidbops.catalog.manifest import build_manifest, write_manifest
from tidbops.catalog.records import BackupKind, BackupRecord, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.storage import storage_from_uri
from tidbops.verification import VerificationError, due_for_br_checksum, verify_br_checksum, verify_files

pytestmark = pytest.mark.playground

KEY = "0123456789abcdef" * 4


@dataclass(frozen=True)
class Session:
    cluster: ClusterConfig
    env: dict[str, str]
    key_file: str | None
    log_file: str
    secrets: tuple[str, ...]


def cluster(pg: Playground, *, encrypted: bool = False) -> ClusterConfig:
    br: dict[str, object] = {"path": str(BR), "timeout": 120}
    if encrypted:
        br["encryption"] = {"method": "aes256-ctr", "key_conn_id": "br_key"}
    return ClusterConfig.model_validate(
        {
            "name": "src",
            "env": "dev",
            "pd": [pg.src.pd],
            "tidb_conn_id": "tidb_src",
            "storage": {"uri": f"local://{pg.tmp / 'storage'}"},
            "br": br,
        }
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.migrate()
    yield cat
    cat.close()


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return str(path)


def backed_up(pg: Playground, catalog: Catalog, name: str, *extra: str) -> BackupRecord:
    """A full backup of the source by the emulator, catalogued with its manifest."""
    url = pg.local(f"verify-{name}")
    result = pg.br("backup", "full", "--pd", pg.src.pd, "-s", url, *extra)
    assert result.rc == 0, result.stderr
    backup_id = f"src-full-{name}"
    catalog.start_backup(
        NewBackup(id=backup_id, cluster="src", kind=BackupKind.FULL, storage_uri=url, started_at=datetime.now(UTC))
    )
    ts = int(result.summary("Full Backup success summary")["BackupTS"])
    record = catalog.finish_backup(backup_id, backup_ts=ts)
    write_manifest(storage_from_uri(url), build_manifest(record, storage_from_uri(url)))
    return record


def sst_files(record: BackupRecord) -> list[Path]:
    return sorted(Path(record.storage_uri.removeprefix("local://")).rglob("*.sst"))


def session(pg: Playground, *, encrypted: bool = False, key_file: str | None = None) -> Session:
    return Session(cluster(pg, encrypted=encrypted), pg.env(), key_file, "", ())


def test_a_good_backup_passes_both_tiers(pg: Playground, no_faults: Playground, catalog: Catalog) -> None:
    record = backed_up(pg, catalog, "good")
    assert sst_files(record), "the emulator wrote no data files"
    assert verify_files(catalog, "src", storage_from_uri).ok
    due, _ = due_for_br_checksum(catalog, "src", datetime.now(UTC))
    report = verify_br_checksum(catalog, session(pg), due, log_dir=str(pg.tmp))
    [check] = report.checks
    assert check.ok and check.detail.startswith("br debug checksum: ok: backup data checksum succeed!")
    found = catalog.get(record.id)
    assert found is not None and found.verified_tier == 2


def test_a_flipped_byte_fails_both_tiers_and_br_names_the_file(
    pg: Playground, no_faults: Playground, catalog: Catalog
) -> None:
    record = backed_up(pg, catalog, "flipped")
    victim = sst_files(record)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    [tier1] = verify_files(catalog, "src", storage_from_uri).checks
    relative = victim.relative_to(Path(record.storage_uri.removeprefix("local://"))).as_posix()
    assert not tier1.ok and f"1 wrong sha256 ({relative})" in tier1.detail
    report = verify_br_checksum(catalog, session(pg), [record], log_dir=str(pg.tmp))
    [tier2] = report.checks
    assert not tier2.ok and tier2.recorded
    assert f"[BR:Backup:ErrBackupChecksumMismatch] {relative} may be changed: its sha256 is " in tier2.detail
    log_file = tier2.detail.rsplit("; BR log ", 1)[1]
    assert Path(log_file).exists()  # kept as evidence
    found = catalog.get(record.id)
    assert found is not None and found.verify_failed and found.verified_tier is None


def test_a_lost_file_fails_tier2(pg: Playground, no_faults: Playground, catalog: Catalog) -> None:
    record = backed_up(pg, catalog, "lost")
    victim = sst_files(record)[-1]
    victim.unlink()
    [check] = verify_br_checksum(catalog, session(pg), [record], log_dir=str(pg.tmp)).checks
    assert not check.ok and f"open {victim}: no such file or directory" in check.detail


def test_an_encrypted_backup_needs_its_key(
    pg: Playground, no_faults: Playground, catalog: Catalog, key_file: str, tmp_path: Path
) -> None:
    record = backed_up(pg, catalog, "encrypted", "--crypter.method", "aes256-ctr", "--crypter.key-file", key_file)
    with pytest.raises(VerificationError, match="encrypts its backups"):
        verify_br_checksum(catalog, session(pg, encrypted=True), [record], log_dir=str(pg.tmp))
    wrong = tmp_path / "wrong-key"
    wrong.write_text("f" * 64)
    os.chmod(wrong, 0o600)
    [bad] = verify_br_checksum(
        catalog, session(pg, encrypted=True, key_file=str(wrong)), [record], log_dir=str(pg.tmp)
    ).checks
    assert not bad.ok and bad.recorded, bad.detail
    assert "parse backupmeta failed because of wrong aes cipher" in bad.detail
    right = session(pg, encrypted=True, key_file=key_file)
    [good] = verify_br_checksum(catalog, right, [record], log_dir=str(pg.tmp)).checks
    assert good.ok, good.detail
