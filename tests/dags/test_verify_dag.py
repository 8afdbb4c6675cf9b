"""Structure of the verify pipeline: `tidb_verify__<cluster>` (#16)."""

from __future__ import annotations

import pytest

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.dags

PIPELINE = "tidb_verify"


def test_one_dag_per_non_scratch_cluster_on_schedules_verify(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    built = {d.split("__", 1)[1] for d in dagbag.dag_ids if d.startswith(f"{PIPELINE}__")}
    assert built == {c.name for c in fleet.sources()}
    assert not built & {n for n, c in fleet.clusters.items() if c.scratch}
    for cluster in fleet.sources():
        dag = dagbag.dags[f"{PIPELINE}__{cluster.name}"]
        assert dag.schedule == cluster.schedules.verify
        assert dag.max_active_runs == 1 and dag.catchup is False
        assert dag.description and "\n" not in dag.description
        assert dag.doc_md and "Runbook" in dag.doc_md and "verify" in dag.tags


def test_tier1_then_tier2_in_the_clusters_br_pool(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for cluster in fleet.sources():
        dag = dagbag.dags[f"{PIPELINE}__{cluster.name}"]
        assert [t.task_id for t in dag.topological_sort()] == ["verify_files", "verify_br_checksum"]
        files, checksum = dag.get_task("verify_files"), dag.get_task("verify_br_checksum")
        assert checksum.upstream_task_ids == {"verify_files"}
        assert checksum.trigger_rule == "all_success"  # a green run means both tiers passed
        assert checksum.pool == f"br_{cluster.name}" and files.pool != f"br_{cluster.name}"
        for task in (files, checksum):
            assert task.cluster.name == cluster.name
            assert (task.catalog_conn_id, task.catalog_sqlite_path) == (
                fleet.catalog.conn_id,
                fleet.catalog.sqlite_path,
            )


def test_every_task_alerts_through_the_clusters_routes(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    for cluster in fleet.sources():
        for task in dagbag.dags[f"{PIPELINE}__{cluster.name}"].tasks:
            kinds = [type(n) for n in task.on_failure_callback]
            expected = [
                SmtpNotifier if fleet.alert_routes[r].kind == "smtp" else TiDBOpsLogNotifier for r in cluster.alerts
            ]
            assert kinds == expected, task.task_id
