"""A cluster whose BR runs through TiDB Operator (``br.runner: tidb-operator``) gets the same DAGs as one whose BR
runs on the worker: the same tasks, wiring, pools and retries, pipeline by pipeline. Only where BR runs differs,
and that is decided inside the BR hook (``tidbops_airflow.runners.runner_for``), never in the DAG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tidbops.config import ClusterConfig, Fleet, load_fleet

pytestmark = pytest.mark.dags

SCHEDULES = {
    "full": "0 1 * * *",
    "incremental": "0 */4 * * *",
    "log_backup_check": "*/10 * * * *",
    "drill": "0 3 * * 6",
    "retention": "41 2 * * *",
    "verify": "23 3 * * *",
}


def _cluster(name: str, pd: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "env": "uat",
        "pd": [pd],
        "tidb_conn_id": f"tidb_{name}",
        "storage": {"uri": "s3://backups/fleet", "conn_id": "s3_backups"},
        "log_backup": {"enabled": True, "task_name": f"pitr_{name}"},
        "schedules": SCHEDULES,
        "drill": {"target": "scratch", "mode": "pitr"},
        **extra,
    }


def fleet(tmp_path: Path) -> Fleet:
    k8s = {
        "runner": "tidb-operator",
        "kubernetes": {"namespace": "tidb-uat"},
        "tidb_operator": {"namespace": "tidb-uat", "tidbcluster": "uat", "storage_secret_name": "s3-backup-keys"},
    }
    doc = {
        "clusters": [
            _cluster("onvm", "pd-onvm:2379"),
            _cluster("onk8s", "pd-onk8s:2379", br=k8s),
            {
                "name": "scratch",
                "env": "scratch",
                "scratch": True,
                "pd": ["pd-scratch:2379"],
                "tidb_conn_id": "tidb_scratch",
                "storage": {"uri": "s3://backups/fleet", "conn_id": "s3_backups"},
            },
        ]
    }
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded = load_fleet(path)
    assert loaded.ok, loaded.issues
    return loaded


def shape(dag: Any, cluster: ClusterConfig) -> dict[str, Any]:
    """The DAG with the cluster's name taken out: tasks, wiring, pools, retries, trigger rules, schedule."""

    def plain(text: str) -> str:
        return text.replace(cluster.name, "<cluster>")

    return {
        "schedule": str(dag.schedule),
        "tasks": {
            plain(t.task_id): (
                type(t).__name__,
                sorted(plain(u) for u in t.downstream_task_ids),
                plain(t.pool),
                t.retries,
                str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            )
            for t in dag.tasks
        },
    }


BUILDERS = ["full", "incremental", "log_backup_check", "drill", "retention", "verify", "cluster_check"]


@pytest.mark.parametrize("pipeline", BUILDERS)
def test_same_dag_whatever_the_runner(tmp_path: Path, pipeline: str) -> None:
    from tidbops_airflow.backup_dag import build_backup_dag
    from tidbops_airflow.cluster_check_dag import build_cluster_check_dag
    from tidbops_airflow.drill_dag import build_restore_drill_dag
    from tidbops_airflow.logbackup_dag import build_log_backup_check_dag
    from tidbops_airflow.retention_dag import build_retention_dag
    from tidbops_airflow.verify_dag import build_verify_dag

    f = fleet(tmp_path)
    build = {
        "full": lambda c: build_backup_dag("tidb_backup_full", "full", c, f, doc_md=None),
        "incremental": lambda c: build_backup_dag("tidb_backup_incremental", "incremental", c, f, doc_md=None),
        "log_backup_check": lambda c: build_log_backup_check_dag("tidb_log_backup_check", c, f, doc_md=None),
        "drill": lambda c: build_restore_drill_dag("tidb_restore_drill", c, f, doc_md=None),
        "retention": lambda c: build_retention_dag("tidb_retention", c, f, doc_md=None),
        "verify": lambda c: build_verify_dag("tidb_verify", c, f, doc_md=None),
        "cluster_check": lambda c: build_cluster_check_dag("tidb_cluster_check", c, f, doc_md=None),
    }[pipeline]
    onvm, onk8s = f.clusters["onvm"], f.clusters["onk8s"]
    assert (onvm.br.runner, onk8s.br.runner) == ("local", "tidb-operator")
    local_dag, operator_dag = build(onvm), build(onk8s)
    assert operator_dag.dag_id == local_dag.dag_id.replace("onvm", "onk8s")
    assert shape(operator_dag, onk8s) == shape(local_dag, onvm)
    assert shape(local_dag, onvm)["tasks"], "a DAG with tasks"


def test_the_restore_dag_offers_both_clusters_alike(tmp_path: Path) -> None:
    from tidbops_airflow.restore_dag import build_restore_dag

    dag = build_restore_dag(fleet(tmp_path), doc_md=None)
    ids = {t.task_id for t in dag.tasks}
    for_vm = {i.replace("onvm", "<c>") for i in ids if "onvm" in i}
    for_k8s = {i.replace("onk8s", "<c>") for i in ids if "onk8s" in i}
    assert for_vm == for_k8s
