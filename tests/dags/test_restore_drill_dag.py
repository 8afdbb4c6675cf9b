"""Structure of `tidb_restore_drill__<cluster>`: tasks, order, trigger rules, pools, params, alerts."""

from __future__ import annotations

import itertools

import pytest

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.dags

SNAPSHOT = [
    "check_drill_due",
    "choose_restore_point",
    "prepare_scratch",
    "restore_to_scratch",
    "validate_restored_data",
    "drop_scratch",
    "record_drill",
    "assert_drill_passed",
]
PITR = [*SNAPSHOT[:2], "wait_for_log_checkpoint", *SNAPSHOT[2:]]


def test_one_drill_dag_per_cluster_with_a_drill_target(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    built = {d.split("__", 1)[1] for d in dagbag.dag_ids if d.startswith("tidb_restore_drill__")}
    assert (
        built
        == {c.name for c in fleet.clusters.values() if c.drill.target and not c.scratch}
        == {"dev", "uat", "prod", "secure"}
    )
    for name in built:
        # checked hourly when schedules.drill is set (check_drill_due decides); off: manual runs only
        dag = dagbag.dags[f"tidb_restore_drill__{name}"]
        drill = fleet.clusters[name].schedules.drill
        assert dag.schedule == ("@hourly" if drill else None), name
        assert (f"`{drill}`" if drill else "manual runs only") in (dag.doc_md or "")


def test_the_schedule_follows_schedules_drill(fleet) -> None:  # type: ignore[no-untyped-def]
    from tidbops_airflow.drill_dag import build_restore_drill_dag

    dev = fleet.clusters["dev"]
    for drill, expected in (("0 3 * * 0", "@hourly"), (None, None)):
        cluster = dev.model_copy(update={"schedules": dev.schedules.model_copy(update={"drill": drill})})
        dag = build_restore_drill_dag("tidb_restore_drill", cluster, fleet, doc_md=None)
        assert dag.schedule == expected
        assert dag.get_task("check_drill_due").downstream_task_ids == {"choose_restore_point"}


@pytest.mark.parametrize(("cluster", "order"), [("dev", SNAPSHOT), ("uat", PITR), ("prod", PITR)])
def test_tasks_order_and_trigger_rules(dagbag, fleet, cluster: str, order: list[str]) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[f"tidb_restore_drill__{cluster}"]
    assert [t.task_id for t in dag.topological_sort()] == order
    for before, after in itertools.pairwise(order):
        assert before in dag.get_task(after).upstream_task_ids, (before, after)
    rules = {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks}
    assert rules.pop("drop_scratch") == rules.pop("record_drill") == "all_done"
    assert set(rules.values()) == {"all_success"}
    target = fleet.clusters[cluster].drill.target
    # BR runs in the scratch cluster's pool; nothing reads the source under the source's pool
    assert {t.task_id: t.pool for t in dag.tasks if t.pool != "default_pool"} == {"restore_to_scratch": f"br_{target}"}
    # run options come from the run's conf (no DAG Params: they cost parse time on every drill DAG)
    assert not dag.params and f"default `{target}`" in (dag.doc_md or "")
    assert dag.get_task("choose_restore_point").target == "{{ dag_run.conf.get('target') or '" + target + "' }}"
    prepare = dag.get_task("prepare_scratch")  # waits for a scratch another drill holds: retries for an hour
    assert (
        prepare.retries == 12 and prepare.retry_delay.total_seconds() == 300 and not prepare.retry_exponential_backoff
    )
    record = dag.get_task("record_drill")
    assert record.steps == (
        ("choose", "prepare", "restore", "validate")
        if order is SNAPSHOT
        else ("choose", "wait", "prepare", "restore", "validate")
    )
    shared = {"restore_to_scratch", "validate_restored_data"}  # the restore engine's operators: the plan says
    assert all(t.cluster.name == cluster for t in dag.tasks if t.task_id not in shared)
    assert {dag.get_task(t).plan_task_id for t in shared} == {"choose_restore_point"}
    # every step that holds backups or reads drills reaches the fleet's catalog
    for task_id in ("check_drill_due", "choose_restore_point", "restore_to_scratch", "validate_restored_data"):
        task = dag.get_task(task_id)
        assert (task.catalog_conn_id, task.catalog_sqlite_path) == (fleet.catalog.conn_id, fleet.catalog.sqlite_path), (
            task_id
        )
    assert "drill" in dag.tags and f"mode:{fleet.clusters[cluster].drill.mode}" in dag.tags


def test_every_step_alerts_but_the_gate(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    for name in ("dev", "prod"):
        cluster = fleet.clusters[name]
        expected = [
            SmtpNotifier if fleet.alert_routes[r].kind == "smtp" else TiDBOpsLogNotifier for r in cluster.alerts
        ]
        dag = dagbag.dags[f"tidb_restore_drill__{name}"]
        for task in dag.tasks:
            got = [type(n) for n in (task.on_failure_callback or [])]
            assert got == ([] if task.task_id == "assert_drill_passed" else expected), (name, task.task_id)


def test_the_wait_targets_the_chosen_point(dagbag) -> None:  # type: ignore[no-untyped-def]
    wait = dagbag.dags["tidb_restore_drill__uat"].get_task("wait_for_log_checkpoint")
    assert wait.target == "{{ ti.xcom_pull(task_ids='choose_restore_point')['restore_ts'] }}"
    assert wait.deferrable


def test_a_drill_target_not_marked_scratch_builds_no_drill_dag_for_that_cluster(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.dags.test_policy import REPO, _parse_in_subprocess

    shipped = (REPO / "include/config/clusters.yaml").read_text()
    bad = tmp_path / "clusters.yaml"
    bad.write_text(shipped.replace("target: scratch2", "target: dev", 1))  # uat's drill would restore into dev
    result = _parse_in_subprocess({"TIDBOPS_FLEET_CONFIG": str(bad)})
    dags = result["dags"]
    assert isinstance(dags, list) and "tidb_restore_drill__uat" not in dags
    assert {"tidb_restore_drill__dev", "tidb_restore_drill__prod"} <= set(dags)
    errors = result["errors"]
    assert isinstance(errors, dict)
    assert "cluster 'uat': drill.target: 'dev' is not marked scratch: true" in errors["tidbops_fleet_config.py"]


def test_source_fingerprints_add_a_last_task_to_the_backup_pipelines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys

    import yaml

    from tests.dags.test_policy import REPO

    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    for cluster in doc["clusters"]:
        if cluster["name"] == "dev":
            cluster["drill"].update(source_fingerprints=True, fingerprint_max_rows=1000)
    cfg = tmp_path / "clusters.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "out = {d: {t.task_id: sorted(t.upstream_task_ids) for t in bag.dags[d].tasks}\n"
        "       for d in ('tidb_backup_full__dev', 'tidb_backup_incremental__dev', 'tidb_backup_full__uat')}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "TIDBOPS_FLEET_CONFIG": str(cfg)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    tasks = json.loads(run.stdout.strip().splitlines()[-1])
    for dag_id in ("tidb_backup_full__dev", "tidb_backup_incremental__dev"):
        assert tasks[dag_id]["fingerprint_source"] == ["verify_backup"], dag_id
    assert "fingerprint_source" not in tasks["tidb_backup_full__uat"]


def test_a_finished_drill_is_an_event_of_the_clusters_drills_asset(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    """``record_drill`` runs after every drill that started (all_done) and carries the outlet."""
    drilled = [c for c in fleet.sources() if c.drill.target]
    assert drilled
    for cluster in drilled:
        dag = dagbag.dags[f"tidb_restore_drill__{cluster.name}"]
        outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
        assert outlets == {"record_drill": [f"x-tidb://{cluster.name}/drills"]}, dag.dag_id
