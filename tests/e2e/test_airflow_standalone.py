"""A real Airflow (`airflow standalone`, SQLite, LocalExecutor), started the way `make up` starts it, runs
our DAGs against the playground; runs are triggered through the REST API, as a DBA's script would."""

from __future__ import annotations

import pytest

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
