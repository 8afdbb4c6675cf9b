"""On-demand restores through a real Airflow (REST API, the DAG's Params) on the playground.

* dev, log backup running: a full backup, then a PITR restore of two tables (``shop.customers``,
  ``crm.contacts``) to a chosen second, given in +01:00, into scratch1, triggered by the user ``dba``:
  scratch1 holds exactly those tables, row for row as dev's history has them at that second; the
  ``restores`` row names ``dba`` and the reason; the run's note says ``RESTORED`` and the essentials; the
  restore is an event of the Airflow Asset ``x-tidb://scratch1/restores`` with its id, TSO and size.
* a dry run prints the plan (task log; the note starts with ``DRY RUN``) and changes nothing: no ``br
  restore`` runs, a database left in scratch1 stays.
* every guardrail, through the trigger form: the form itself offers only targets some source may use; a
  refusal is one line in the log (no traceback) and a ``REFUSED`` note, the message says what would be
  valid, and the BR emulator's journal shows no ``br restore`` (nor any BR call for the checks that need
  none).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymysql
import pytest

from tidbops import tso
from tidbops.catalog.records import BackupKind, NewBackup, RestoreStatus
from tidbops.catalog.store import Catalog
from tidbops.config import load_fleet
from tidbops_playground import journal, manager
from tidbops_playground.airflow import AirflowAPI, AirflowError
from tidbops_playground.registry import ClusterEntry, Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAG = "tidb_restore"
TABLES = ["shop.customers", "crm.contacts"]
REASON = "e2e: bad DELETE on shop.customers at 10:41"


# ------------------------------------------------------------------------------------------ helpers


def connect(entry: ClusterEntry) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    conn = pymysql.connect(
        host=entry.sql_host, port=entry.sql_port, user=entry.sql_user, password=entry.sql_password, autocommit=True
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return conn


def query(entry: ClusterEntry, sql: str) -> list[tuple[Any, ...]]:
    conn = connect(entry)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def user_schemas(entry: ClusterEntry) -> list[str]:
    system = {"mysql", "sys", "information_schema", "performance_schema"}
    return [r[0] for r in query(entry, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
            if r[0].lower() not in system]  # fmt: skip


def br(home: Path, registry: Registry, *args: str, check: bool = True) -> str:
    """``br`` as a DBA types it (S3 keys in the environment)."""
    assert registry.s3 is not None
    env = {
        **os.environ,
        **manager.playground_env(home),
        "AWS_ACCESS_KEY_ID": registry.s3.access_key,
        "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key,
    }
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-restore-br.log")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 or not check, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


class Journal:
    """The BR emulator's journal (``tidbops_playground.journal``): what BR was asked since ``mark()``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.offset = 0

    def mark(self) -> None:
        self.offset = journal.size(self.home)

    def since(self) -> list[dict[str, Any]]:
        return journal.read(self.home, self.offset)

    def commands(self) -> list[str]:
        return [" ".join(e["command"]) for e in self.since()]


def trigger(api: AirflowAPI, conf: dict[str, Any]) -> str:
    """Trigger a run. The playground Airflow keeps its metadata in SQLite: while the scheduler is busy, a
    trigger can fail with HTTP 500 ("database is locked", no run created); that one is tried again."""
    api.wait_for_dag(DAG)
    api.unpause(DAG)
    for attempt in range(4):
        try:
            return api.trigger(DAG, conf=conf)
        except AirflowError as exc:
            if "HTTP 500" not in str(exc) or attempt == 3:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")


def request(**kw: Any) -> dict[str, Any]:
    return {"source_cluster": "dev", "target_cluster": "scratch1", "reason": REASON, **kw}


def task_states(api: AirflowAPI, run_id: str) -> dict[str, str | None]:
    return {t["task_id"]: t["state"] for t in api.task_instances(DAG, run_id)}


