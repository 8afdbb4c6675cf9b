"""Restore drills through a real Airflow (REST API) on the playground, the writers running.

* dev (snapshot mode): a full backup and an incremental, then ``tidb_restore_drill__dev``: the chain is
  restored into scratch1, validated against dev as of the last BackupTS (schema, chunked fingerprints,
  the expectation suites), recorded with its RTO and rows checked; the Data Docs are readable in the
  bucket; scratch1 is empty afterwards.
* a corrupted restore (the emulator's ``restore_corrupt_rows`` on scratch1): the drill fails in
  ``validate_restored_data`` naming ``shop.orders`` and the key range of the changed rows, scratch1 is
  still dropped, the alert goes out (the ``log`` route), the catalog row says failed.
* a drill asked to restore into a cluster not marked scratch (a run's ``target``) is refused at run time
  and touches nothing; a fleet config naming one as ``drill.target`` is refused at load.
* uat (PITR mode, encrypted backups): log backup running, a full backup, then the drill restores a point
  inside the window (waiting for the log checkpoint) and passes.
* #16: each drill records its basis (TiDB and BR versions, encryption method and key id, storage); the
  backups a passed drill used reach verified_tier 3, a snapshot drill whose data differs marks them failed;
  no hold remains once a drill is recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pymysql
import pytest
import yaml

from tidbops import tso
from tidbops.catalog.records import DrillStatus
from tidbops.catalog.store import Catalog
from tidbops.config import load_fleet
from tidbops_playground import faults, manager
from tidbops_playground.airflow import AirflowAPI, AirflowError
from tidbops_playground.registry import ClusterEntry, Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DRILL = "tidb_restore_drill"
NOTE = "e2e restore drill"
CHUNK_ROWS = 200  # the e2e playground has 3000 rows per source: several chunks per big table


def connect(entry: ClusterEntry) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    conn = pymysql.connect(
        host=entry.sql_host, port=entry.sql_port, user=entry.sql_user, password=entry.sql_password, autocommit=True
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return conn


def user_schemas(entry: ClusterEntry) -> list[str]:
    conn = connect(entry)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
            system = {"mysql", "sys", "information_schema", "performance_schema"}
            return [r[0] for r in cur.fetchall() if r[0].lower() not in system]
    finally:
        conn.close()


def states(api: AirflowAPI, dag_id: str, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in api.task_instances(dag_id, run_id)}


@pytest.fixture(scope="module")
def dev_chain(airflow: AirflowAPI, catalog: Catalog) -> list[str]:
    """dev's chain ending in a fresh incremental (the history at its BackupTS is still there): the
    incremental pipeline builds on the chain earlier tests left, else starts one with a full backup."""
    dag_id = "tidb_backup_incremental__dev"
    for _ in range(2):
        run_id, state = airflow.run_dag(dag_id, note=NOTE)
        assert state == "success", airflow.run_logs(dag_id, run_id)[-6000:]
        plan = airflow.xcom(dag_id, run_id, "plan_backup")
        if plan["kind"] == "incremental":
            break
    chain = [b.id for b in catalog.chain("dev")]
    assert len(chain) >= 2 and chain[-1] == plan["backup_id"], chain
    return chain


# --------------------------------------------------------------------------------- snapshot drill


def test_snapshot_chain_drill_passes_with_rto_and_data_docs(
    airflow: AirflowAPI, registry: Registry, catalog: Catalog, bucket: manager.Bucket, dev_chain: list[str]
) -> None:
    dag_id = f"{DRILL}__dev"
    started = time.monotonic()
    run_id, state = airflow.run_dag(dag_id, conf={"chunk_rows": CHUNK_ROWS}, note=NOTE)
    elapsed = time.monotonic() - started
    assert state == "success", airflow.run_logs(dag_id, run_id)[-8000:]
    assert set(states(airflow, dag_id, run_id).values()) == {"success"}

    plan = airflow.xcom(dag_id, run_id, "choose_restore_point")
    assert plan["mode"] == "snapshot" and plan["target"] == "scratch1"
    assert [s["backup_id"] for s in plan["steps"]] == dev_chain
    assert [s["kind"] for s in plan["steps"]] == ["full"] + ["incremental"] * (len(dev_chain) - 1)
    last = catalog.get(dev_chain[-1])
    assert last is not None and plan["restore_ts"] == last.backup_ts

    restore = airflow.xcom(dag_id, run_id, "restore_to_scratch")
    assert restore["restore_seconds"] > 0 and len(restore["runs"]) == len(plan["steps"])
    validation = airflow.xcom(dag_id, run_id, "validate_restored_data")
    assert validation["ok"] and validation["tables_checked"] == 7 and validation["mismatches"] == 0
    assert "FOR SYSTEM_TIME AS OF" in validation["source_read"]
    orders = next(t for t in validation["tables"] if t["table"] == "shop.orders")
    assert orders["content"]["chunks"] > 1 and orders["content"]["source_rows"] == orders["content"]["target_rows"]
    gx = validation["expectations"]
    assert gx["ok"] and gx["success_ratio"] == 1.0 and gx["evaluated"] >= 40 and len(gx["suites"]) == 7

    record = airflow.xcom(dag_id, run_id, "record_drill")
    assert record["passed"] and record["scratch_dropped"] and record["error"] is None
    row = catalog.get_drill(record["drill_id"])
    assert row is not None and row.status is DrillStatus.PASSED
    assert row.restore_ts == plan["restore_ts"] and list(row.backups_used) == [s["backup_id"] for s in plan["steps"]]
    assert row.restore_seconds and row.validation_seconds and row.rto_seconds
    assert row.tables_checked == 7 and row.rows_checked == validation["rows_checked"] > 2000
    assert row.mismatches == 0 and row.gx_success_ratio == 1.0
    assert row.data_docs_uri and row.data_docs_uri.endswith(f"dev/drills/{row.id}/data_docs/index.html")

    # the Data Docs and the report are in the bucket, readable
    index = bucket.get(bucket.key(row.data_docs_uri)).decode()
    assert "<html" in index.lower() and "shop.orders" in index
    prefix = bucket.key(row.data_docs_uri).rsplit("/", 1)[0] + "/"
    pages = [k for k in bucket.objects(prefix) if "/validations/" in k and k.endswith(".html")]
    assert len(pages) == 7, pages
    assert row.report_uri is not None
    report = json.loads(bucket.get(bucket.key(row.report_uri)))
    assert report["status"] == "passed" and report["rto_seconds"] == row.rto_seconds
    assert user_schemas(registry.clusters["scratch1"]) == [], "the scratch cluster was not dropped"

    # #16: the basis the verdict stood on, tier 3 for the chain, and no hold left behind
    check = airflow.xcom(dag_id, run_id, "check_drill_due")
    assert check["due"] and check["reason"] == "a manual run", check
    dev = registry.clusters["dev"]
    assert row.basis == check["basis"] == report["basis"], (row.basis, check["basis"])
    assert row.basis["tidb_version"] == dev.tidb_version and re.fullmatch(r"v\d+\.\d+\.\d+\S*", row.basis["br_version"])
    assert row.basis["storage_uri"] == "s3://tidbops-backups"
    assert (row.basis["encryption_method"], row.basis["encryption_key_id"]) == ("plaintext", "none")
    for backup_id in row.backups_used:
        used = catalog.get(backup_id)
        assert used is not None and used.verified and used.verified_tier == 3, (backup_id, used)
    assert catalog.held_backups("dev") == {}, "the drill's holds outlived it"
    print(f"\nsnapshot drill of dev: {elapsed:.1f}s through Airflow; RTO {row.rto_seconds}s "
          f"({row.restore_seconds}s restore + {row.validation_seconds}s validation), {row.rows_checked} rows")  # fmt: skip


# ------------------------------------------------------------------------------ corrupted restore


def middle_ids(entry: ClusterEntry, restore_ts: int, rows: int = 3) -> list[int]:
    """The ids of shop.orders the fault changes: the middle of the key order of the restored rows."""
    micros = tso.physical_ms(restore_ts) * 1000 + min(tso.logical(restore_ts), 999)
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(micros // 1_000_000)) + f".{micros % 1_000_000:06d}"
    conn = connect(entry)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM shop.orders FOR SYSTEM_TIME AS OF TIMESTAMP '{at}' ORDER BY id")
            ids = [int(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()
    start = max(0, len(ids) // 2 - rows // 2)
    return ids[start : start + rows]


def test_a_corrupted_restore_fails_naming_the_table_and_key_range_drops_the_scratch_and_alerts(
    airflow: AirflowAPI,
    playground_home: Path,
    registry: Registry,
    catalog: Catalog,
    dev_chain: list[str],
) -> None:
    dag_id = f"{DRILL}__dev"
    faults.set_fault(playground_home, "scratch1", "restore_corrupt_rows", table="shop.orders", rows=3)
    try:
        run_id, state = airflow.run_dag(dag_id, conf={"chunk_rows": CHUNK_ROWS}, note=NOTE)
    finally:
        faults.clear_faults(playground_home, "scratch1")
    assert state == "failed"
    got = states(airflow, dag_id, run_id)
    assert got["restore_to_scratch"] == "success", "BR itself saw nothing wrong (a silent corruption)"
    assert got["validate_restored_data"] == "failed"
    assert got["drop_scratch"] == "success" and got["record_drill"] == "success"
    assert got["assert_drill_passed"] == "failed"
    assert user_schemas(registry.clusters["scratch1"]) == [], "the scratch cluster was not dropped"

    plan = airflow.xcom(dag_id, run_id, "choose_restore_point")
    changed = middle_ids(registry.clusters["dev"], plan["restore_ts"])
    log = airflow.task_log(dag_id, run_id, "validate_restored_data", 1)
    ranges = [
        (int(a), int(b))
        for a, b in re.findall(
            r"shop\.orders: \(id\) in \((\d+), (\d+)\]: \d+ rows on both sides, contents differ", log
        )
    ]
    assert ranges, log[-4000:]
    assert all(any(lo < i <= hi for lo, hi in ranges) for i in changed), (changed, ranges)
    assert "ALERT" in log and '"task_id": "validate_restored_data"' in log, "no alert through the log route"
    assert airflow.task_instance(dag_id, run_id, "validate_restored_data")["try_number"] == 1, "retried a data mismatch"

    record = airflow.xcom(dag_id, run_id, "record_drill")
    assert not record["passed"] and record["scratch_dropped"]
    assert "shop.orders" in record["error"] and "contents differ" in record["error"]
    row = catalog.get_drill(record["drill_id"])
    assert row is not None and row.status is DrillStatus.FAILED and row.mismatches and row.mismatches >= 1
    assert row.error and "shop.orders: (id) in (" in row.error
    assert row.restore_seconds is not None and row.data_docs_uri, "a failed drill keeps its RTO and Data Docs"
    assert any("shop.orders" in f for f in (row.details or {}).get("failures", []))
    # #16: the data was wrong, not the infrastructure: the chain it restored fails tier 3
    assert (row.details or {})["tier3"]["ok"] is False
    for backup_id in row.backups_used:
        used = catalog.get(backup_id)
        assert used is not None and used.verify_failed and used.verified_tier is None, (backup_id, used)
    assert catalog.held_backups("dev") == {}


# ------------------------------------------------------------------------------------ not scratch


def test_a_target_not_marked_scratch_is_refused_at_run_time_and_at_config_load(
    airflow: AirflowAPI, registry: Registry, catalog: Catalog, tmp_path: Path, dev_chain: list[str]
) -> None:
    uat = registry.clusters["uat"]
    before = user_schemas(uat)
    assert {"shop", "crm", "metrics"} <= set(before)
    dag_id = f"{DRILL}__dev"
    run_id, state = airflow.run_dag(dag_id, conf={"target": "uat"}, note=NOTE)
    assert state == "failed"
    got = states(airflow, dag_id, run_id)
    assert got["choose_restore_point"] == "failed", got  # refused before anything is chosen or touched
    assert got["prepare_scratch"] == "upstream_failed" and got["restore_to_scratch"] == "upstream_failed"
    assert got["drop_scratch"] == "success" and got["record_drill"] == "success"
    log = airflow.task_log(dag_id, run_id, "choose_restore_point", 1)
    assert "'uat' is not marked scratch: true" in log and "ALERT" in log
    assert airflow.task_instance(dag_id, run_id, "choose_restore_point")["try_number"] == 1
    assert user_schemas(uat) == before, "a cluster not marked scratch was touched"
    drop = airflow.xcom(dag_id, run_id, "drop_scratch")
    assert drop["dropped"] == [] and drop["target"] is None
    record = airflow.xcom(dag_id, run_id, "record_drill")
    assert not record["passed"] and "not marked scratch" in record["error"]

    # at config load: a drill.target that is not scratch makes the cluster invalid (its DAGs are not built)
    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    for cluster in doc["clusters"]:
        if cluster["name"] == "dev":
            cluster["drill"]["target"] = "uat"
    bad = tmp_path / "clusters.yaml"
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    fleet = load_fleet(bad)
    assert "dev" not in fleet.clusters
    assert any(
        i.cluster == "dev" and i.field == "drill.target" and "not marked scratch" in i.message for i in fleet.issues
    )


# ------------------------------------------------------------------------------------ PITR drill


def br(home: Path, registry: Registry, *args: str, check: bool = True) -> None:
    """``br`` as a DBA types it (S3 keys in the environment)."""
    assert registry.s3 is not None
    env = {
        **os.environ,
        **manager.playground_env(home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-drill-br.log")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 or not check, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_pitr_drill_of_an_encrypted_cluster_passes(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog
) -> None:
    uat = registry.clusters["uat"]
    config = load_fleet(REPO / "include/config/clusters.yaml").get("uat")
    task = config.log_backup.task_name
    assert task and config.drill.mode == "pitr" and config.drill.target == "scratch2"
    assert registry.s3 is not None
    # log backup running (a DBA's `br log start`, as tidb_log_backup_check would), stopped afterwards
    br(playground_home, registry, "log", "start", "--task-name", task, "--pd", uat.pd,
       "--storage", config.log_storage_uri, "--s3.endpoint", registry.s3.endpoint)  # fmt: skip
    try:
        run_id, state = airflow.run_dag("tidb_backup_full__uat", note=NOTE)
        assert state == "success", airflow.run_logs("tidb_backup_full__uat", run_id)[-6000:]
        time.sleep(2)  # some log after the full backup: the window runs from a full backup to the checkpoint

        dag_id = f"{DRILL}__uat"
        run_id, state = airflow.run_dag(dag_id, conf={"chunk_rows": CHUNK_ROWS, "seed": 20261122}, note=NOTE)
        assert state == "success", airflow.run_logs(dag_id, run_id)[-8000:]
        got = states(airflow, dag_id, run_id)
        assert set(got.values()) == {"success"} and "wait_for_log_checkpoint" in got, got
        plan = airflow.xcom(dag_id, run_id, "choose_restore_point")
        assert plan["mode"] == "pitr" and plan["seed"] == 20261122 and plan["target"] == "scratch2"
        assert plan["log_storage_uri"] == config.log_storage_uri and len(plan["steps"]) == 1
        fulls = [b for b in catalog.list_backups("uat", status="succeeded", kinds=["full"]) if b.backup_ts]
        base = max(
            (b for b in fulls if b.backup_ts and b.backup_ts < plan["restore_ts"]), key=lambda b: b.backup_ts or 0
        )
        assert plan["steps"][0]["backup_id"] == base.id, "the PITR starts from the newest full backup before the point"
        waited = airflow.xcom(dag_id, run_id, "wait_for_log_checkpoint")
        assert waited["checkpoint_ts"] >= plan["restore_ts"]
        log = airflow.task_log(dag_id, run_id, "restore_to_scratch", 1)
        assert "br restore point" in log and "--full-backup-storage" in log and "--restored-ts" in log
        assert "--crypter.key-file" in log

        record = airflow.xcom(dag_id, run_id, "record_drill")
        assert record["passed"] and record["scratch_dropped"], record
        row = catalog.get_drill(record["drill_id"])
        assert row is not None and row.status is DrillStatus.PASSED and row.mode == "pitr"
        assert row.point_seed == 20261122 and row.restore_ts == plan["restore_ts"] and row.backups_used == (base.id,)
        assert row.tables_checked == 7 and row.rows_checked and row.mismatches == 0 and row.gx_success_ratio == 1.0
        assert row.rto_seconds and row.data_docs_uri
        assert user_schemas(registry.clusters["scratch2"]) == []
        # #16: an encrypted cluster's basis names its key by connection and keyed-hash prefix, never the key
        assert row.basis is not None and row.basis["encryption_method"] == "aes256-ctr"
        assert re.fullmatch(r"br_crypter_uat:[0-9a-f]{12}", row.basis["encryption_key_id"]), row.basis
        key = json.loads(manager.playground_env(playground_home)["AIRFLOW_CONN_BR_CRYPTER_UAT"])["password"]
        assert key not in json.dumps(row.basis) and key[:12] not in json.dumps(row.basis)
        used = catalog.get(base.id)
        assert used is not None and used.verified_tier == 3
        assert catalog.held_backups("uat") == {}
        print(f"\nPITR drill of uat to {row.restore_time}: RTO {row.rto_seconds}s, {row.rows_checked} rows")
    finally:
        br(playground_home, registry, "log", "stop", "--task-name", task, "--pd", uat.pd, check=False)


# ------------------------------------------------------------------------------------ no secret leaks


def test_no_secret_in_drill_logs_xcom_catalog_reports_or_data_docs(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    assert registry.s3 is not None
    env = manager.playground_env(playground_home)
    secrets = {"S3 secret key": registry.s3.secret_key}
    for name in ("uat", "prod"):
        secrets[f"crypter key of {name}"] = json.loads(env[f"AIRFLOW_CONN_BR_CRYPTER_{name.upper()}"])["password"]
    for name, entry in registry.clusters.items():
        secrets[f"DB password of {name}"] = entry.sql_password
    texts: dict[str, str] = {}
    for cluster in ("dev", "uat"):
        dag_id = f"{DRILL}__{cluster}"
        for run in airflow._request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]:
            run_id = run["dag_run_id"]
            for ti in airflow.task_instances(dag_id, run_id):
                where = f"{dag_id}/{run_id}/{ti['task_id']}"
                for n in range(1, int(ti["try_number"] or 0) + 1):
                    texts[f"log {where} {n}"] = airflow.task_log(dag_id, run_id, ti["task_id"], n)
                texts[f"rendered {where}"] = json.dumps(ti.get("rendered_fields"))
                for key in ("return_value", "error"):
                    try:
                        texts[f"xcom {where} {key}"] = json.dumps(airflow.xcom(dag_id, run_id, ti["task_id"], key))
                    except AirflowError:  # no such XCom
                        continue
    for d in catalog.list_drills(limit=1000):
        texts[f"drill row {d.id}"] = repr(d)
    for e in catalog.list_events(limit=100_000):
        texts[f"event {e.id}"] = repr(e)
    for key in bucket.objects():
        if "/drills/" in key and key.endswith((".json", ".html")):
            texts[f"object {key}"] = bucket.get(key).decode(errors="replace")
    assert any("validate_restored_data" in k for k in texts) and any(k.startswith("object ") for k in texts)
    assert any("ALERT" in v for v in texts.values())
    leaks = [
        f"{what} in {where}" for what, secret in secrets.items() for where, text in texts.items() if secret in text
    ]
    assert leaks == [], leaks
