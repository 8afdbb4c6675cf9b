"""A cluster whose BR runs elsewhere gets the same DAGs as one whose BR runs on the worker: in pods
(``br.runner: kubernetes``) or through TiDB Operator's resources (``br.runner: tidb-operator``), the same tasks,
operators, wiring, pools, retries, trigger rules and schedules, pipeline by pipeline, and the same restore tasks.
Where BR runs is decided inside the BR hook (``tidbops_airflow.runners.runner_for``), never in the DAG."""

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
ENCRYPTION = {"method": "aes256-ctr", "key_conn_id": "br_crypter_remote"}
RUNNERS: dict[str, dict[str, Any]] = {
    "kubernetes": {
        "runner": "kubernetes",
        "kubernetes": {
            "namespace": "tidb-uat",
            "credentials_secret_name": "tidbops-br-s3",
            "crypter_secret_name": "tidbops-br-crypter",
        },
        "encryption": ENCRYPTION,
    },
    "tidb-operator": {
        "runner": "tidb-operator",
        "kubernetes": {"namespace": "tidb-uat"},
        "tidb_operator": {"namespace": "tidb-uat", "tidbcluster": "uat", "storage_secret_name": "s3-backup-keys"},
    },
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


def fleet(tmp_path: Path, runner: str | None) -> Fleet:
    """``onvm`` runs BR locally; ``remote`` runs it with ``runner`` (``None``: locally too, with the same
    encryption, so that the two fleets differ in the runner only)."""
    remote = RUNNERS[runner] if runner else {k: v for k, v in RUNNERS["kubernetes"].items() if k == "encryption"}
    doc = {
        "clusters": [
            _cluster("onvm", "pd-onvm:2379", br={"encryption": {"method": "aes256-ctr", "key_conn_id": "br_key"}}),
            _cluster("remote", "pd-remote:2379", br=remote),
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
    path = tmp_path / f"clusters-{runner}.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded = load_fleet(path)
    assert loaded.ok, loaded.issues
    return loaded


def shape(dag: Any, cluster: ClusterConfig) -> dict[str, Any]:
    """The DAG with the cluster's name taken out: tasks, operators, wiring, pools, retries, trigger rules."""

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


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("pipeline", BUILDERS)
def test_same_dag_whatever_the_runner(tmp_path: Path, pipeline: str, runner: str) -> None:
    from tidbops_airflow.backup_dag import build_backup_dag
    from tidbops_airflow.cluster_check_dag import build_cluster_check_dag
    from tidbops_airflow.drill_dag import build_restore_drill_dag
    from tidbops_airflow.logbackup_dag import build_log_backup_check_dag
    from tidbops_airflow.retention_dag import build_retention_dag
    from tidbops_airflow.verify_dag import build_verify_dag

    f = fleet(tmp_path, runner)
    build = {
        "full": lambda c: build_backup_dag("tidb_backup_full", "full", c, f, doc_md=None),
        "incremental": lambda c: build_backup_dag("tidb_backup_incremental", "incremental", c, f, doc_md=None),
        "log_backup_check": lambda c: build_log_backup_check_dag("tidb_log_backup_check", c, f, doc_md=None),
        "drill": lambda c: build_restore_drill_dag("tidb_restore_drill", c, f, doc_md=None),
        "retention": lambda c: build_retention_dag("tidb_retention", c, f, doc_md=None),
        "verify": lambda c: build_verify_dag("tidb_verify", c, f, doc_md=None),
        "cluster_check": lambda c: build_cluster_check_dag("tidb_cluster_check", c, f, doc_md=None),
    }[pipeline]
    onvm, remote = f.clusters["onvm"], f.clusters["remote"]
    assert (onvm.br.runner, remote.br.runner) == ("local", runner)
    local_dag, remote_dag = build(onvm), build(remote)
    assert remote_dag.dag_id == local_dag.dag_id.replace("onvm", "remote")
    assert shape(remote_dag, remote) == shape(local_dag, onvm)
    assert shape(local_dag, onvm)["tasks"], "a DAG with tasks"


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_the_restore_dag_is_the_same_whatever_the_runner(tmp_path: Path, runner: str) -> None:
    from tidbops_airflow.restore_dag import build_restore_dag

    def restore_shape(f: Fleet) -> dict[str, Any]:
        dag = build_restore_dag(f, doc_md=None)
        params = {k: str(v.schema if hasattr(v, "schema") else v) for k, v in dag.params.items()}
        return {"params": params, **shape(dag, f.clusters["remote"])}

    remote, local = fleet(tmp_path, runner), fleet(tmp_path, None)
    assert remote.clusters["remote"].br.runner == runner != local.clusters["remote"].br.runner
    assert restore_shape(remote) == restore_shape(local)
    assert restore_shape(remote)["tasks"]


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_the_br_tasks_run_br_where_the_cluster_says(tmp_path: Path, runner: str) -> None:
    from tidbops_airflow.backup_dag import build_backup_dag
    from tidbops_airflow.hooks.br import BRHook

    f = fleet(tmp_path, runner)
    for name, kind in (("onvm", "local"), ("remote", runner)):
        dag = build_backup_dag("tidb_backup_full", "full", f.clusters[name], f, doc_md=None)
        task: Any = dag.get_task("run_br_backup")
        assert BRHook(cluster=task.cluster).runner.kind == kind
