"""The wiring of ``dags/tidb_cluster_check.py``: one DAG per cluster of the fleet, scratch ones included.

check_cluster: connect over SQL, read the TiDB version, the GC safepoint and ``tidb_gc_life_time``, return
them as XCom; hourly (``schedules.cluster_check``). A check that fails for good (after its retries) alerts
through the cluster's alert routes, scratch clusters' included: a drill needs its scratch cluster.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.dagbuilder import dag_args, schedule_text
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.tidb import TiDBCheckClusterOperator

TASK_IDS = ("check_cluster",)


def wants_cluster_check(cluster: ClusterConfig) -> bool:
    """Every cluster is checked, scratch ones too (a drill needs its scratch cluster to answer)."""
    return True


def build_cluster_check_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    about = (
        "Health: SQL answers; TiDB version, GC safepoint, tidb_gc_life_time "
        f"({schedule_text(cluster.schedules.cluster_check)})"
    )
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["health"], description=about)
    args["default_args"]["on_failure_callback"] = failure_notifiers(fleet, cluster)
    (check_id,) = TASK_IDS
    with DAG(schedule=cluster.schedules.cluster_check, **args) as dag:
        TiDBCheckClusterOperator(task_id=check_id, cluster=cluster.name, tidb_conn_id=cluster.tidb_conn_id)
    return dag
