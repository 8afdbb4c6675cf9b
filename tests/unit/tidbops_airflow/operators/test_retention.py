"""The retention pipeline's operators: a real SQLite catalog, real local storage, the catalog hook patched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers.catalog import add_backup
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.records import BackupKind, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, RetentionConfig, StorageConfig
from tidbops.storage import LocalStorage
from tidbops_airflow.operators.retention import RetentionOperator, StorageUsageOperator

pytestmark = pytest.mark.operators


@dataclass
class Env:
    tmp: Path
    catalog: Catalog
    cluster: ClusterConfig
    notes: list[str]

    @property
    def root(self) -> LocalStorage:
        return LocalStorage(self.tmp / "backups")

    def backup(self, backup_id: str, days_ago: float) -> None:
        at = datetime.now(UTC) - timedelta(days=days_ago)
        where = self.root.child(backup_path("dev", BackupKind.FULL, backup_id))
        add_backup(self.catalog, backup_id, at, storage_uri=where.uri)
        self.catalog.mark_verified(backup_id, True, "ok")
        for name in ("backupmeta", "1/a.sst", MANIFEST_NAME):
            where.write_bytes(name, b"data")

    def status(self, backup_id: str) -> BackupStatus:
        row = self.catalog.get(backup_id)
        assert row is not None
        return row.status


class Run:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf


@pytest.fixture
def env(tmp_path: Path, hook_catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Env:
    notes: list[str] = []
    monkeypatch.setattr("tidbops_airflow.notes.set_run_note", lambda context, text, **kw: notes.append(text) or True)
    cluster = ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri=f"local://{tmp_path / 'backups'}"),
        retention=RetentionConfig(keep_days=2, keep_full=1),
    )
    return Env(tmp_path, hook_catalog, cluster, notes)


def retention(env: Env, **kw: Any) -> RetentionOperator:
    return RetentionOperator(task_id="apply_retention", cluster=env.cluster, **kw)


def test_a_run_expires_deletes_notes_and_records_an_event(env: Env) -> None:
    env.backup("dev-full-old", 10)
    env.backup("dev-full-mid", 5)  # the restore point at the window's start
    env.backup("dev-full-new", 1)
    out = retention(env).execute({})  # type: ignore[arg-type]
    assert [e["id"] for e in out["report"]["expire"]] == ["dev-full-old"] and out["result"]["deleted"] == [
        "dev-full-old"
    ]
    assert env.status("dev-full-old") is BackupStatus.DELETED and env.status("dev-full-new") is BackupStatus.SUCCEEDED
    assert not (env.tmp / "backups/dev/full/dev-full-old/backupmeta").exists()
    assert env.notes and env.notes[0].startswith("**Retention of dev** (applied)")
    events = env.catalog.list_events(cluster="dev", kind="retention.run")
    assert events and "expired 1, deleted 1" in events[-1].message


def test_dry_run_from_the_run_conf_deletes_nothing(env: Env) -> None:
    env.backup("dev-full-old", 10)
    env.backup("dev-full-mid", 5)  # the restore point at the window's start
    env.backup("dev-full-new", 1)
    out = retention(env).execute({"dag_run": Run({"dry_run": "true"})})  # type: ignore[arg-type]
    assert out["report"]["dry_run"] is True and out["result"]["deleted"] == []
    assert env.status("dev-full-old") is BackupStatus.SUCCEEDED
    with pytest.raises(ValueError, match="conf dry_run must be true or false"):
        retention(env).execute({"dag_run": Run({"dry_run": "maybe"})})  # type: ignore[arg-type]


def test_a_difference_fails_without_retry_and_deletes_nothing(env: Env) -> None:
    env.backup("dev-full-old", 10)
    env.backup("dev-full-mid", 5)  # the restore point at the window's start
    env.backup("dev-full-new", 1)
    gone = env.root.child("dev/full/dev-full-new")
    gone.delete([o.path for o in gone.list("")])
    with pytest.raises(AirflowFailException, match="refused, nothing deleted: storage and catalog disagree"):
        retention(env).execute({})  # type: ignore[arg-type]
    assert env.status("dev-full-old") is BackupStatus.SUCCEEDED
    assert (env.tmp / "backups/dev/full/dev-full-old/backupmeta").exists()
    assert "Refused" in env.notes[-1]


def test_storage_usage_is_measured_and_recorded(env: Env) -> None:
    env.backup("dev-full-new", 1)
    out = StorageUsageOperator(task_id="measure_storage", cluster=env.cluster).execute({})  # type: ignore[arg-type]
    assert out["snapshot_bytes"] == 12 and out["cluster"] == "dev"
    assert env.catalog.list_events(cluster="dev", kind="storage.usage")
