"""`tidb_retention__uat` through a real Airflow on the playground (#16).

The e2e fleet shrinks uat's window to one minute (``retention.keep_days: 1m``, ``keep_full: 1``, not a dry
run). With log backup running: a full backup F1 and an incremental I1, then a full F2; once F2 is older
than the window, a retention run:

- expires exactly what its plan says (F1 and I1), their S3 objects are gone and their rows say deleted;
- ran ``br log truncate --until <F2's BackupTS>`` (the emulator's truncate safepoint says so);
- a PITR restore to the oldest point still inside the window succeeds through ``tidb_restore``, is
  validated, and equals uat as of that point;
- a repeated run deletes nothing more.

Then F2 is deleted behind the catalog's back: the next run is refused (the task fails naming F2) and
deletes nothing; with F2's objects put back, retention runs clean again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tidbops.catalog.records import BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.config import load_fleet
from tidbops_playground import journal, manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import ClusterEntry, Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RETENTION, FULL, INCR, RESTORE = (
    "tidb_retention__uat",
    "tidb_backup_full__uat",
    "tidb_backup_incremental__uat",
    "tidb_restore",
)
TABLES = ["shop.customers", "crm.contacts"]
WINDOW = timedelta(minutes=1)


def backup(api: AirflowAPI, dag_id: str) -> str:
    run_id, state = api.run_dag(dag_id)
    assert state == "success", api.run_logs(dag_id, run_id)[-6000:]
    return str(api.xcom(dag_id, run_id, "plan_backup")["backup_id"])


def br(home: Path, registry: Registry, *args: str, check: bool = True) -> str:
    assert registry.s3 is not None
    env = {
        **os.environ,
        **manager.playground_env(home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-retention-br.log")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 or not check, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def query(entry: ClusterEntry, sql: str) -> list[tuple[Any, ...]]:
    conn = pymysql.connect(
        host=entry.sql_host, port=entry.sql_port, user=entry.sql_user, password=entry.sql_password, autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_retention_expires_truncates_and_keeps_the_window_restorable(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    uat, scratch2 = registry.clusters["uat"], registry.clusters["scratch2"]
    config = load_fleet(REPO / "include/config/clusters.yaml").get("uat")
    task = config.log_backup.task_name
    assert task and registry.s3 is not None
    if task not in br(playground_home, registry, "log", "status", "--pd", uat.pd, "--json"):
        br(playground_home, registry, "log", "start", "--task-name", task, "--pd", uat.pd,
           "--storage", config.log_storage_uri, "--s3.endpoint", registry.s3.endpoint)  # fmt: skip
    else:  # a paused task (another test may leave one) would hold the checkpoint back
        br(playground_home, registry, "log", "resume", "--task-name", task, "--pd", uat.pd, check=False)

    f1 = backup(airflow, FULL)
    i1 = backup(airflow, INCR)
    f2 = backup(airflow, FULL)
    rows = {b.id: b for b in catalog.list_backups("uat")}
    assert rows[i1].base_backup_id == f1 and rows[f2].is_full, rows
    f2_time = rows[f2].backup_time
    assert f2_time is not None
    wait = (f2_time + WINDOW + timedelta(seconds=5) - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    live_before = {b.id for b in catalog.list_backups("uat") if b.status is BackupStatus.SUCCEEDED}

    marks = journal.size(playground_home)
    run_id, state = airflow.run_dag(RETENTION)
    assert state == "success", airflow.run_logs(RETENTION, run_id)[-8000:]
    out = airflow.xcom(RETENTION, run_id, "apply_retention")
    report, result = out["report"], out["result"]
    expired = {e["id"] for e in report["expire"]}
    log = airflow.task_log(RETENTION, run_id, "apply_retention", 1)
    shown = "\n".join(ln for ln in log.splitlines() if "keep " in ln or "expire " in ln or "retention of" in ln)
    times = {b.id: (b.backup_time, b.status.value, b.verified) for b in catalog.list_backups("uat")}
    assert {f1, i1} <= expired and f2 not in expired, f"{shown}\n{times}\n{report}"
    assert expired == live_before - {k["id"] for k in report["keep"]}, report
    assert sorted(result["deleted"]) == sorted(expired) and result["errors"] == []
    for backup_id in expired:
        row = catalog.get(backup_id)
        assert row is not None and row.status is BackupStatus.DELETED, row
        assert bucket.objects(bucket.key(row.storage_uri) + "/") == {}, f"{backup_id}'s objects are still there"
    kept = catalog.get(f2)
    assert kept is not None and kept.status is BackupStatus.SUCCEEDED
    assert bucket.objects(bucket.key(kept.storage_uri) + "/"), "F2's objects must stay"
    assert f"expire  {f1}:" in log and f"keep    {f2}:" in log

    # br log truncate ran with --until = F2's BackupTS, and the log now starts there
    assert report["truncate_until"] == kept.backup_ts, report
    truncates = [e for e in journal.read(playground_home, marks) if e["command"][:2] == ["log", "truncate"]]
    assert len(truncates) == 1, truncates
    assert f"--until {kept.backup_ts} -y" in log, log[-4000:]
    safepoint = bucket.get(bucket.key(config.log_storage_uri) + "/v1_stream_trancate_safepoint.txt")
    assert int(safepoint.decode().strip()) == kept.backup_ts
    note = airflow.run(RETENTION, run_id).get("note") or ""
    assert "Retention of uat" in note and "<" not in note, note

    # the oldest point still inside the window restores, validated, equal to uat as of that point
    window_start = datetime.fromisoformat(report["window_start"].replace("Z", "+00:00"))
    point = (window_start + timedelta(seconds=2)).replace(microsecond=0)
    conf = {
        "source_cluster": "uat",
        "target_cluster": "scratch2",
        "restore_point": point.isoformat(),
        "tables": TABLES,
        "dry_run": False,
        "validate_after": True,
        "reason": "e2e: the oldest point of the retention window",
    }
    restore_id, state = airflow.run_dag(RESTORE, conf)
    assert state == "success", airflow.run_logs(RESTORE, restore_id)[-8000:]
    at = point.strftime("%Y-%m-%d %H:%M:%S.%f")
    for table in TABLES:
        restored = query(scratch2, f"SELECT * FROM {table} ORDER BY id")
        then = query(uat, f"SELECT * FROM {table} FOR SYSTEM_TIME AS OF TIMESTAMP '{at}' ORDER BY id")
        assert restored == then and len(restored) > 100, f"{table} differs from uat as of {at}"

    # again: nothing more to do
    again_id, state = airflow.run_dag(RETENTION)
    assert state == "success", airflow.run_logs(RETENTION, again_id)[-6000:]
    again = airflow.xcom(RETENTION, again_id, "apply_retention")
    assert again["result"]["deleted"] == [] and again["report"]["truncate_until"] is None, again

    # F2 deleted behind our back: refused, nothing deleted; with F2 back, clean again
    prefix = bucket.key(kept.storage_uri) + "/"
    saved = {key: bucket.get(key) for key in bucket.objects(prefix)}
    assert saved, f"no objects below {prefix}"
    for key in saved:
        bucket.client.delete_object(Bucket=bucket.name, Key=key)
    assert bucket.objects(prefix) == {}
    objects_before = set(bucket.objects("uat/"))
    try:
        refused_id, state = airflow.run_dag(RETENTION, timeout=400)
        assert state == "failed", airflow.task_log(RETENTION, refused_id, "apply_retention", 1)[-6000:]
        log = airflow.task_log(RETENTION, refused_id, "apply_retention", 1)
        assert "refused" in log and f"{f2}: catalogued as succeeded but its directory" in log, log[-4000:]
        assert log.count("ALERT ") == 1  # failed without retries: one alert through uat's route
        assert objects_before <= set(bucket.objects("uat/"))  # nothing deleted (the log keeps adding files)
        assert catalog.get(f2).status is BackupStatus.SUCCEEDED  # type: ignore[union-attr]
        events = [e for e in catalog.list_events(cluster="uat", kind="retention.run") if "refused" in e.message]
        assert events and f2 in json.dumps(events[-1].details)
    finally:
        for key, body in saved.items():
            bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    clean_id, state = airflow.run_dag(RETENTION)
    assert state == "success", airflow.run_logs(RETENTION, clean_id)[-6000:]
