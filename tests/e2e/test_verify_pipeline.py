"""`tidb_verify__dev` through a real Airflow on the playground (#16).

After a full backup of dev: the verify run passes tier 1 (every object read back from S3) and tier 2
(`br debug checksum` by the emulator, in the pool `br_dev`), and the catalog row holds tier 2. A second
run re-reads the files but finds tier 2 not due. Then one data object is changed in the bucket (same
size, one byte flipped): the run fails at `verify_files` naming the backup and the file, the row is
unverified, and `verify_br_checksum` does not run (upstream_failed): the run is red.
"""

from __future__ import annotations

import pytest

from tidbops.catalog.store import Catalog
from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI

pytestmark = pytest.mark.e2e

VERIFY, FULL = "tidb_verify__dev", "tidb_backup_full__dev"


def test_verify_after_a_backup_then_a_damaged_object(
    airflow: AirflowAPI, catalog: Catalog, bucket: manager.Bucket
) -> None:
    run_id, state = airflow.run_dag(FULL, note="e2e verify")
    assert state == "success", airflow.run_logs(FULL, run_id)[-6000:]
    backup_id = airflow.xcom(FULL, run_id, "plan_backup")["backup_id"]

    run_id, state = airflow.run_dag(VERIFY, note="e2e verify")
    assert state == "success", airflow.run_logs(VERIFY, run_id)[-6000:]
    files = airflow.xcom(VERIFY, run_id, "verify_files")
    assert backup_id in {c["backup_id"] for c in files["checks"]} and files["ok"] is True
    checksum = airflow.xcom(VERIFY, run_id, "verify_br_checksum")
    mine = next((c for c in checksum["checks"] if c["backup_id"] == backup_id), None)
    assert mine is not None, checksum["skipped"]
    assert mine["ok"] and mine["detail"].startswith("br debug checksum: ok: backup data checksum succeed!")
    row = catalog.get(backup_id)
    assert row is not None and row.verified and row.verified_tier == 2

    run_id, state = airflow.run_dag(VERIFY, note="e2e verify")
    assert state == "success", airflow.run_logs(VERIFY, run_id)[-6000:]
    again = airflow.xcom(VERIFY, run_id, "verify_br_checksum")
    assert backup_id in {s["backup_id"] for s in again["skipped"]}
    assert backup_id not in {c["backup_id"] for c in again["checks"]}

    prefix = bucket.key(row.storage_uri) + "/"
    sst = sorted(k for k in bucket.objects(prefix) if k.endswith(".sst"))[0]
    original = bucket.get(sst)
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    bucket.client.put_object(Bucket=bucket.name, Key=sst, Body=bytes(damaged))
    try:
        run_id, state = airflow.run_dag(VERIFY, note="e2e verify", timeout=600)  # verify_files fails after its retries
        assert state == "failed"
        states = {t["task_id"]: t["state"] for t in airflow.task_instances(VERIFY, run_id)}
        assert states == {"verify_files": "failed", "verify_br_checksum": "upstream_failed"}, states
        tries = int(airflow.task_instance(VERIFY, run_id, "verify_files")["try_number"])
        log = airflow.task_log_text(VERIFY, run_id, "verify_files", try_number=tries)
        relative = sst[len(prefix) :]
        assert f"backup {backup_id} (cluster dev) failed tier 1: read back: FAILED" in log
        assert f"1 wrong sha256 ({relative})" in log
        row = catalog.get(backup_id)
        assert row is not None and row.verify_failed and row.verified_tier is None
    finally:
        bucket.client.put_object(Bucket=bucket.name, Key=sst, Body=original)