@pytest.fixture(scope="module")
def dba(airflow: AirflowAPI, playground_home: Path) -> AirflowAPI:
    """The Airflow API as the user ``dba`` (the playground's second user)."""
    passwords = json.loads((playground_home / "airflow" / "passwords.json").read_text())
    return AirflowAPI(airflow.url, "dba", passwords["dba"])


@pytest.fixture(scope="module")
def dev_pitr(airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog) -> Iterator[str]:
    """dev with log backup running and a full backup after its start: a PITR window (yields the backup id)."""
    dev = registry.clusters["dev"]
    config = load_fleet(REPO / "include/config/clusters.yaml").get("dev")
    task = config.log_backup.task_name
    assert task and registry.s3 is not None
    status = br(playground_home, registry, "log", "status", "--pd", dev.pd, "--json")
    started = task not in status
    if started:
        br(playground_home, registry, "log", "start", "--task-name", task, "--pd", dev.pd,
           "--storage", config.log_storage_uri, "--s3.endpoint", registry.s3.endpoint)  # fmt: skip
    try:
        dag_id = "tidb_backup_full__dev"
        airflow.wait_for_dag(dag_id)
        airflow.unpause(dag_id)
        run_id = airflow.trigger(dag_id)
        assert airflow.wait_run(dag_id, run_id, timeout=300) == "success", airflow.run_logs(dag_id, run_id)[-6000:]
        plan = airflow.xcom(dag_id, run_id, "plan_backup")
        yield str(plan["backup_id"])
    finally:
        if started:
            br(playground_home, registry, "log", "stop", "--task-name", task, "--pd", dev.pd, check=False)


