"""The backup pipeline through a real Airflow when things break, on the playground's prod and dev.

* BR hangs (fault ``backup_hang``): the cluster's ``br.timeout`` (40 s in the e2e fleet) kills BR's
  whole process group; the task fails with the timeout, the row is ``failed``; with the fault gone,
  the retry succeeds.
* The source database is down (its MariaDB stopped): ``check_cluster`` fails with one line naming the
  connection and the address; nothing is planned, nothing is catalogued; once it is back, clearing the
  task finishes the run.
* S3 is down, first before the run (``plan_backup`` fails naming the endpoint), then while BR runs
  (BR fails writing its ``backupmeta``: the row is ``failed`` with BR's storage error, no manifest);
  once S3 is back (with its objects: the playground's S3 keeps them in memory, so the test puts them
  back as a real S3 would have kept them), the retry clears BR's partial files and succeeds.
* The catalog database is down (the SQLite file replaced by a directory, so it cannot be opened): the
  backup still runs, is verified against its manifest and lands; ``tidbops catalog rebuild`` restores
  its row from the manifest once the catalog is back.

Nothing is ever marked succeeded when it did not succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tidbops.catalog.records import BackupStatus
from tidbops.catalog.store import Catalog
from tidbops_playground import faults, manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

FULL = "tidb_backup_full"
RUN_TIMEOUT = 240.0
FAILED = {"up_for_retry", "failed"}


def trigger(api: AirflowAPI, dag_id: str, note: str) -> str:
    api.wait_for_dag(dag_id)
    api.unpause(dag_id)
    return api.trigger(dag_id, note=note)


def rows_of_run(catalog: Catalog, cluster: str, run_id: str) -> list[tuple[str, BackupStatus]]:
    return [(b.id, b.status) for b in catalog.list_backups(cluster) if b.run_id == run_id]


def br_processes(pd: str) -> list[str]:
    """Command lines of running ``br`` processes that talk to the PD at ``pd``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        # a real br binary, or the emulator (its bin/br execs `python -m tidbops_playground.br`)
        if any(w.endswith("/br") or w in ("br", "tidbops_playground.br") for w in words[:3]) and pd in words:
            found.append(" ".join(words))
    return found


def assert_not_succeeded(catalog: Catalog, backup_id: str) -> None:
    row = catalog.get(backup_id)
    assert row is None or (row.status is not BackupStatus.SUCCEEDED and not row.verified), row


# ---------------------------------------------------------------------------------------- BR hangs


def test_a_hanging_br_is_killed_at_the_timeout_and_the_retry_succeeds(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    dag_id, pd = f"{FULL}__prod", registry.clusters["prod"].pd
    faults.set_fault(playground_home, "prod", "backup_hang")
    try:
        run_id = trigger(airflow, dag_id, "e2e: BR hangs")
        airflow.wait_task(dag_id, run_id, "run_br_backup", {"running"}, timeout=120)
        started = time.monotonic()
        airflow.wait_task(dag_id, run_id, "run_br_backup", FAILED, timeout=150)
        took = time.monotonic() - started
    finally:
        faults.clear_faults(playground_home, "prod")
    assert took < 90, f"BR's timeout is 40 s, the task took {took:.0f} s to fail"
    assert br_processes(pd) == [], "a br process survived the timeout"
    log = airflow.task_log(dag_id, run_id, "run_br_backup", 1)
    assert "running: br backup full" in log
    assert "br did not finish within 40s; its process group was killed" in log
    target = airflow.xcom(dag_id, run_id, "plan_backup")
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.FAILED and not row.verified
    assert row.error and "did not finish within 40s" in row.error
    names = {k.rsplit("/", 1)[-1] for k in bucket.objects(bucket.key(target["storage_uri"]) + "/")}
    assert "backupmeta" not in names and "tidbops-manifest.json" not in names

    airflow.clear_task(dag_id, run_id, "run_br_backup")
    assert airflow.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", airflow.run_logs(dag_id, run_id)[
        -6000:
    ]
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified and row.try_number == 2


# ---------------------------------------------------------------------------------- source DB down


@contextmanager
def database_down(home: Path, cluster: str) -> Iterator[None]:
    instance = manager.instance(home, cluster)
    instance.stop()
    try:
        yield
    finally:
        instance.start()


def test_the_source_database_down_fails_the_check_with_one_clear_line(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog
) -> None:
    dag_id, entry = f"{FULL}__prod", registry.clusters["prod"]
    with database_down(playground_home, "prod"):
        run_id = trigger(airflow, dag_id, "e2e: source database down")
        airflow.wait_task(dag_id, run_id, "check_cluster", FAILED)
        states = {t["task_id"]: t["state"] for t in airflow.task_instances(dag_id, run_id)}
        log = airflow.task_log(dag_id, run_id, "check_cluster", 1)
    assert "TiDBUnreachableError" in log
    assert f"TiDB of connection 'tidb_prod' at {entry.sql_host}:{entry.sql_port} does not answer" in log
    assert "Can't connect" in log and entry.sql_password not in log
    assert all(states[t] is None for t in ("plan_backup", "run_br_backup", "record_backup")), states
    assert rows_of_run(catalog, "prod", run_id) == []

    airflow.clear_task(dag_id, run_id, "check_cluster")  # the database is back: the run finishes
    assert airflow.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", airflow.run_logs(dag_id, run_id)[
        -6000:
    ]
    assert [s for _, s in rows_of_run(catalog, "prod", run_id)] == [BackupStatus.SUCCEEDED]


# ------------------------------------------------------------------------------------------ S3 down


