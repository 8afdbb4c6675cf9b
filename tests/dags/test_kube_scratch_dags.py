"""A scratch cluster made on Kubernetes (``scratch_kubernetes``) adds its create and delete tasks to the drill and
on-demand restore DAGs, in the right places; a fleet without one builds neither (the shipped fleet's DAGs are
unchanged: tests/dags/test_restore_drill_dag.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tidbops.config import Fleet, load_fleet

pytestmark = pytest.mark.dags

TEMPLATE = {"spec": {"version": "v8.5.0", "pd": {"replicas": 1}, "tikv": {"replicas": 1}, "tidb": {"replicas": 1}}}


def fleet_with(tmp_path: Path, *, mode: str) -> Fleet:
    storage = {"uri": f"local://{tmp_path / 'backups'}"}
    doc: dict[str, Any] = {
        "clusters": [
            {
                "name": "uat",
                "env": "uat",
                "pd": ["pd-uat:2379"],
                "tidb_conn_id": "tidb_uat",
                "storage": storage,
                "drill": {"target": "scratch_k8s", "mode": mode},
                **({"log_backup": {"enabled": True, "task_name": "uat"}} if mode == "pitr" else {}),
            },
            {
                "name": "scratch_k8s",
                "env": "scratch",
                "scratch": True,
                "pd": ["scratch-k8s-pd.tidb-scratch.svc:2379"],
                "tidb_conn_id": "tidb_scratch_k8s",
                "storage": storage,
                "scratch_kubernetes": {"namespace": "tidb-scratch", "template": TEMPLATE},
            },
            {
                "name": "scratch2",
                "env": "scratch",
                "scratch": True,
                "pd": ["pd-scratch2:2379"],
                "tidb_conn_id": "tidb_scratch2",
                "storage": storage,
            },
        ]
    }
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(doc))
    fleet = load_fleet(path)
    assert fleet.ok, fleet.issues
    return fleet


@pytest.mark.parametrize("mode", ["snapshot", "pitr"])
def test_the_drill_makes_its_scratch_cluster_before_prepare_and_always_deletes_it(tmp_path: Path, mode: str) -> None:
    from tidbops_airflow.drill_dag import build_restore_drill_dag

    fleet = fleet_with(tmp_path, mode=mode)
    dag = build_restore_drill_dag("tidb_restore_drill", fleet.clusters["uat"], fleet, doc_md=None)
    make, unmake = dag.get_task("create_scratch_cluster"), dag.get_task("delete_scratch_cluster")
    assert make.upstream_task_ids == {"choose_restore_point"}
    assert make.downstream_task_ids == {"prepare_scratch", "delete_scratch_cluster"}
    assert make.deferrable and make.retries == 12
    assert unmake.upstream_task_ids == {"create_scratch_cluster", "drop_scratch"}
    assert unmake.downstream_task_ids == {"record_drill"}
    assert getattr(unmake.trigger_rule, "value", unmake.trigger_rule) == "all_done"
    order = [t.task_id for t in dag.topological_sort()]
    assert order.index("create_scratch_cluster") < order.index("prepare_scratch") < order.index("restore_to_scratch")
    assert order.index("drop_scratch") < order.index("delete_scratch_cluster") < order.index("record_drill")


def test_a_drill_without_a_kubernetes_scratch_cluster_has_no_such_tasks(tmp_path: Path) -> None:
    from tidbops_airflow.drill_dag import build_restore_drill_dag

    fleet = fleet_with(tmp_path, mode="snapshot")
    plain = {n: c for n, c in fleet.clusters.items() if n != "scratch_k8s"}
    uat = plain["uat"].model_copy(update={"drill": plain["uat"].drill.model_copy(update={"target": "scratch2"})})
    plain["uat"] = uat
    other = Fleet(fleet.path, plain, (), fleet.alert_routes, fleet.catalog)
    dag = build_restore_drill_dag("tidb_restore_drill", uat, other, doc_md=None)
    assert not {"create_scratch_cluster", "delete_scratch_cluster"} & set(dag.task_ids)


def test_the_restore_dag_makes_a_kubernetes_target_before_its_restore_and_deletes_it_before_the_audit(
    tmp_path: Path,
) -> None:
    from tidbops_airflow.restore_dag import build_restore_dag

    dag = build_restore_dag(fleet_with(tmp_path, mode="snapshot"), doc_md=None)
    make, unmake = dag.get_task("create_scratch__scratch_k8s"), dag.get_task("delete_scratch__scratch_k8s")
    assert make.upstream_task_ids == {"plan_restore"}
    assert make.downstream_task_ids == {"restore__scratch_k8s", "delete_scratch__scratch_k8s"}
    assert make.target == "scratch_k8s"
    assert unmake.upstream_task_ids == {"create_scratch__scratch_k8s", "validate"}
    assert unmake.downstream_task_ids == {"record_restore"}
    assert getattr(unmake.trigger_rule, "value", unmake.trigger_rule) == "all_done"
    assert "create_scratch__scratch2" not in dag.task_ids  # an ordinary scratch cluster: as before
    assert dag.get_task("restore__scratch2").upstream_task_ids == {"choose_target"}
