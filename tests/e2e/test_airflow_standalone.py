"""A real Airflow (`airflow standalone`, LocalExecutor, metadata on the playground's PostgreSQL), started the
way `make up` starts it, runs our DAGs against the playground; runs are triggered through the REST API, as a
DBA's script would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidbops_playground import postgres
from tidbops_playground.airflow import AirflowAPI

pytestmark = pytest.mark.e2e


def test_cluster_check_runs_through_the_rest_api(airflow: AirflowAPI) -> None:
    dag_id = "tidb_cluster_check__dev"
    airflow.wait_for_dag(dag_id)
    airflow.unpause(dag_id)
    run_id = airflow.trigger(dag_id, note="e2e")
    assert airflow.wait_run(dag_id, run_id, timeout=180) == "success", airflow.task_log(dag_id, run_id, "check_cluster")
    facts = airflow.xcom(dag_id, run_id, "check_cluster")
    assert facts["cluster"] == "dev"
    assert facts["tidb_version"] == "v8.5.1"
    assert facts["gc_life_time_seconds"] and facts["gc_life_time_seconds"] > 0
    assert facts["gc_safe_point"], "the playground's GC worker keeps mysql.tidb like TiDB does"


def test_no_import_errors_in_the_ui(airflow: AirflowAPI) -> None:
    errors = airflow._request("GET", "/api/v2/importErrors")
    assert errors["import_errors"] == [], errors


def test_the_metadata_db_is_the_playgrounds_postgres(airflow: AirflowAPI, playground_home: Path) -> None:
    """#18: not SQLite. The DAGs Airflow parsed are rows of the playground's PostgreSQL (database ``airflow``)."""
    airflow.wait_for_dag("tidb_cluster_check__dev")
    pg = postgres.configured(playground_home)
    assert pg is not None and pg.is_running()
    assert not (playground_home / "airflow" / "airflow.db").exists()
    conn = pg.connect("airflow")
    try:
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT count(*) FROM dag WHERE dag_id = %s", ("tidb_cluster_check__dev",))
            assert cur.fetchone()[0] == 1
    finally:
        conn.close()  # type: ignore[attr-defined]
