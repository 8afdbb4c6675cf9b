"""The wiring of ``dags/tidb_log_backup_check.py``: one DAG per cluster with log backup enabled.

check_log_backup ─┬─> repair_log_backup (pool br_<cluster>) ─┬─> notify_log_backup ──> assert_log_backup_healthy
                  └─────────────────────────────────────────┘

``check_log_backup`` judges a frozen checkpoint after ``frozen_after`` (the run's conf, e.g.
``{"frozen_after": "30s"}``; default 4m). It branches to ``repair_log_backup`` only when there is a task to
start or resume, so
the pool (one slot, shared with the backups) is never waited on when there is nothing to do. The check,
repair and notify steps alert through the cluster's routes when they fail for good (the check could not
be made); ``assert_log_backup_healthy`` fails, without retries and without alerting, while an alert is
open: the alerts went out, de-duplicated, from ``notify_log_backup``.
"""

from __future__ import annotations

from airflow.sdk import DAG

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import dag_args, schedule_text
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.logbackup import (
    LogBackupCheckOperator,
    LogBackupHealthGateOperator,
    LogBackupNotifyOperator,
    LogBackupRepairOperator,
)

TASK_IDS = ("check_log_backup", "repair_log_backup", "notify_log_backup", "assert_log_backup_healthy")


def wants_log_backup_check(cluster: ClusterConfig) -> bool:
    return cluster.log_backup.enabled and not cluster.scratch


def build_log_backup_check_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    about = (
        "Log backup (PITR): running, checkpoint lag, frozen checkpoint, GC hold, window; alerts once "
        f"({schedule_text(cluster.schedules.log_backup_check)})"
    )
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["log-backup", "health"], description=about)
    alerts = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    check_id, repair_id, notify_id, gate_id = TASK_IDS
    with DAG(schedule=cluster.schedules.log_backup_check, **args) as dag:
        check = LogBackupCheckOperator(
            task_id=check_id,
            cluster=cluster,
            repair_task_id=repair_id,
            notify_task_id=notify_id,
            on_failure_callback=alerts,
            **catalog,
        )
        repair = LogBackupRepairOperator(
            task_id=repair_id,
            cluster=cluster,
            check_task_id=check_id,
            **br_slot(fleet, cluster.name),
            on_failure_callback=alerts,
            **catalog,
        )
        notify = LogBackupNotifyOperator(
            task_id=notify_id,
            cluster=cluster,
            routes=[(name, fleet.alert_routes[name]) for name in cluster.alerts],
            check_task_id=check_id,
            repair_task_id=repair_id,
            trigger_rule="none_failed_min_one_success",
            on_failure_callback=alerts,
            **catalog,
        )
        gate = LogBackupHealthGateOperator(task_id=gate_id, cluster=cluster, notify_task_id=notify_id)
        check >> [repair, notify]
        repair >> notify >> gate
    return dag
