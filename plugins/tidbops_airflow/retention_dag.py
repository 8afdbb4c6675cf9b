"""The retention pipeline's wiring (``dags/tidb_retention.py``).

measure_storage → apply_retention (pool ``br_<cluster>``: it runs ``br log truncate``, and no backup may
start while it deletes; it runs whatever the measurement did), one DAG per backed-up (non-scratch)
cluster, on ``schedules.retention`` (daily by default). Retention is the leaf, so a refused or failed
retention makes the run red. Failures alert through the cluster's alert routes.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import dag_args
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.retention import RetentionOperator, StorageUsageOperator

TASK_IDS = ("measure_storage", "apply_retention")


def build_retention_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    mode = "report only (dry run)" if cluster.retention_dry_run else "deletes"
    description = f"Retention: {cluster.retention.window_text} window kept restorable, {mode}; log truncated to match"
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["retention"], description=description)
    args["default_args"]["on_failure_callback"] = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    with DAG(schedule=cluster.schedules.retention, **args) as dag:
        usage = StorageUsageOperator(task_id="measure_storage", cluster=cluster, **catalog)
        retention = RetentionOperator(
            task_id="apply_retention",
            cluster=cluster,
            **br_slot(fleet, cluster.name),
            trigger_rule="all_done",
            **catalog,
        )
        usage >> retention
    return dag
