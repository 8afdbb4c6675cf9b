"""A full backup whose storage connection assumes a role (#14), through a real Airflow on the playground.

In the e2e fleet prod's ``storage.conn_id`` is ``s3_playground_role``: the playground's keys plus a
``role_arn`` and the STS endpoint (``service_config.sts.endpoint_url``, the playground's moto server,
which serves STS too). So the amazon provider calls AssumeRole, the operators' S3 client uses the role's
temporary credentials, and BR gets them (key, secret, session token) in its environment.

* the run succeeds, the backup lands below ``prod/full/<id>`` with its manifest, the catalog row succeeded;
* moto's STS issued credentials for that role to the connection (session ``Airflow_s3_playground_role``),
  and every BR invocation of the run signed with one of those keys, with a session token;
* no issued key, secret or session token, nor the connection's own secret key, is in the run's task
  logs, XComs, rendered templates, catalog rows or events, or its manifest.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tidbops.catalog.records import BackupKind, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops_playground import journal, manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

DAG_ID = "tidb_backup_full__prod"


def assumed_roles(endpoint: str) -> list[dict[str, Any]]:
    """What moto's STS handed out (``/moto-api/data.json``): role ARN, session name, the credentials."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as answer:
        return list(json.loads(answer.read())["sts"]["AssumedRole"])


def run_texts(api: AirflowAPI, home: Path, dag_id: str, run_id: str) -> dict[str, str]:
    """Every task log (the files Airflow wrote: every line of every try), rendered template and XCom of one
    run, by where it was found."""
    texts: dict[str, str] = {}
    logs = home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for path in sorted(logs.glob("task_id=*/attempt=*.log")):
        texts[f"log {path.parent.name.removeprefix('task_id=')} {path.stem}"] = path.read_text(errors="replace")
    rid = urllib.parse.quote(run_id, safe="")
    for ti in api.task_instances(dag_id, run_id):
        task = ti["task_id"]
        detail = api._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task}")
        texts[f"rendered {task}"] = json.dumps(detail.get("rendered_fields"))
        entries = api._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task}/xcomEntries")
        for entry in entries["xcom_entries"]:
            texts[f"xcom {task} {entry['key']}"] = json.dumps(api.xcom(dag_id, run_id, task, entry["key"]))
    return texts


def test_a_full_backup_with_an_assumed_role_lands_and_leaks_no_key(
    airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog, bucket: manager.Bucket
) -> None:
    assert registry.s3 is not None
    conn = json.loads(manager.playground_env(playground_home)[f"AIRFLOW_CONN_{manager.S3_ROLE_CONN_ID.upper()}"])
    assert conn["extra"]["role_arn"] == manager.S3_ROLE_ARN
    issued_before = len(assumed_roles(registry.s3.endpoint))
    captured_before = len(journal.captured_credentials(playground_home))
    marker = playground_home / journal.ARGV_MARKER
    ours = not marker.exists()
    marker.touch()
    try:
        airflow.wait_for_dag(DAG_ID)
        airflow.unpause(DAG_ID)
        run_id = airflow.trigger(DAG_ID, note="e2e backup with an assumed role")
        state = airflow.wait_run(DAG_ID, run_id, timeout=480)
    finally:
        if ours:
            marker.unlink(missing_ok=True)
    assert state == "success", airflow.run_logs(DAG_ID, run_id)[-6000:]

    # STS issued the role's credentials to the connection, and BR signed with them
    issued = assumed_roles(registry.s3.endpoint)[issued_before:]
    assert issued, "no AssumeRole reached the playground's STS"
    assert {(a["role_arn"], a["session_name"].lower()) for a in issued} == {
        (manager.S3_ROLE_ARN, f"airflow_{manager.S3_ROLE_CONN_ID}")
    }
    keys = {a["access_key_id"] for a in issued}
    calls = zip(
        journal.captured_argv(playground_home)[captured_before:],
        journal.captured_credentials(playground_home)[captured_before:],
        strict=True,
    )
    used = [creds for argv, creds in calls if "--storage" in argv or "-s" in argv]  # not `br --version`
    assert used, "BR never touched the storage"
    assert all(key in keys and token for key, token in used), used
    assert registry.s3.access_key not in {key for key, _ in used}

    # the backup landed, catalogued and with its manifest
    rows = [b for b in catalog.list_backups("prod") if b.run_id == run_id]
    assert [(b.kind, b.status) for b in rows] == [(BackupKind.FULL, BackupStatus.SUCCEEDED)]
    prefix = rows[0].storage_uri.removeprefix(f"s3://{bucket.name}/")
    stored = bucket.objects(prefix + "/")
    assert f"{prefix}/backupmeta" in stored and f"{prefix}/tidbops-manifest.json" in stored, sorted(stored)[:10]

    # no credential anywhere we show or keep
    texts = run_texts(airflow, playground_home, DAG_ID, run_id)
    assert any(k.startswith("log run_br_backup") for k in texts) and any(k.startswith("xcom ") for k in texts)
    for b in catalog.list_backups():
        texts[f"catalog row {b.id}"] = repr(b)
    for e in catalog.list_events(limit=100_000):
        texts[f"catalog event {e.id}"] = repr(e)
    texts["manifest"] = bucket.get(f"{prefix}/tidbops-manifest.json").decode()
    secrets = {"the connection's secret key": registry.s3.secret_key}
    for n, a in enumerate(issued):
        secrets.update({f"issued secret {n}": a["secret_access_key"], f"issued token {n}": a["session_token"]})
        secrets[f"issued key {n}"] = a["access_key_id"]
    leaks = [f"{what} in {where}" for what, value in secrets.items() for where, text in texts.items() if value in text]
    assert leaks == [], leaks
