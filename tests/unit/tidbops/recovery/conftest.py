"""What the restore engine's tests restore: a source with encrypted backups in S3, scratch clusters, a
cluster that is not scratch, and a chain of one full backup and two incrementals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.config import BRConfig, ClusterConfig, EncryptionConfig, StorageConfig

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


@pytest.fixture
def fleet() -> dict[str, ClusterConfig]:
    """``uat`` (the source: encrypted backups in S3 with an endpoint), ``scratch1``/``scratch2``, ``qa``."""
    encrypted = BRConfig(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat"))
    kinds = {"uat": ("uat", False, encrypted), "qa": ("qa", False, BRConfig())}
    kinds |= {n: ("scratch", True, BRConfig(ratelimit_mib=64)) for n in ("scratch1", "scratch2")}
    storage = StorageConfig(uri="s3://backups/tidb", endpoint="http://minio:9000")
    return {
        name: ClusterConfig(
            name=name,
            env=env,
            scratch=scratch,
            br=br,
            pd=(f"pd-{name}:2379",),
            tidb_conn_id=f"tidb_{name}",
            storage=storage,
        )
        for name, (env, scratch, br) in kinds.items()
    }


@pytest.fixture
def chain() -> list[BackupRecord]:
    """``uat-full-1`` at T0, then ``uat-incr-1`` and ``uat-incr-2`` an hour apart, all verified."""
    rows = []
    for n, backup_id in enumerate(("uat-full-1", "uat-incr-1", "uat-incr-2")):
        at = T0 + timedelta(hours=n)
        kind = BackupKind.INCREMENTAL if n else BackupKind.FULL
        rows.append(
            BackupRecord(
                id=backup_id, cluster="uat", kind=kind, storage_uri=f"s3://backups/tidb/uat/{backup_id}",
                started_at=at, status=BackupStatus.SUCCEEDED, backup_ts=tso.from_datetime(at),
                backup_time=at, verified=True, verified_at=at + timedelta(minutes=5),
                base_backup_id=rows[-1].id if rows else None,
                last_backup_ts=rows[-1].backup_ts if rows else None,
            )
        )  # fmt: skip
    return rows
