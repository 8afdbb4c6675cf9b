"""
### TiDB cluster check — `tidb_cluster_check__<cluster>`

Hourly (``schedules.cluster_check``), for every cluster of the fleet, scratch ones included: connect over
SQL, read the TiDB version, the GC safepoint and ``tidb_gc_life_time``, and return them as XCom.

**Runbook.** A failure means the cluster's SQL endpoint did not answer with the connection
``tidb_conn_id`` from the fleet config: check the connection in Admin → Connections, then the cluster.
"""

from __future__ import annotations

from tidbops_airflow.cluster_check_dag import build_cluster_check_dag, wants_cluster_check
from tidbops_airflow.dagbuilder import clusters_for, fleet

PIPELINE = "tidb_cluster_check"

_fleet = fleet()
for cluster in clusters_for(PIPELINE, include=wants_cluster_check):
    build_cluster_check_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
