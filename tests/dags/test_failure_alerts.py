"""Every DAG of every pipeline reaches a person when it fails: its failing tasks alert through the fleet's
alert routes (#18: the slow-query harvest, the cluster check and tidb_restore had none)."""

from __future__ import annotations

from typing import Any

import pytest

from tidbops_airflow.notifiers.alerts import RequestRoutesNotifier
from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.dags


def _callbacks(task: Any) -> list[Any]:
    cb = task.on_failure_callback
    if cb is None:
        return []
    return list(cb) if isinstance(cb, list | tuple) else [cb]


def _route_kinds(fleet: Any, cluster: str) -> list[str]:
    """The notifier class per alert route of ``cluster`` (what failure_notifiers builds)."""
    kinds = {"log": "TiDBOpsLogNotifier", "smtp": "SmtpNotifier", "webhook": "TiDBOpsWebhookNotifier"}
    return [kinds[fleet.alert_routes[r].kind] for r in fleet.clusters[cluster].alerts]


def test_every_dag_of_every_pipeline_alerts(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    """Each DAG has tasks whose failure alerts; per-cluster DAGs through exactly that cluster's routes."""
    assert not dagbag.import_errors
    pipelines = {dag_id.split("__")[0] for dag_id in dagbag.dag_ids}
    assert {"tidb_slow_query_harvest", "tidb_cluster_check", "tidb_restore", "tidb_backup_full"} <= pipelines
    for dag_id, dag in dagbag.dags.items():
        alerting = {t.task_id: _callbacks(t) for t in dag.tasks if _callbacks(t)}
        assert alerting, f"{dag_id}: no task alerts when it fails"
        if "__" not in dag_id:
            continue
        cluster = dag_id.split("__", 1)[1]
        for task_id, callbacks in alerting.items():
            got = [type(c).__name__ for c in callbacks]
            assert got == _route_kinds(fleet, cluster), (dag_id, task_id)


@pytest.mark.parametrize("pipeline", ["tidb_slow_query_harvest", "tidb_cluster_check"])
def test_the_three_that_had_none_alert_on_every_task(dagbag, fleet, pipeline: str) -> None:  # type: ignore[no-untyped-def]
    dags = [d for i, d in dagbag.dags.items() if i.startswith(pipeline + "__")]
    assert dags
    for dag in dags:
        cluster = dag.dag_id.split("__", 1)[1]
        for task in dag.tasks:
            notifiers = _callbacks(task)
            assert [type(n).__name__ for n in notifiers] == _route_kinds(fleet, cluster), (dag.dag_id, task.task_id)
            logs = [n for n in notifiers if isinstance(n, TiDBOpsLogNotifier)]
            assert all(n.cluster == cluster for n in logs)


def test_restore_alerts_once_per_failed_request_through_its_clusters_routes(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    alerting = {t.task_id for t in dag.tasks if _callbacks(t)}
    # the gate fails for every refused or failed request; record_restore when the audit row cannot be written
    # (the gate is then upstream_failed, so no second alert); the steps before them never alert themselves
    assert alerting == {"assert_restore_succeeded", "record_restore"}
    (notifier,) = _callbacks(dag.get_task("assert_restore_succeeded"))
    assert isinstance(notifier, RequestRoutesNotifier)
    prod = fleet.clusters["prod"]
    assert notifier.routes({"source_cluster": "prod", "target_cluster": "scratch1"}) == [
        *[(r, "prod") for r in prod.alerts],
        *[(r, "scratch1") for r in fleet.clusters["scratch1"].alerts if r not in prod.alerts],
    ]
    dev_routes = notifier.routes({"source_cluster": "dev", "target_cluster": "scratch1"})
    assert [r for r, _ in dev_routes] == list(
        dict.fromkeys([*fleet.clusters["dev"].alerts, *fleet.clusters["scratch1"].alerts])
    )
    # a request naming no cluster of the fleet still reaches every route some cluster uses
    every = {r for c in fleet.clusters.values() for r in c.alerts}
    assert {r for r, _ in notifier.routes({"source_cluster": "nope"})} == every
