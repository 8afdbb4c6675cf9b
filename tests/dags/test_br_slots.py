"""Where BR tasks get their turn (#18): the cluster's pool by default; with ``fleet.br_concurrency`` the
pool ``br_fleet`` plus the cluster's lease, taken before ``execute`` and given back after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tidbops.config import Fleet, load_fleet
from tidbops_airflow.backup_dag import build_backup_dag
from tidbops_airflow.brslot import FLEET_POOL, ClusterLease
from tidbops_airflow.drill_dag import build_restore_drill_dag
from tidbops_airflow.logbackup_dag import build_log_backup_check_dag
from tidbops_airflow.restore_dag import build_restore_dag
from tidbops_airflow.retention_dag import build_retention_dag
from tidbops_airflow.verify_dag import build_verify_dag

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
# every task that runs BR, by pipeline (the restore DAG's per target: restore__<target>)
BR_TASKS = {"run_br_backup", "repair_log_backup", "restore_to_scratch", "apply_retention", "verify_br_checksum"}


def _fleet(tmp_path: Path, cap: int | None) -> Fleet:
    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    if cap is not None:
        doc["fleet"] = {"br_concurrency": cap}
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    fleet = load_fleet(path)
    assert fleet.settings.br_concurrency == cap
    return fleet


def _br_tasks(fleet: Fleet) -> list[tuple[str, Any]]:
    dags = [build_restore_dag(fleet, doc_md=None)]
    for c in fleet.sources():
        dags += [
            build_backup_dag("tidb_backup_full", "full", c, fleet, doc_md=None),
            build_backup_dag("tidb_backup_incremental", "incremental", c, fleet, doc_md=None),
            build_log_backup_check_dag("tidb_log_backup_check", c, fleet, doc_md=None),
            build_retention_dag("tidb_retention", c, fleet, doc_md=None),
            build_verify_dag("tidb_verify", c, fleet, doc_md=None),
        ]
        if c.drill.target:
            dags.append(build_restore_drill_dag("tidb_restore_drill", c, fleet, doc_md=None))
    found = [
        (dag.dag_id, t) for dag in dags for t in dag.tasks if t.task_id in BR_TASKS or t.task_id.startswith("restore__")
    ]
    assert {t.task_id for _, t in found} >= BR_TASKS
    return found


def _br_cluster(fleet: Fleet, dag_id: str, task: Any) -> str:
    """The cluster a BR task's job runs against: a restore's target, a drill's scratch, else the DAG's."""
    if task.task_id.startswith("restore__"):
        return str(task.task_id.split("__", 1)[1])
    if task.task_id == "restore_to_scratch":
        return str(fleet.get(dag_id.split("__", 1)[1]).drill.target)
    return dag_id.split("__", 1)[1]


def test_without_a_fleet_cap_every_br_task_runs_in_its_clusters_pool(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, None)
    for dag_id, task in _br_tasks(fleet):
        assert task.pool == f"br_{_br_cluster(fleet, dag_id, task)}", (dag_id, task.task_id, task.pool)
        assert task._pre_execute_hook is None and task._post_execute_hook is None


def test_with_a_fleet_cap_every_br_task_runs_in_br_fleet_and_takes_its_clusters_lease(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, 4)
    for dag_id, task in _br_tasks(fleet):
        assert task.pool == FLEET_POOL, (dag_id, task.task_id)
        lease = task._pre_execute_hook.__self__
        assert isinstance(lease, ClusterLease) and task._post_execute_hook == lease.give_back
        assert (lease.catalog_conn_id, lease.catalog_sqlite_path) == (fleet.catalog.conn_id, fleet.catalog.sqlite_path)
        assert lease.cluster == _br_cluster(fleet, dag_id, task), (dag_id, task.task_id, lease.cluster)
    # the pool caps, the lease guards: no other task is in br_fleet
    others = [t for d in [build_backup_dag("tidb_backup_full", "full", fleet.sources()[0], fleet, doc_md=None)]
              for t in d.tasks if t.task_id not in BR_TASKS]  # fmt: skip
    assert all(t.pool != FLEET_POOL for t in others)


def test_a_busy_cluster_reschedules_the_task_instead_of_holding_the_fleet_slot(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from airflow.exceptions import AirflowRescheduleException

    catalog_file = tmp_path / "catalog.db"
    first, second = ClusterLease("prod", None, str(catalog_file)), ClusterLease("prod", None, str(catalog_file))
    ctx = {"ti": SimpleNamespace(dag_id="tidb_backup_full__prod", run_id="r1", task_id="run_br_backup")}
    first.take(ctx)
    other = {"ti": SimpleNamespace(dag_id="tidb_log_backup_check__prod", run_id="r2", task_id="repair_log_backup")}
    with pytest.raises(AirflowRescheduleException):
        second.take(other)
    first.give_back(ctx, None)
    second.take(other)  # free again: taken
    second.give_back(other, None)
