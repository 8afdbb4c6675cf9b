"""Retention against a real S3 endpoint (moto in server mode) that stops answering mid-delete (#16).

The server is frozen (SIGSTOP) right after the first expired backup is deleted: its port still accepts
connections but nothing answers, as when S3 hangs. The run ends with ``RetentionError``; the catalog
says ``deleted`` for the first backup and ``expired`` for the next (never ``succeeded`` over missing
data); the storage and the catalog still reconcile. Once the server answers again, a retry finishes
the job and a third run finds nothing to do.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.servers import free_port
from tidbops import tso
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.records import BackupKind, BackupStatus, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, RetentionConfig, StorageConfig
from tidbops.retention import RetentionError, apply, plan_cluster, reconcile, survey_storage
from tidbops.storage import S3Storage
from tidbops_playground.s3server import S3Server

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[S3Server]:
    s3 = S3Server(tmp_path / "s3", free_port())
    s3.start()
    try:
        yield s3
    finally:
        pid = s3.pid()
        if pid:
            os.kill(pid, signal.SIGCONT)
        s3.stop()


@pytest.fixture
def root(server: S3Server) -> S3Storage:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=2, retries={"max_attempts": 1}),
    )
    name = f"tidbops-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=name)
    return S3Storage(name, "backups", client)


def test_s3_hanging_mid_delete_leaves_a_consistent_catalog_and_a_retry_finishes(
    tmp_path: Path, server: S3Server, root: S3Storage
) -> None:
    now_box = [T0]
    catalog = Catalog.from_url(f"sqlite:///{tmp_path}/c.db", clock=lambda: now_box[0])
    catalog.migrate()
    cluster = ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri=f"s3://{root.bucket}/backups"),
        retention=RetentionConfig(keep_days=2, keep_full=1),
    )
    ts: dict[str, int] = {}
    for backup_id, day, base in (("f1", 0, None), ("i1", 1, "f1"), ("i2", 2, "i1"), ("f2", 5, None), ("f3", 10, None)):
        at = T0 + timedelta(days=day)
        now_box[0] = at
        kind = BackupKind.INCREMENTAL if base else BackupKind.FULL
        catalog.start_backup(
            NewBackup(
                id=backup_id,
                cluster="dev",
                kind=kind,
                storage_uri=f"{root.uri}/{backup_path('dev', kind, backup_id)}",
                started_at=at,
                base_backup_id=base,
                last_backup_ts=ts[base] if base else None,
            )
        )
        ts[backup_id] = tso.from_datetime(at)
        catalog.finish_backup(backup_id, backup_ts=ts[backup_id], backup_time=at)
        where = root.child(backup_path("dev", kind, backup_id))
        for name in ("backupmeta", "1/a.sst", "1/b.sst", MANIFEST_NAME):
            where.write_bytes(name, b"data")
        catalog.mark_verified(backup_id, True, "ok")
    now = T0 + timedelta(days=11)
    now_box[0] = now

    report = plan_cluster(cluster, catalog.list_backups("dev"), survey_storage(root, "dev"), now, held={})
    assert report.expire_ids == ["f1", "i1", "i2"] and report.will_delete

    frozen: list[int] = []

    def freeze_after_first(line: str) -> None:
        pid = server.pid()
        if line.startswith("deleted ") and not frozen and pid:
            os.kill(pid, signal.SIGSTOP)  # S3 stops answering; its port still accepts connections
            frozen.append(pid)

    with pytest.raises(RetentionError, match=r"2 backup\(s\) not finished.*does not answer"):
        apply(report, catalog, root, on_progress=freeze_after_first)
    assert frozen
    statuses = {b.id: b.status for b in catalog.list_backups("dev")}
    assert statuses == {
        "f1": BackupStatus.DELETED,
        "i1": BackupStatus.EXPIRED,
        "i2": BackupStatus.EXPIRED,
        "f2": BackupStatus.SUCCEEDED,
        "f3": BackupStatus.SUCCEEDED,
    }
    os.kill(frozen[0], signal.SIGCONT)

    stored = survey_storage(root, "dev")
    assert "f1" not in stored and {"i1", "i2", "f2", "f3"} <= set(stored)
    assert reconcile(catalog.list_backups("dev"), stored) == []  # consistent: expired rows may keep files
    retry = plan_cluster(cluster, catalog.list_backups("dev"), stored, now, held={})
    assert retry.resume == ("i1", "i2") and retry.expire_ids == []
    result = apply(retry, catalog, root)
    assert result.deleted == ["i1", "i2"] and result.objects_deleted == 8
    assert set(survey_storage(root, "dev")) == {"f2", "f3"}
    assert {b.id: b.status for b in catalog.list_backups("dev")}["i2"] is BackupStatus.DELETED
    final = plan_cluster(cluster, catalog.list_backups("dev"), survey_storage(root, "dev"), now, held={})
    assert final.expire_ids == [] and final.resume == ()
    catalog.close()