def wait_checkpoint(home: Path, registry: Registry, past: int, timeout: float = 120.0) -> None:
    """Until dev's log checkpoint passes TSO ``past`` (the emulator's daemon advances it every few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = br(home, registry, "log", "status", "--pd", registry.clusters["dev"].pd, "--json")
        tasks = json.loads(next(ln for ln in out.splitlines() if ln.startswith("[")))
        if tasks and min(int(t["checkpoint"]) for t in tasks) >= past:
            return
        time.sleep(2)
    raise AssertionError(f"dev's log checkpoint did not pass {past} in {timeout}s")


# --------------------------------------------------------------------------------- the real restore


def test_pitr_restore_of_two_tables_lands_exactly_the_rows_as_of_that_second(
    airflow: AirflowAPI, dba: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog,
    dev_pitr: str,
) -> None:  # fmt: skip
    dev, scratch1 = registry.clusters["dev"], registry.clusters["scratch1"]
    full = catalog.get(dev_pitr)
    assert full is not None and full.backup_ts is not None
    time.sleep(3)  # the writers change dev after the full backup: the point is not the backup
    point = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert tso.from_datetime(point) > full.backup_ts
    wait_checkpoint(playground_home, registry, tso.from_datetime(point))
    typed = point.astimezone(timezone(timedelta(hours=1))).isoformat()  # "…T10:41:07+01:00"
    marks = Journal(playground_home)
    marks.mark()

    run_id = trigger(dba, request(restore_point=typed, tables=TABLES, dry_run=False, validate_after=True))
    state = airflow.wait_run(DAG, run_id, timeout=300)
    assert state == "success", airflow.run_logs(DAG, run_id)[-8000:]
    states = task_states(airflow, run_id)
    assert states["restore__scratch1"] == "success" and states["validate"] == "success", states
    assert states["restore__scratch2"] == "skipped", states

    # exactly the two tables, each row as dev's history has it at that second
    assert user_schemas(scratch1) == ["crm", "shop"]
    restored_tables = query(
        scratch1, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('shop', 'crm')"
    )
    assert sorted(r[0] for r in restored_tables) == ["contacts", "customers"]
    at = point.strftime("%Y-%m-%d %H:%M:%S.%f")
    for table in TABLES:
        schema, name = table.split(".")
        names = query(
            scratch1,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            f"'{schema}' AND TABLE_NAME = '{name}' ORDER BY ORDINAL_POSITION",
        )
        columns = ", ".join(f"`{r[0]}`" for r in names)
        restored = query(scratch1, f"SELECT {columns} FROM {table} ORDER BY id")
        then = query(dev, f"SELECT {columns} FROM {table} FOR SYSTEM_TIME AS OF TIMESTAMP '{at}' ORDER BY id")
        now = query(dev, f"SELECT {columns} FROM {table} ORDER BY id")
        assert restored == then, f"{table}: the restored rows are not dev's as of {at}"
        assert len(restored) > 100
        print(f"\n{table}: {len(restored)} rows as of {at} ({'differs' if now != then else 'same'} as now)")

    # the BR call: one `restore point`, with the two filters, --restored-ts the chosen second
    assert [c for c in marks.commands() if c.startswith("restore")] == ["restore point"]
    log = airflow.task_log(DAG, run_id, "restore__scratch1", 1)
    assert "-f shop.customers -f crm.contacts" in log and f"--restored-ts {tso.from_datetime(point)}" in log

    # the audit row and the note
    record = airflow.xcom(DAG, run_id, "record_restore")
    row = catalog.get_restore(record["restore_id"])
    assert row is not None and row.status is RestoreStatus.SUCCEEDED, row
    assert row.requested_by == "dba" and row.reason == REASON and row.tables == tuple(TABLES)
    assert row.restore_ts == tso.from_datetime(point) and row.mode == "pitr" and row.backups_used[0] == dev_pitr
    assert row.restore_point == typed and row.validation_ok is True and row.restore_seconds
    assert row.plan is not None and row.plan["commands"]
    # #16: the restore held its backup from plan to record, and released it
    plan_log = airflow.task_log(DAG, run_id, "plan_restore", 1)
    assert f"restore {row.id} holds {dev_pitr} for" in plan_log, plan_log[-3000:]
    assert catalog.held_backups("dev") == {}, "the restore's holds outlived it"
    note = airflow.run(DAG, run_id).get("note") or ""
    assert note.startswith("**RESTORED** dev → scratch1") and "(requested by dba)" in note, note
    assert "br restore" not in note and len(note) < 1000, note  # the command lines are in the log
    # the restore as an event of the target's Asset, with its id, point and size
    events = airflow._request("GET", f"/api/v2/assets/events?source_dag_id={DAG}&source_run_id={quote(run_id)}")
    (event,) = events["asset_events"]
    assert (event["uri"], event["source_task_id"]) == ("x-tidb://scratch1/restores", "restore__scratch1"), event
    extra = event["extra"]
    assert (extra["restore_id"], extra["restore_ts"], extra["source"]) == (row.id, row.restore_ts, "dev"), extra
    assert extra["size_bytes"] == full.size_bytes and extra["requested_by"] == "dba", extra
    # no credential anywhere a user or the audit sees: task logs, XComs, the note, the restores row
    assert registry.s3 is not None
    secrets = {registry.s3.secret_key, registry.s3.access_key, dev.sql_password, scratch1.sql_password,
               json.loads((playground_home / "airflow" / "passwords.json").read_text())["admin"]}  # fmt: skip
    seen = [note, json.dumps(row.request), json.dumps(row.plan), str(row.error)]
    for task, state in task_states(airflow, run_id).items():
        if state != "skipped":
            seen.append(airflow.task_log(DAG, run_id, task, 1))
            with contextlib.suppress(AirflowError):  # a task that returned nothing has no XCom
                seen.append(json.dumps(airflow.xcom(DAG, run_id, task)))
    leaked = [s for s in secrets if any(s in text for text in seen)]
    assert not leaked, "a credential leaked into the logs, XCom, note or catalog"
    for db in ("crm", "shop"):  # scratch1 as the other tests expect it: empty
        query(scratch1, f"DROP DATABASE {db}")


# ------------------------------------------------------------------------------------------- dry run


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, dev_pitr: str
) -> None:
    scratch1 = registry.clusters["scratch1"]
    query(scratch1, "CREATE DATABASE IF NOT EXISTS left_by_someone")
    before = user_schemas(scratch1)
    marks = Journal(playground_home)
    marks.mark()
    run_id = trigger(airflow, request(restore_point=dev_pitr))
    assert airflow.wait_run(DAG, run_id, timeout=300) == "success", airflow.run_logs(DAG, run_id)[-6000:]
    states = task_states(airflow, run_id)
    assert states["plan_restore"] == states["record_restore"] == states["assert_restore_succeeded"] == "success"
    assert states["restore__scratch1"] == "skipped" and states["validate"] == "skipped", states
    log = airflow.task_log_text(DAG, run_id, "plan_restore", 1)
    assert "DRY RUN: nothing is changed: dev → scratch1" in log and f"1. full {dev_pitr}" in log
    assert "br restore full" in log and "databases dropped first: left_by_someone" in log, log[-3000:]
    assert user_schemas(scratch1) == before, "a dry run changed the target"
    assert not [c for c in marks.commands() if c.startswith("restore")]
    row = catalog.get_restore(airflow.xcom(DAG, run_id, "record_restore")["restore_id"])
    assert row is not None and row.status is RestoreStatus.DRY_RUN and row.dry_run
    note = airflow.run(DAG, run_id).get("note") or ""
    assert note.startswith("**DRY RUN** (nothing changed): dev → scratch1") and "br restore" not in note, note
    query(scratch1, "DROP DATABASE left_by_someone")


# ---------------------------------------------------------------------------------------- guardrails


def failed_backup(catalog: Catalog) -> str:
    """A failed dev backup in the catalog (as a BR error leaves one)."""
    from tidbops.catalog.records import make_backup_id

    when = datetime.now(UTC)
    backup_id = make_backup_id("dev", BackupKind.FULL, when)
    catalog.start_backup(
        NewBackup(
            id=backup_id,
            cluster="dev",
            kind=BackupKind.FULL,
            storage_uri=f"s3://tidbops-backups/dev/full/{backup_id}",
            started_at=when,
        )
    )
    catalog.fail_backup(backup_id, "[BR:KV:ErrKVDownloadFailed]download sst failed")
    return backup_id


def test_every_guardrail_refuses_through_the_trigger_form_before_br_restores(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, dev_pitr: str
) -> None:
    # Param validation (HTTP 400, no run at all): unknown cluster, a target no source may use (the form
    # offers only prod, in place for prod alone, and the scratch clusters), no reason
    for conf, says in (
        (request(source_cluster="nope"), "'nope' is not one of ['dev', 'uat', 'prod', 'secure']"),  # the known sources
        (request(target_cluster="nope"), "'nope' is not one of ['prod', 'scratch1', 'scratch2', 'secure']"),
        (request(target_cluster="uat"), "'uat' is not one of ['prod', 'scratch1', 'scratch2', 'secure']"),
        (request(target_cluster="dev"), "'dev' is not one of ['prod', 'scratch1', 'scratch2', 'secure']"),  # in place
        (request(reason=""), "Invalid input for param reason"),
    ):
        with pytest.raises(AirflowError, match="HTTP 400") as info:
            trigger(airflow, conf)
        assert says in str(info.value), str(info.value)[:600]

    failed = failed_backup(catalog)
    scratch2 = registry.clusters["scratch2"]
    assert registry.s3 is not None
    # (in_place needs a target the form does not offer here: the operator tests and tidbops.restore's cover it)
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("target_not_allowed", request(target_cluster="prod"), ["prod is not an allowed restore target of dev",
                                                                "allowed: scratch1, scratch2"]),
        ("confirm", request(source_cluster="prod", target_cluster="prod"), ["type 'prod' in confirm"]),
        ("restore_point", request(restore_point="2026-11-22 10:41:07"), ["has no time zone", "Accepted:"]),
        ("outside_window", request(restore_point="2026-01-01T00:00:00+01:00"),
         ["outside dev's restorable window", "+0100", "UTC"]),
        ("backup_not_restorable", request(restore_point=failed), [f"backup {failed} is failed, not succeeded",
                                                                  "ErrKVDownloadFailed"]),
        ("target_not_empty", request(source_cluster="prod", target_cluster="prod", confirm="prod", dry_run=False),
         ["target prod is not empty: databases", "shop"]),
        ("tables", request(tables=["shop.orders; rm -rf /"]), ["invalid table filter", "nothing was run"]),
        ("log_backup_running", request(target_cluster="scratch2"), ["log backup task e2e-stray is running on "
                                                                    "target scratch2"]),
    ]  # fmt: skip
    br(playground_home, registry, "log", "start", "--task-name", "e2e-stray", "--pd", scratch2.pd,
       "--storage", "s3://tidbops-backups/e2e-stray/log", "--s3.endpoint", registry.s3.endpoint)  # fmt: skip
    try:
        marks = Journal(playground_home)
        marks.mark()
        runs: dict[str, str] = {}
        for name, conf, _ in cases:
            runs[name] = trigger(airflow, conf)
            time.sleep(0.5)  # the SQLite metadata DB: one writer at a time
        for name, conf, says in cases:
            run_id = runs[name]
            assert airflow.wait_run(DAG, run_id, timeout=300) == "failed", name
            states = task_states(airflow, run_id)
            assert states["plan_restore"] == "failed" and states["record_restore"] == "success", (name, states)
            assert states["assert_restore_succeeded"] == "failed", (name, states)
            assert all(states[t] == "upstream_failed" for t in states if t.startswith("restore__")), (name, states)
            error = airflow.xcom(DAG, run_id, "plan_restore", key="error")
            assert airflow.xcom(DAG, run_id, "plan_restore", key="refused") == name, (name, error)
            for text in says:
                assert text in error, (name, text, error)
            log = airflow.task_log_text(DAG, run_id, "plan_restore", 1)
            assert f"restore refused ({name})" in log, name
            gate = airflow.task_log_text(DAG, run_id, "assert_restore_succeeded", 1)
            for text in (log, gate):  # a verdict, not a crash: one line, no traceback
                assert "Traceback" not in text and "Task failed with exception" not in text, (name, text[-3000:])
            note = airflow.run(DAG, run_id).get("note") or ""
            head = f"**REFUSED** ({name.replace('_', chr(92) + '_')}): {conf['source_cluster']} → {conf['target_cluster']}"
            assert note.startswith(head), (name, note, log[-3000:])
            row = catalog.get_restore(airflow.xcom(DAG, run_id, "record_restore")["restore_id"])
            assert row is not None and row.status is RestoreStatus.REFUSED and row.reason == REASON, name
            assert row.requested_by == "admin" and says[0] in (row.error or ""), name
        ran = [(" ".join(e["command"]), e["cluster"]) for e in marks.since()]
        assert not [c for c, _ in ran if c.startswith("restore")], ran
        # the checks that need no BR never called it: only the two that read did, and only read
        reads = Counter(ran)
        assert set(reads) <= {("log status", "scratch1"), ("log status", "scratch2"), ("log metadata", None)}, ran
        assert reads[("log status", "scratch1")] == 1, "outside_window alone read scratch1's log tasks"
        assert reads[("log metadata", None)] == 1, "outside_window alone read dev's log range"
        print(f"\nguardrails: {len(cases)} refused; BR calls meanwhile: {sorted(reads.items(), key=str)}")
    finally:
        br(playground_home, registry, "log", "stop", "--task-name", "e2e-stray", "--pd", scratch2.pd, check=False)
