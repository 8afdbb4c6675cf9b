"""The wiring of ``dags/tidb_verify.py``: one DAG per backed-up (non-scratch) cluster.

verify_files (tier 1) → verify_br_checksum (tier 2, pool ``br_<cluster>``), on ``schedules.verify``
(nightly; off: manual runs only). ``verify_br_checksum`` runs only after ``verify_files`` passed: a
backup that fails tier 1 fails the run (and alerts) and holds the BR checks back until it is dealt with
(re-checked, or expired); a run that shows success means both tiers passed. Tier 2 stops before BR runs
when the storage does not answer. Both tasks alert through the cluster's routes when they fail for good.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import dag_args
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.verify import VerifyBackupFilesOperator, VerifyBRChecksumOperator

TASK_IDS = ("verify_files", "verify_br_checksum")
DESCRIPTION = "Verify retained backups: every file read back nightly (tier 1), br debug checksum weekly (tier 2)"


def build_verify_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["verify"], description=DESCRIPTION)
    args["default_args"]["on_failure_callback"] = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    files_id, checksum_id = TASK_IDS
    with DAG(schedule=cluster.schedules.verify, **args) as dag:
        files = VerifyBackupFilesOperator(task_id=files_id, cluster=cluster, **catalog)
        checksum = VerifyBRChecksumOperator(
            task_id=checksum_id,
            cluster=cluster,
            **br_slot(fleet, cluster.name),
            **catalog,
        )
        files >> checksum
    return dag
