"""The verify pipeline's operators: a real SQLite catalog, real local storage, real hooks, a fake `br` script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidbops import tso
from tidbops.catalog.manifest import backup_path, build_manifest, write_manifest
from tidbops.catalog.records import BackupKind, BackupRecord, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig, StorageConfig
from tidbops.storage import LocalStorage
from tidbops.verification import BackupsFailedVerification
from tidbops_airflow.operators.verify import VerifyBackupFilesOperator, VerifyBRChecksumOperator

pytestmark = pytest.mark.operators

MISMATCH = (
    "Error: \nbackup data checksum failed: store1/1.sst may be changed\ncalculated sha256 is "
    + "ab" * 32
    + ",\norigin sha256 is "
    + "cd" * 32
    + ": [BR:Backup:ErrBackupChecksumMismatch]backup checksum mismatch"
)


@dataclass
class Env:
    tmp: Path
    catalog: Catalog
    cluster: ClusterConfig

    def backup(self, n: int) -> BackupRecord:
        backup_id = f"dev-full-2026112{n}t010000z-0000000{n}"
        at = datetime.now(UTC) - timedelta(days=3 - n)
        where = LocalStorage(self.tmp / "backups").child(backup_path("dev", BackupKind.FULL, backup_id))
        self.catalog.start_backup(
            NewBackup(id=backup_id, cluster="dev", kind=BackupKind.FULL, storage_uri=where.uri, started_at=at)
        )
        where.write_bytes("backupmeta", b"meta")
        where.write_bytes("store1/1.sst", b"x" * 4096)
        record = self.catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at))
        write_manifest(where, build_manifest(record, where))
        return record

    def row(self, backup_id: str) -> BackupRecord:
        found = self.catalog.get(backup_id)
        assert found is not None
        return found


def make_cluster(tmp: Path, br: Path) -> ClusterConfig:
    return ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri=f"local://{tmp / 'backups'}"),
        br=BRConfig(path=str(br), timeout=60),
    )


def fake_br(tmp: Path, bad: str | None = None) -> Path:
    """Answers `br debug checksum` as BR does; fails with BR's mismatch error for a storage URI ending in `bad`."""
    script = tmp / "br"
    fail = f"cat >&2 <<'EOF'\n{MISMATCH}\nEOF\nexit 1"
    case = f'case "$4" in *{bad}) {fail};; esac\n' if bad else ""
    script.write_text(f'#!/bin/sh\necho "$@" >> "{tmp}/calls"\n{case}echo "backup data checksum succeed!"\n')
    script.chmod(0o755)
    return script


@pytest.fixture
def env(tmp_path: Path, hook_catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("TIDBOPS_BR_LOG_DIR", str(tmp_path / "br-logs"))
    return Env(tmp_path, hook_catalog, make_cluster(tmp_path, fake_br(tmp_path)))


def files_op(env: Env) -> VerifyBackupFilesOperator:
    return VerifyBackupFilesOperator(task_id="verify_files", cluster=env.cluster)


def checksum_op(env: Env) -> VerifyBRChecksumOperator:
    return VerifyBRChecksumOperator(task_id="verify_br_checksum", cluster=env.cluster)


def test_verify_files_records_tier_1(env: Env) -> None:
    a, b = env.backup(1), env.backup(2)
    result = files_op(env).execute({})  # type: ignore[arg-type]
    assert result["ok"] is True and [c["backup_id"] for c in result["checks"]] == [a.id, b.id]
    assert env.row(a.id).verified_tier == env.row(b.id).verified_tier == 1


def test_verify_files_fails_naming_the_damaged_backup(env: Env) -> None:
    good, bad = env.backup(1), env.backup(2)
    (env.tmp / "backups/dev/full" / bad.id / "store1/1.sst").write_bytes(b"x" * 4095)
    with pytest.raises(BackupsFailedVerification) as info:
        files_op(env).execute({})  # type: ignore[arg-type]
    lines = str(info.value).splitlines()
    assert lines[0] == "cluster dev, tier 1: 2 backup(s) checked, 1 passed, 1 failed"
    assert lines[1] == (
        f"backup {bad.id} (cluster dev) failed tier 1: read back: FAILED (sizes and sha256 checked): "
        "1 wrong size (store1/1.sst: 4095 bytes, expected 4096)"
    )
    assert env.row(good.id).verified_tier == 1 and env.row(bad.id).verify_failed


def test_a_backup_outside_the_clusters_storage_is_not_a_verdict(env: Env, tmp_path: Path) -> None:
    moved = env.backup(1)
    env.cluster = env.cluster.model_copy(update={"storage": StorageConfig(uri=f"local://{tmp_path / 'elsewhere'}")})
    with pytest.raises(BackupsFailedVerification, match=r"storage did not answer: .* is not below cluster 'dev'"):
        files_op(env).execute({})  # type: ignore[arg-type]
    assert env.row(moved.id).verified_at is None


def test_verify_br_checksum_runs_br_on_due_backups_and_records_tier_2(env: Env) -> None:
    a, b = env.backup(1), env.backup(2)
    op = checksum_op(env)
    result = op.execute({})  # type: ignore[arg-type]
    assert [c["ok"] for c in result["checks"]] == [True, True]
    calls = (env.tmp / "calls").read_text().splitlines()
    assert [c.split()[:4] for c in calls] == [
        ["debug", "checksum", "--storage", a.storage_uri],
        ["debug", "checksum", "--storage", b.storage_uri],
    ]
    assert env.row(a.id).verified_tier == env.row(b.id).verified_tier == 2
    op.on_kill()  # nothing running: nothing to do
    again = checksum_op(env).execute({})  # type: ignore[arg-type]
    assert again["checks"] == [] and len(again["skipped"]) == 2  # weekly: not due again
    assert len((env.tmp / "calls").read_text().splitlines()) == 2


def test_verify_br_checksum_fails_naming_the_backup(env: Env) -> None:
    good, bad = env.backup(1), env.backup(2)
    env.cluster = make_cluster(env.tmp, fake_br(env.tmp, bad=bad.id))
    with pytest.raises(BackupsFailedVerification) as info:
        checksum_op(env).execute({})  # type: ignore[arg-type]
    line = str(info.value).splitlines()[1]
    assert line.startswith(
        f"backup {bad.id} (cluster dev) failed tier 2: br debug checksum: [BR:Backup:ErrBackupChecksumMismatch] "
        "store1/1.sst may be changed: its sha256 is " + "ab" * 32 + ", backupmeta says " + "cd" * 32 + "; BR log "
    )
    assert env.row(good.id).verified_tier == 2 and env.row(bad.id).verify_failed
