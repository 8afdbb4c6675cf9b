"""The TLS cluster (`secure`) through a real Airflow: a backup, a drill and an on-demand restore over TLS.

The playground's `secure` cluster is a MariaDB with a CA made at `up`, serving TLS and refusing plain TCP
(``require_secure_transport``); the BR emulator refuses it without ``--ca`` the way BR's first PD request
fails. The fleet config gives it ``tls.conn_id: tls_secure`` (the PEMs, written to 0600 files for each BR
run) and an ``ssl_ca`` in ``tidb_secure``'s extra (SQL, the drill's fingerprints, the restore's
validation), and pins ``br.version``:

* plain SQL and a BR call without ``--ca`` are refused; with the CA both work;
* ``tidb_backup_full__secure`` runs BR with ``--ca/--cert/--key`` after the version check (one line in the
  log: both versions compatible by BR's rule), and no private key text reaches a log;
* ``tidb_restore_drill__secure`` restores that backup into scratch1 and validates it against `secure`;
* the cluster's databases, all dropped, come back through ``tidb_restore`` in place (BR restores into the
  TLS cluster, the validation reads it over TLS), row for row as the backup had them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import ClusterEntry, Registry

pytestmark = pytest.mark.e2e

CLUSTER = "secure"
TABLE = "shop.customers"
RUN_TIMEOUT = 300.0


def connect(entry: ClusterEntry, **ssl: Any) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host=entry.sql_host,
        port=entry.sql_port,
        user=entry.sql_user,
        password=entry.sql_password,
        autocommit=True,
        connect_timeout=5,
        **ssl,
    )


def query(entry: ClusterEntry, sql: str) -> list[tuple[Any, ...]]:
    conn = connect(entry, ssl={"ca": entry.tls_ca})
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def br(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **manager.playground_env(home)}
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-tls-br.log")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def run(api: AirflowAPI, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """Trigger, wait, and require success."""
    run_id, state = api.run_dag(dag_id, conf=conf, timeout=RUN_TIMEOUT)
    assert state == "success", api.run_logs(dag_id, run_id)[-6000:]
    return run_id


@pytest.fixture(scope="module")
def secure(registry: Registry, playground_home: Path) -> ClusterEntry:
    entry = registry.clusters[CLUSTER]
    assert entry.tls_ca and Path(entry.tls_ca).is_file()
    return entry


def test_plain_sql_and_br_without_ca_are_refused(secure: ClusterEntry, playground_home: Path) -> None:
    with pytest.raises(pymysql.err.OperationalError):  # without TLS (pymysql would negotiate it unasked)
        connect(secure, ssl_disabled=True).close()
    assert query(secure, "SHOW STATUS LIKE 'Ssl_version'")[0][1].startswith("TLS")  # same login, over TLS

    refused = br(playground_home, "log", "status", "--task-name", "*", "--pd", secure.pd)
    assert refused.returncode == 1
    assert (
        f"Error: pd address ({secure.pd}) not available, error is [400] Client sent an HTTP request to an HTTPS "
        f"server. http://{secure.pd}/pd/api/v1/config/cluster-version"
    ) in refused.stderr, refused.stderr
    allowed = br(playground_home, "log", "status", "--task-name", "*", "--pd", secure.pd, "--ca", secure.tls_ca)
    assert allowed.returncode == 0, allowed.stderr
    version = br(playground_home, "--version")
    assert version.stdout.startswith("Release Version: v8.5.1\nGit Commit Hash: "), version.stdout


def test_backup_drill_and_restore_over_tls(airflow: AirflowAPI, secure: ClusterEntry, playground_home: Path) -> None:
    manager.pause_writer(playground_home, CLUSTER)  # the table's rows stay put from the backup to the restore
    try:
        (rows_at_backup,) = query(secure, f"SELECT COUNT(*) FROM {TABLE}")[0]
        assert rows_at_backup > 0

        backup_dag = f"tidb_backup_full__{CLUSTER}"
        run_id = run(airflow, backup_dag)
        log = airflow.run_logs(backup_dag, run_id)
        assert f"BR v8.5.1, cluster '{CLUSTER}' v8.5.1: compatible by BR's rule" in log
        assert "--ca /" in log and "--cert /" in log and "--key /" in log, "BR got the TLS PEM files"
        key_body = (playground_home / manager.TLS_DIR / "client-key.pem").read_text().splitlines()[1]
        assert key_body not in log
        backup_id = str(airflow.xcom(backup_dag, run_id, "plan_backup")["backup_id"])

        drill_dag = f"tidb_restore_drill__{CLUSTER}"
        drill_log = airflow.run_logs(drill_dag, run(airflow, drill_dag))
        assert key_body not in drill_log

        # the cluster is lost: every database goes (BR restores only into a cluster without user databases,
        # and tidbops never wipes one that is not scratch), then it comes back in place from that backup
        server = {"mysql", "sys", "information_schema", "performance_schema"}
        lost = [r[0] for r in query(secure, "SHOW DATABASES") if r[0].lower() not in server]
        assert {"shop", "crm"} <= set(lost)
        for name in lost:
            query(secure, f"DROP DATABASE `{name}`")
        conf = {
            "source_cluster": CLUSTER,
            "target_cluster": CLUSTER,
            "restore_point": backup_id,
            "dry_run": False,
            "confirm": CLUSTER,  # not a scratch cluster: the guardrail wants its name typed
            # in place, the source's own history went with its databases: nothing to validate against; the
            # row count below is the check
            "validate_after": False,
            "reason": "e2e: the TLS cluster lost its databases",
        }
        restore_id = run(airflow, "tidb_restore", conf)
        states = {t["task_id"]: t["state"] for t in airflow.task_instances("tidb_restore", restore_id)}
        assert states[f"restore__{CLUSTER}"] == "success", states
        assert query(secure, f"SELECT COUNT(*) FROM {TABLE}")[0][0] == rows_at_backup
        restore_log = airflow.run_logs("tidb_restore", restore_id)
        assert "--ca /" in restore_log and key_body not in restore_log
    finally:
        manager.resume_writer(playground_home, CLUSTER)
