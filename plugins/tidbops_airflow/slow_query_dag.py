"""The wiring of ``dags/tidb_slow_query_harvest.py``: one DAG per backed-up (non-scratch) cluster.

harvest_slow_queries → report_slow_queries → suggest_guardrails, on ``schedules.slow_query_harvest``
(nightly; off: manual runs only). The harvest stores daily aggregates in one transaction and moves the
watermark, the report reads them back, and the guardrails step writes its decision into the report (it
runs statements only with ``slow_query.apply_guardrails``). Every task alerts through the cluster's alert
routes when it fails for good.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.dagbuilder import dag_args, schedule_text
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.slowquery import (
    SlowQueryGuardrailsOperator,
    SlowQueryHarvestOperator,
    SlowQueryReportOperator,
)

TASK_IDS = ("harvest_slow_queries", "report_slow_queries", "suggest_guardrails")


def build_slow_query_harvest_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    about = (
        "Slow queries harvested into daily aggregates; report of top, new and regressed digests "
        f"({schedule_text(cluster.schedules.slow_query_harvest)})"
    )
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["slow-query"], description=about)
    args["default_args"]["on_failure_callback"] = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    harvest_id, report_id, guard_id = TASK_IDS
    with DAG(schedule=cluster.schedules.slow_query_harvest, **args) as dag:
        harvest = SlowQueryHarvestOperator(task_id=harvest_id, cluster=cluster, **catalog)
        report = SlowQueryReportOperator(task_id=report_id, cluster=cluster, harvest_task_id=harvest_id, **catalog)
        guard = SlowQueryGuardrailsOperator(task_id=guard_id, cluster=cluster, report_task_id=report_id, **catalog)
        harvest >> report >> guard
    return dag
