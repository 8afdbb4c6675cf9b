"""Structure of tidb_log_backup_check__<cluster>: one DAG per cluster with log backup enabled."""

from __future__ import annotations

import pytest

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.dags

PIPELINE = "tidb_log_backup_check"


def test_one_dag_per_cluster_with_log_backup(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    ids = {d for d in dagbag.dag_ids if d.startswith(PIPELINE + "__")}
    wanted = {c.name for c in fleet.clusters.values() if c.log_backup.enabled and not c.scratch}
    assert wanted == {"dev", "uat", "prod"}
    assert ids == {f"{PIPELINE}__{name}" for name in wanted}


def test_tasks_branch_pool_and_schedule(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for name in ("dev", "uat", "prod"):
        cluster = fleet.clusters[name]
        dag = dagbag.dags[f"{PIPELINE}__{name}"]
        assert dag.schedule == cluster.schedules.log_backup_check == "*/5 * * * *"
        check, repair, notify, gate = (
            dag.get_task(t)
            for t in ("check_log_backup", "repair_log_backup", "notify_log_backup", "assert_log_backup_healthy")
        )
        assert check.downstream_task_ids == {"repair_log_backup", "notify_log_backup"}
        assert repair.downstream_task_ids == {"notify_log_backup"} and notify.downstream_task_ids == {gate.task_id}
        assert (check.repair_task_id, check.notify_task_id) == ("repair_log_backup", "notify_log_backup")
        assert check.inherits_from_skipmixin and notify.trigger_rule == "none_failed_min_one_success"
        # only the step that changes the cluster waits for its BR pool; status reads do not
        assert {t.task_id for t in dag.tasks if t.pool == f"br_{name}"} == {"repair_log_backup"}
        assert [r for r, _ in notify.routes] == list(cluster.alerts)
        assert check.frozen_after is None, "from the run's conf, else the default (a Param costs parse time)"
        assert all(t.cluster.name == name for t in dag.tasks)


def test_alerting(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    dag = dagbag.dags[f"{PIPELINE}__prod"]
    for task_id in ("check_log_backup", "repair_log_backup", "notify_log_backup"):
        kinds = [type(n) for n in dag.get_task(task_id).on_failure_callback]
        assert kinds == [TiDBOpsLogNotifier, SmtpNotifier], task_id
    # the gate fails on every check of an episode: its alerts went out, de-duplicated, from notify
    assert not dag.get_task("assert_log_backup_healthy").on_failure_callback


def test_log_backup_off_builds_no_dag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.dags.test_policy import REPO, _parse_in_subprocess

    cfg = tmp_path / "clusters.yaml"
    text = (REPO / "include/config/clusters.yaml").read_text()
    assert "      task_name: pitr-uat\n" in text
    cfg.write_text(text.replace("      enabled: true\n      task_name: pitr-uat\n", "      enabled: false\n", 1))
    result = _parse_in_subprocess({"TIDBOPS_FLEET_CONFIG": str(cfg)})
    dags = result["dags"]
    assert isinstance(dags, list) and f"{PIPELINE}__uat" not in dags and f"{PIPELINE}__dev" in dags
    assert result["errors"] == {}
