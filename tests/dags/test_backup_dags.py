"""Structure of the backup pipelines: `tidb_backup_full__<cluster>` and `tidb_backup_incremental__<cluster>`."""

from __future__ import annotations

import itertools

import pytest

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.dags

PIPELINES = {"tidb_backup_full": "full", "tidb_backup_incremental": "incremental"}
ORDER = ["check_cluster", "plan_backup", "run_br_backup", "record_backup", "verify_backup"]


def test_one_dag_per_pipeline_for_every_non_scratch_cluster(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for pipeline in PIPELINES:
        built = {d.split("__", 1)[1] for d in dagbag.dag_ids if d.startswith(f"{pipeline}__")}
        assert built == {c.name for c in fleet.sources()}, pipeline
        assert not built & {n for n, c in fleet.clusters.items() if c.scratch}


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_tasks_and_their_order(dagbag, fleet, pipeline: str) -> None:  # type: ignore[no-untyped-def]
    for cluster in fleet.sources():
        dag = dagbag.dags[f"{pipeline}__{cluster.name}"]
        assert sorted(t.task_id for t in dag.tasks) == sorted(ORDER)
        for before, after in itertools.pairwise(ORDER):
            assert dag.get_task(after).upstream_task_ids >= {before}, (dag.dag_id, before, after)
        assert [t.task_id for t in dag.topological_sort()] == ORDER
        assert dag.get_task("plan_backup").kind == PIPELINES[pipeline]
        # each step reads the XCom of the step it names
        assert dag.get_task("plan_backup").facts_task_id == "check_cluster"
        assert dag.get_task("run_br_backup").target_task_id == "plan_backup"
        record = dag.get_task("record_backup")
        assert (record.target_task_id, record.backup_task_id) == ("plan_backup", "run_br_backup")
        assert dag.get_task("verify_backup").target_task_id == "plan_backup"
        assert all(t.cluster.name == cluster.name for t in dag.tasks)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_br_runs_in_the_clusters_one_slot_pool(dagbag, fleet, pipeline: str) -> None:  # type: ignore[no-untyped-def]
    for cluster in fleet.sources():
        dag = dagbag.dags[f"{pipeline}__{cluster.name}"]
        assert dag.get_task("run_br_backup").pool == f"br_{cluster.name}"
        assert {t.task_id for t in dag.tasks if t.pool == f"br_{cluster.name}"} == {"run_br_backup"}
        assert dag.max_active_runs == 1


def test_schedules_come_from_the_fleet_config(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for cluster in fleet.sources():
        assert dagbag.dags[f"tidb_backup_full__{cluster.name}"].schedule == cluster.schedules.full
        assert dagbag.dags[f"tidb_backup_incremental__{cluster.name}"].schedule == cluster.schedules.incremental
    assert dagbag.dags["tidb_backup_full__prod"].schedule == "0 0 * * *"
    assert dagbag.dags["tidb_backup_incremental__dev"].schedule == "0 */4 * * *"


def test_schedule_off_builds_a_manual_only_dag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.dags.test_policy import REPO, _parse_in_subprocess

    cfg = tmp_path / "clusters.yaml"
    cfg.write_text(
        (REPO / "include/config/clusters.yaml").read_text().replace('incremental: "0 */6 * * *"', "incremental: off")
    )
    code_check = _parse_in_subprocess({"TIDBOPS_FLEET_CONFIG": str(cfg)})
    assert "tidb_backup_incremental__uat" in code_check["dags"]  # type: ignore[operator]
    assert code_check["errors"] == {}


def test_every_task_alerts_through_the_clusters_routes(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    for pipeline in PIPELINES:
        for cluster in fleet.sources():
            dag = dagbag.dags[f"{pipeline}__{cluster.name}"]
            for task in dag.tasks:
                kinds = [type(n) for n in task.on_failure_callback]
                expected = [
                    SmtpNotifier if fleet.alert_routes[r].kind == "smtp" else TiDBOpsLogNotifier for r in cluster.alerts
                ]
                assert kinds == expected, (dag.dag_id, task.task_id)


def test_catalog_location_comes_from_the_fleet_config(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_backup_full__uat"]
    for task in dag.tasks:
        assert (task.catalog_conn_id, task.catalog_sqlite_path) == (fleet.catalog.conn_id, fleet.catalog.sqlite_path)


def test_a_verified_backup_is_an_event_of_the_clusters_backups_asset(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    """Only ``verify_backup`` has an outlet: Airflow records the event when it succeeds (a verified backup)."""
    for pipeline in ("tidb_backup_full", "tidb_backup_incremental"):
        for cluster in fleet.sources():
            dag = dagbag.dags[f"{pipeline}__{cluster.name}"]
            outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
            assert outlets == {"verify_backup": [f"x-tidb://{cluster.name}/backups"]}, dag.dag_id
