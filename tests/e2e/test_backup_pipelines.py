"""The backup pipelines run through a real Airflow (REST API) on the playground.

* dev (writer running): a full backup, then two incrementals; the chain is restored into scratch1 the
  way a DBA would (``br restore full`` for the full, then each incremental in order) and every table
  matches the source as of the last BackupTS (``FOR SYSTEM_TIME AS OF``). Each verified backup is an
  event of the Airflow Asset ``x-tidb://dev/backups`` with its id, BackupTS and size; each is named and
  catalogued by when its run really started, the full backup's run having a logical date 6 h earlier.
* uat (encrypted): BR fails midway (fault ``backup_fail_midway``): the task fails with BR's error, the
  catalog row is failed with it, no manifest; cleared once the fault is gone, the retry clears the
  partial files and succeeds; cleared again, it adopts the complete backup and changes nothing.
* after the runs, no task log, XCom, rendered template, catalog row or event, or manifest holds the S3
  secret key, a crypter key or a database password.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tidbops.catalog.records import BackupKind, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops_playground import faults, manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.br import tso as emu_tso
from tidbops_playground.registry import ClusterEntry, Registry

pytestmark = pytest.mark.e2e

FULL, INCR = "tidb_backup_full", "tidb_backup_incremental"
USER_SCHEMAS = ("shop", "crm", "metrics")
RUN_TIMEOUT = 240.0


# ------------------------------------------------------------------------------------------- helpers


def run_dag(
    api: AirflowAPI, dag_id: str, timeout: float = RUN_TIMEOUT, logical_date: datetime | None = None
) -> tuple[str, str]:
    api.wait_for_dag(dag_id)
    api.unpause(dag_id)
    if logical_date is None:
        run_id = api.trigger(dag_id, note="e2e backup")
    else:  # a run for an earlier slot, started now (as a late or caught-up run is)
        body = {"logical_date": logical_date.isoformat(), "conf": {}, "note": "e2e backup, late"}
        run_id = str(api._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])
    return run_id, api.wait_run(dag_id, run_id, timeout=timeout)


def asset_events(api: AirflowAPI, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"source_dag_id": dag_id, "source_run_id": run_id})
    return list(api._request("GET", f"/api/v2/assets/events?{query}")["asset_events"])


def connect(entry: ClusterEntry) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    conn = pymysql.connect(
        host=entry.sql_host,
        port=entry.sql_port,
        user=entry.sql_user,
        password=entry.sql_password,
        autocommit=True,
        charset="utf8mb4",
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return conn


def table_digests(entry: ClusterEntry, as_of_ts: int | None = None) -> dict[str, tuple[int, str]]:
    """``schema.table`` → (rows, sha256 of the rows in primary-key order), optionally as of a TSO."""
    as_of = ""
    if as_of_ts is not None:
        as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{emu_tso.us_to_sql(emu_tso.ts_to_read_us(as_of_ts))}'"
    conn = connect(entry)
    out: dict[str, tuple[int, str]] = {}
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN %s "
                "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1, 2",
                (USER_SCHEMAS,),
            )
            for schema, table in cur.fetchall():
                cur.execute(f"SELECT * FROM `{schema}`.`{table}`{as_of} ORDER BY 1")
                rows = cur.fetchall()
                out[f"{schema}.{table}"] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    finally:
        conn.close()
    return out


def restore_full(home: Path, registry: Registry, target: ClusterEntry, uri: str, tmp: Path) -> None:
    """``br restore full`` with the playground's env, as a DBA would type it."""
    assert registry.s3 is not None
    env = {
        **os.environ,
        **manager.playground_env(home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    argv = [
        str(manager.BR_PATH), "restore", "full", "--pd", target.pd, "--storage", uri,
        "--s3.endpoint", registry.s3.endpoint, "--log-file", str(tmp / f"restore-{time.time_ns()}.log"),
    ]  # fmt: skip
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"restore of {uri} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def drop_user_schemas(entry: ClusterEntry) -> None:
    conn = connect(entry)
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for schema in (*USER_SCHEMAS, "tidbops_playground"):
                cur.execute(f"DROP DATABASE IF EXISTS `{schema}`")
    finally:
        conn.close()


# ------------------------------------------------------------------------------ dev: full + 2 incremental


def test_full_then_two_incrementals_restore_to_the_last_backupts(
    airflow: AirflowAPI,
    playground_home: Path,
    registry: Registry,
    catalog: Catalog,
    bucket: manager.Bucket,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    chain: list[dict[str, Any]] = []
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    for dag_id in (f"{FULL}__dev", f"{INCR}__dev", f"{INCR}__dev"):
        run_id, state = run_dag(airflow, dag_id, logical_date=None if chain else slot)
        assert state == "success", airflow.run_logs(dag_id, run_id)[-6000:]
        facts = airflow.xcom(dag_id, run_id, "check_cluster")
        assert facts["tidb_version"] == "v8.5.1" and facts["gc_safe_point"] and facts["gc_life_time_seconds"]
        target = airflow.xcom(dag_id, run_id, "plan_backup")
        backup = airflow.xcom(dag_id, run_id, "run_br_backup")
        verified = airflow.xcom(dag_id, run_id, "verify_backup")
        assert backup["action"] == "ran" and verified["ok"] is True
        if chain:
            assert (target["kind"], target["base_backup_id"]) == ("incremental", chain[-1]["backup_id"]), target
            assert target["last_backup_ts"] == chain[-1]["backup_ts"]
        else:
            assert target["kind"] == "full"
        row = catalog.get(target["backup_id"])
        assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified, row
        assert (row.dag_id, row.run_id, row.try_number) == (dag_id, run_id, 1)
        assert row.triggered_by and row.triggered_by.startswith("manual")
        assert row.backup_ts == backup["backup_ts"] and row.manifest_uri
        # named and catalogued by when the run really started, not its logical date (6 h earlier for the full)
        run_started = datetime.fromisoformat(airflow.run(dag_id, run_id)["start_date"])
        assert abs(row.started_at - run_started) < timedelta(seconds=1), (row.started_at, run_started)
        assert target["backup_id"].split("-")[2] == run_started.strftime("%Y%m%dt%H%M%Sz"), target["backup_id"]
        assert row.scheduled_for is None  # a manual run has no slot
        # the verified backup is an event of the cluster's Asset, with its id, BackupTS and size
        (event,) = asset_events(airflow, dag_id, run_id)
        assert (event["uri"], event["source_task_id"]) == ("x-tidb://dev/backups", "verify_backup"), event
        extra = event["extra"]
        assert (extra["backup_id"], extra["backup_ts"]) == (row.id, row.backup_ts), extra
        assert extra["size_bytes"] == row.size_bytes and row.size_bytes, (extra, row.size_bytes)
        keys = bucket.objects(bucket.key(target["storage_uri"]) + "/")
        assert {"backupmeta", "tidbops-manifest.json"} <= {k.rsplit("/", 1)[-1] for k in keys}
        chain.append({**target, "backup_ts": backup["backup_ts"]})
    print(f"\n3 backup runs on dev: {time.monotonic() - started:.1f}s")
    assert [b.id for b in catalog.chain("dev")] == [b["backup_id"] for b in chain]
    assert catalog.chain("dev")[0].kind is BackupKind.FULL

    scratch = registry.clusters["scratch1"]
    restore_started = time.monotonic()
    try:
        for b in chain:
            restore_full(playground_home, registry, scratch, b["storage_uri"], tmp_path)
        restored = table_digests(scratch)
        source = table_digests(registry.clusters["dev"], as_of_ts=chain[-1]["backup_ts"])
        assert len(restored) >= 7 and restored == source
        assert table_digests(registry.clusters["dev"], as_of_ts=chain[0]["backup_ts"]) != source, (
            "the writer changed nothing between the full and the last incremental: the test proves little"
        )
    finally:
        drop_user_schemas(scratch)
    print(f"restore of the chain into scratch1 and compare: {time.monotonic() - restore_started:.1f}s")


# ---------------------------------------------------------------- uat: BR fails midway, retry, adoption


def test_br_failing_midway_then_retry_then_adoption(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    dag_id = f"{FULL}__uat"
    others_before = {k: v for k, v in bucket.objects().items() if not k.startswith("uat/")}
    faults.set_fault(playground_home, "uat", "backup_fail_midway")
    try:
        airflow.wait_for_dag(dag_id)
        airflow.unpause(dag_id)
        run_id = airflow.trigger(dag_id, note="e2e: BR fails midway")
        airflow.wait_task(dag_id, run_id, "run_br_backup", {"up_for_retry", "failed"})
    finally:
        faults.clear_faults(playground_home, "uat")
    log1 = airflow.task_log(dag_id, run_id, "run_br_backup", 1)
    assert "[BR:KV:ErrKVStorage]" in log1 and "No space left on device" in log1
    target = airflow.xcom(dag_id, run_id, "plan_backup")
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.FAILED and row.try_number == 1
    assert row.error and "[BR:KV:ErrKVStorage]" in row.error
    prefix = bucket.key(target["storage_uri"]) + "/"
    partial = {k.removeprefix(prefix) for k in bucket.objects(prefix)}
    assert partial and "backupmeta" not in partial and "tidbops-manifest.json" not in partial

    airflow.clear_task(dag_id, run_id, "run_br_backup")
    assert airflow.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", airflow.run_logs(dag_id, run_id)[
        -6000:
    ]
    log2 = airflow.task_log(dag_id, run_id, "run_br_backup", 2)
    assert "cleared" in log2 and "without a backupmeta" in log2
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified and row.try_number == 2
    assert row.encryption_method == "aes256-ctr" and row.error is None
    done = bucket.objects(prefix)
    assert {"backupmeta", "tidbops-manifest.json"} <= {k.removeprefix(prefix) for k in done}

    airflow.clear_task(dag_id, run_id, "run_br_backup")
    assert airflow.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", airflow.run_logs(dag_id, run_id)[
        -6000:
    ]
    log3 = airflow.task_log(dag_id, run_id, "run_br_backup", 3)
    assert "adopted backup" in log3 and "BR not run again" in log3 and "running: br backup" not in log3
    assert airflow.xcom(dag_id, run_id, "run_br_backup")["action"] == "adopted"
    assert bucket.objects(prefix) == done, "a completed backup was written over"
    again = catalog.get(target["backup_id"])
    assert again is not None and again.backup_ts == row.backup_ts and again.status is BackupStatus.SUCCEEDED
    others_after = {k: v for k, v in bucket.objects().items() if not k.startswith("uat/")}
    assert others_after == others_before, "another cluster's backups changed"


# ------------------------------------------------------------------------------------ no secret leaks


def _secrets(home: Path, registry: Registry) -> dict[str, str]:
    assert registry.s3 is not None
    found = {"S3 secret key": registry.s3.secret_key}
    env = manager.playground_env(home)
    for name in ("uat", "prod"):
        found[f"crypter key of {name}"] = json.loads(env[f"AIRFLOW_CONN_BR_CRYPTER_{name.upper()}"])["password"]
    for name, entry in registry.clusters.items():
        found[f"DB password of {name}"] = entry.sql_password
    return found


def test_no_secret_in_logs_xcom_rendered_templates_catalog_or_manifests(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    dag_ids = [f"{p}__{c}" for p in (FULL, INCR) for c in ("dev", "uat", "prod")]
    runs = []
    for dag_id in dag_ids:
        airflow.wait_for_dag(dag_id)
        answer = airflow._request("GET", f"/api/v2/dags/{dag_id}/dagRuns")
        runs += [(dag_id, r["dag_run_id"]) for r in answer["dag_runs"]]
    if not any(d == f"{FULL}__uat" for d, _ in runs):  # run alone: make an encrypted backup to look at
        run_id, state = run_dag(airflow, f"{FULL}__uat")
        assert state == "success"
        runs.append((f"{FULL}__uat", run_id))
    texts: dict[str, str] = {}
    for dag_id, run_id in runs:
        rid = urllib.parse.quote(run_id, safe="")
        for ti in airflow.task_instances(dag_id, run_id):
            task = ti["task_id"]
            where = f"{dag_id}/{run_id}/{task}"
            for n in range(1, int(ti["try_number"] or 0) + 1):
                texts[f"log {where} try {n}"] = airflow.task_log(dag_id, run_id, task, n)
            detail = airflow._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task}")
            texts[f"rendered {where}"] = json.dumps(detail.get("rendered_fields"))
            entries = airflow._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task}/xcomEntries")
            for entry in entries["xcom_entries"]:
                texts[f"xcom {where} {entry['key']}"] = json.dumps(airflow.xcom(dag_id, run_id, task, entry["key"]))
    for b in catalog.list_backups():
        texts[f"catalog row {b.id}"] = repr(b)
    for e in catalog.list_events(limit=100_000):
        texts[f"catalog event {e.id}"] = repr(e)
    assert registry.s3 is not None
    for key in bucket.objects():
        if key.endswith("tidbops-manifest.json"):
            texts[f"manifest {key}"] = bucket.get(key).decode()
    assert sum(k.startswith("log ") for k in texts) >= 10 and any("run_br_backup" in k for k in texts)
    assert any(k.startswith("xcom ") for k in texts) and any(k.startswith("catalog row") for k in texts)
    logs = "\n".join(v for k, v in texts.items() if k.startswith("log "))
    assert "running: br backup full" in logs and "--crypter.key-file" in logs, "the logs are not what we think"
    leaks = [
        f"{what} in {where}"
        for what, secret in _secrets(playground_home, registry).items()
        for where, text in texts.items()
        if secret in text
    ]
    assert leaks == [], leaks
