"""Structure of `tidb_restore`: the trigger form (Params), tasks, branches, pools, trigger rules."""

from __future__ import annotations

import pytest

from tidbops.restore import allowed_targets

pytestmark = pytest.mark.dags


def test_one_manual_dag_for_the_fleet_with_the_form(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    assert dag.schedule is None
    params = dag.params
    assert list(params.keys()) == [
        "source_cluster", "restore_point", "target_cluster", "tables", "dry_run", "confirm", "validate_after", "reason",
    ]  # fmt: skip
    schema = {k: params.get_param(k).schema for k in params}
    assert schema["source_cluster"]["enum"] == [c.name for c in fleet.sources()] == ["dev", "uat", "prod"]
    assert schema["target_cluster"]["enum"] == list(fleet.clusters)
    assert "PRODUCTION" in schema["target_cluster"]["values_display"]["prod"]
    assert schema["tables"]["type"] == "array" and params["tables"] == []
    assert params["dry_run"] is True and params["validate_after"] is False and params["restore_point"] == "latest"
    assert schema["reason"]["minLength"] == 3 and not params.get_param("reason").has_value  # required
    for key in params:
        assert params.get_param(key).description, key


def test_tasks_branches_pools_and_trigger_rules(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    targets = sorted({t for s in fleet.sources() for t in allowed_targets(s, fleet.clusters)})
    assert targets == ["scratch1", "scratch2"]
    restores = {f"restore__{t}" for t in targets}
    assert {t.task_id for t in dag.tasks} == {
        "plan_restore", "choose_target", "validate", "record_restore", "assert_restore_succeeded", *restores
    }  # fmt: skip
    assert dag.get_task("choose_target").upstream_task_ids == {"plan_restore"}
    assert dag.get_task("choose_target").downstream_task_ids == restores
    assert dag.get_task("validate").upstream_task_ids == restores
    assert dag.get_task("record_restore").upstream_task_ids == {"validate"}
    assert dag.get_task("assert_restore_succeeded").upstream_task_ids == {"record_restore"}
    rules = {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks}
    assert rules["validate"] == "none_failed_min_one_success" and rules["record_restore"] == "all_done"
    # each target's restore runs in that cluster's BR pool, shared with its backups and drills
    assert {t.task_id: t.pool for t in dag.tasks if t.pool != "default_pool"} == {
        f"restore__{t}": f"br_{t}" for t in targets
    }
    assert all(dag.get_task(r).retries == 0 for r in restores) and dag.get_task("plan_restore").retries == 0
    assert dag.get_task("record_restore").retries == 3 and dag.get_task("assert_restore_succeeded").retries == 0
