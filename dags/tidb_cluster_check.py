"""
### TiDB cluster check — `tidb_cluster_check__<cluster>`

Hourly (``schedules.cluster_check``), for every cluster of the fleet, scratch ones included: connect over
SQL, read the TiDB version, the GC safepoint and ``tidb_gc_life_time``, and return them as XCom.

**Runbook.** A failure means the cluster's SQL endpoint did not answer with the connection
``tidb_conn_id`` from the fleet config: check the connection in Admin → Connections, then the cluster.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops_airflow.dagbuilder import clusters_for, dag_args, schedule_text
from tidbops_airflow.operators.tidb import TiDBCheckClusterOperator

PIPELINE = "tidb_cluster_check"

for cluster in clusters_for(PIPELINE, include=lambda c: True):
    when = schedule_text(cluster.schedules.cluster_check)
    about = f"Health: SQL answers; TiDB version, GC safepoint, tidb_gc_life_time ({when})"
    args = dag_args(PIPELINE, cluster, doc_md=__doc__, tags=["health"], description=about)
    with DAG(schedule=cluster.schedules.cluster_check, **args):
        TiDBCheckClusterOperator(task_id="check_cluster", cluster=cluster.name, tidb_conn_id=cluster.tidb_conn_id)
