"""The wiring both backup pipelines share (``dags/tidb_backup_full.py``, ``dags/tidb_backup_incremental.py``).

check_cluster → plan_backup → run_br_backup → record_backup → verify_backup, one DAG per backed-up
(non-scratch) cluster, on the cluster's ``schedules.full`` / ``schedules.incremental`` (off: manual
runs only). ``run_br_backup`` runs in the cluster's pool ``br_<cluster>`` (1 slot), so one BR job at a
time per cluster across both pipelines (with ``fleet.br_concurrency``: the pool ``br_fleet`` and the
cluster's lease, ``tidbops_airflow.brslot``); ``max_active_runs=1`` (from ``dag_args``). Every task alerts
through the cluster's alert routes when it fails for good.
"""

from __future__ import annotations

from typing import Literal

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.assets import backups_asset
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import dag_args, schedule_text
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.backup import (
    BRBackupOperator,
    BRBackupPlanOperator,
    BRBackupPreflightOperator,
    BRBackupRecordOperator,
    BRBackupVerifyOperator,
)

BackupPipelineKind = Literal["full", "incremental"]
TASK_IDS = ("check_cluster", "plan_backup", "run_br_backup", "record_backup", "verify_backup")


def build_backup_dag(
    pipeline: str, kind: BackupPipelineKind, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None
) -> DAG:
    schedule = cluster.schedules.full if kind == "full" else cluster.schedules.incremental
    what = "BR full backup" if kind == "full" else "BR incremental on the verified chain (else a full)"
    about = f"{what}, catalogued, verified by its manifest ({schedule_text(schedule)})"
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["backup"], description=about)
    args["default_args"]["on_failure_callback"] = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    with DAG(schedule=schedule, **args) as dag:
        # results travel by XCom, read by task id (XComArgs cost DAG-parse time on a large fleet)
        check = BRBackupPreflightOperator(task_id="check_cluster", cluster=cluster, **catalog)
        plan = BRBackupPlanOperator(
            task_id="plan_backup", cluster=cluster, kind=kind, facts_task_id="check_cluster", **catalog
        )
        run = BRBackupOperator(
            task_id="run_br_backup",
            cluster=cluster,
            target_task_id="plan_backup",
            **br_slot(fleet, cluster.name),
            routes=[(name, fleet.alert_routes[name]) for name in cluster.alerts],  # the GC-replan notice (#18)
            **catalog,
        )
        record = BRBackupRecordOperator(
            task_id="record_backup",
            cluster=cluster,
            target_task_id="plan_backup",
            backup_task_id="run_br_backup",
            **catalog,
        )
        verify = BRBackupVerifyOperator(
            task_id="verify_backup",
            cluster=cluster,
            target_task_id="plan_backup",
            backup_task_id="run_br_backup",  # a full backup taken instead of a refused incremental (#18)
            outlets=[backups_asset(cluster.name)],  # each verified backup is an event of x-tidb://<cluster>/backups
            **catalog,
        )
        check >> plan >> run >> record >> verify
        if cluster.drill.source_fingerprints:  # restore drills (#6): the source as of the backup, kept for them
            from tidbops_airflow.operators.drill import SourceFingerprintOperator

            verify >> SourceFingerprintOperator(
                task_id="fingerprint_source", cluster=cluster, backup_task_id="run_br_backup"
            )
    return dag