@contextmanager
def s3_down(home: Path, bucket: manager.Bucket) -> Iterator[None]:
    """Stop the S3 server; on the way out start it again with every object it had."""
    objects = bucket.snapshot()
    server = manager.s3_server(home)
    server.stop()
    try:
        yield
    finally:
        server.start()
        bucket.restore(objects)


def wait_partial_backup(bucket: manager.Bucket, prefix: str, timeout: float = 90) -> dict[str, str]:
    """Wait until BR has written data files below ``prefix`` (and stopped adding: the fault's pause)."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        now = bucket.objects(prefix)
        if len(now) >= 2 and now == last:
            assert not any(k.endswith("/backupmeta") for k in now), "BR finished before S3 went down"
            return now
        last = now
        time.sleep(1.5)
    raise AssertionError(f"BR wrote no data files below {prefix} within {timeout}s: {sorted(last)}")


def test_s3_down_before_and_during_br_then_back(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    dag_id = f"{FULL}__prod"
    assert registry.s3 is not None
    others_before = {k: v for k, v in bucket.objects().items() if not k.startswith("prod/")}

    # down before the run: the plan cannot look at the storage
    with s3_down(playground_home, bucket):
        run_id = trigger(airflow, dag_id, "e2e: S3 down")
        airflow.wait_task(dag_id, run_id, "plan_backup", FAILED)
        log = airflow.task_log(dag_id, run_id, "plan_backup", 1)
    # prod's storage connection assumes a role in the e2e fleet (conftest), and moto serves STS too: the
    # AssumeRole, made before any storage call, is what finds the endpoint gone
    assert (
        f"connection 's3_playground_role': the STS endpoint {registry.s3.endpoint} does not answer "
        "(Could not connect to the endpoint URL)" in log
    ), log[-3000:]
    assert rows_of_run(catalog, "prod", run_id) == []

    # down while BR runs: BR writes its data files, pauses (fault backup_slow), S3 goes away
    faults.set_fault(playground_home, "prod", "backup_slow", seconds=20)
    try:
        airflow.clear_task(dag_id, run_id, "plan_backup")
        airflow.wait_task(dag_id, run_id, "run_br_backup", {"running"}, timeout=120)
        target = airflow.xcom(dag_id, run_id, "plan_backup")
        prefix = bucket.key(target["storage_uri"]) + "/"
        partial = wait_partial_backup(bucket, prefix)
        with s3_down(playground_home, bucket):
            airflow.wait_task(dag_id, run_id, "run_br_backup", FAILED, timeout=120)
            br_log = airflow.task_log(dag_id, run_id, "run_br_backup", 1)
            assert_not_succeeded(catalog, target["backup_id"])
    finally:
        faults.clear_faults(playground_home, "prod")
    assert "[BR:ExternalStorage:ErrStorageUnknown]" in br_log and "backupmeta" in br_log, br_log[-3000:]
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.FAILED and "ErrStorageUnknown" in (row.error or "")
    assert set(bucket.objects(prefix)) == set(partial), "S3 came back without what it had"

    airflow.clear_task(dag_id, run_id, "run_br_backup")
    assert airflow.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", airflow.run_logs(dag_id, run_id)[
        -6000:
    ]
    assert "without a backupmeta" in airflow.task_log(dag_id, run_id, "run_br_backup", 2)
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified
    assert {"backupmeta", "tidbops-manifest.json"} <= {k.removeprefix(prefix) for k in bucket.objects(prefix)}
    others_after = {k: v for k, v in bucket.objects().items() if not k.startswith("prod/")}
    assert others_after == others_before, "another cluster's backups changed"


# ------------------------------------------------------------------------------------- catalog down


@contextmanager
def catalog_down(path: Path) -> Iterator[None]:
    """The SQLite catalog cannot be opened: its file moved away and a directory put in its place."""
    aside = path.with_suffix(".db.aside")
    path.rename(aside)
    path.mkdir()
    try:
        yield
    finally:
        path.rmdir()
        aside.rename(path)


def test_catalog_down_the_backup_lands_and_rebuild_restores_its_row(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    dag_id = f"{FULL}__dev"
    assert registry.s3 is not None
    path = playground_home / "airflow" / "tidbops_catalog.db"
    airflow.wait_for_dag(dag_id)
    with catalog_down(path):
        run_id = trigger(airflow, dag_id, "e2e: catalog down")
        state = airflow.wait_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", airflow.run_logs(dag_id, run_id)[-6000:]
    target = airflow.xcom(dag_id, run_id, "plan_backup")
    backup = airflow.xcom(dag_id, run_id, "run_br_backup")
    verified = airflow.xcom(dag_id, run_id, "verify_backup")
    assert backup["action"] == "ran" and backup["catalog"] == "unavailable" and verified["ok"] is True
    log = airflow.task_log(dag_id, run_id, "run_br_backup", 1)
    assert "the backup catalog does not answer" in log and "unable to open database file" in log
    assert catalog.get(target["backup_id"]) is None, "the row came from somewhere while the catalog was down"
    prefix = bucket.key(target["storage_uri"]) + "/"
    assert {"backupmeta", "tidbops-manifest.json"} <= {k.removeprefix(prefix) for k in bucket.objects(prefix)}

    env = {
        **os.environ,
        **manager.playground_env(playground_home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    tidbops = shutil.which("tidbops", path=str(Path(sys.executable).parent)) or "tidbops"
    argv = [
        tidbops, "catalog", "rebuild", "--cluster", "dev", "--catalog", f"sqlite:///{path}",
        "--storage", f"s3://{registry.s3.bucket}", "--s3-endpoint", registry.s3.endpoint, "--verify",
    ]  # fmt: skip
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified, row
    assert (row.backup_ts, row.dag_id, row.run_id) == (backup["backup_ts"], dag_id, run_id)
    assert registry.s3.secret_key not in proc.stdout + proc.stderr
