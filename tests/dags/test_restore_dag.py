"""Structure of `tidb_restore`: the trigger form (Params), tasks, branches, pools, trigger rules."""

from __future__ import annotations

import pytest

from tidbops.restore_rules import allowed_targets

pytestmark = pytest.mark.dags


def test_one_manual_dag_for_the_fleet_with_the_form(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    assert dag.schedule is None
    params = dag.params
    assert list(params.keys()) == [
        "source_cluster", "restore_point", "target_cluster", "tables", "dry_run", "confirm", "validate_after", "reason",
    ]  # fmt: skip
    schema = {k: params.get_param(k).schema for k in params}
    assert schema["source_cluster"]["enum"] == [c.name for c in fleet.sources()] == ["dev", "uat", "prod", "secure"]
    # only the clusters some source may be restored into, labelled with who may use them, no word twice
    assert schema["target_cluster"]["enum"] == ["scratch1", "scratch2", "secure"]
    assert schema["target_cluster"]["values_display"] == {
        "scratch1": "scratch1 (scratch) — for dev, uat, prod only",
        "scratch2": "scratch2 (scratch) — for dev, uat, prod only",
        "secure": "secure (test) — for itself only (in place)",
    }  # fmt: skip
    assert schema["source_cluster"]["values_display"] == {
        "dev": "dev", "uat": "uat", "prod": "prod (PRODUCTION)", "secure": "secure (test)",
    }  # fmt: skip
    assert (
        "Allowed: dev, uat, prod → scratch1, scratch2; secure → secure."
        in params.get_param("target_cluster").description
    )
    # optional fields are not marked required: the form marks a field whose type does not admit null
    assert schema["tables"]["type"] == ["null", "array"] and params["tables"] == []
    assert "null" in schema["confirm"]["type"]
    params.get_param("tables").resolve(None)  # an empty field validates
    assert params["dry_run"] is True and params["validate_after"] is False and params["restore_point"] == "latest"
    assert schema["reason"]["minLength"] == 3 and not params.get_param("reason").has_value  # required
    for key in params:
        assert params.get_param(key).description, key


def test_tasks_branches_pools_and_trigger_rules(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    targets = sorted({t for s in fleet.sources() for t in allowed_targets(s, fleet.clusters)})
    assert targets == ["scratch1", "scratch2", "secure"]
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


def _fleet_with_rules(tmp_path):  # type: ignore[no-untyped-def]
    from tidbops.config import load_fleet

    path = tmp_path / "clusters.yaml"
    path.write_text(
        """
version: 1
production_envs: [live]
defaults:
  storage: {uri: "local:///tmp/b"}
clusters:
  - {name: dev, env: dev, pd: ["h:1"], tidb_conn_id: t}
  - {name: eu1, env: live, pd: ["h:2"], tidb_conn_id: t,
     restore: {allowed_targets: [eu1, staging], allow_in_place: true, allow_production_targets: true}}
  - {name: staging, env: uat, pd: ["h:3"], tidb_conn_id: t, restore: {allowed_targets: [scratch]}}
  - {name: scratch, env: scratch, pd: ["h:4"], tidb_conn_id: t, scratch: true}
  - {name: lab, env: test, pd: ["h:5"], tidb_conn_id: t, scratch: true}
"""
    )
    fleet = load_fleet(path)
    assert fleet.ok, fleet.issues
    return fleet


def test_the_target_list_says_which_sources_may_use_each_target(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tidbops_airflow.restore_dag import restore_params, target_choices

    fleet = _fleet_with_rules(tmp_path)
    targets, labels, rule = target_choices(fleet)
    for source in fleet.sources():  # every pair the form offers for a source is one the guardrails allow
        for target in allowed_targets(source, fleet.clusters):
            assert target in targets and (source.name in labels[target] or "any source" in labels[target])
    assert targets == ["eu1", "staging", "scratch", "lab"]
    assert labels == {
        "eu1": "eu1 (live, PRODUCTION) — for itself only (in place)",
        "staging": "staging (uat) — for eu1 only",
        "scratch": "scratch (scratch) — for dev, staging only",
        "lab": "lab (test, scratch) — for dev only",
    }
    assert rule == "Allowed: dev → lab, scratch; eu1 → eu1, staging; staging → scratch."
    params = restore_params(fleet)
    assert params["target_cluster"].schema["enum"] == targets
    assert params["target_cluster"].value == "scratch"  # a scratch cluster by default


def test_a_restore_is_an_event_of_the_targets_restores_asset(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_restore"]
    outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
    assert outlets == {f"restore__{t}": [f"x-tidb://{t}/restores"] for t in ("scratch1", "scratch2", "secure")}


def test_the_forms_choices_are_shared_by_its_tasks_and_serialize_as_plain_lists(dagbag) -> None:  # type: ignore[no-untyped-def]
    """Airflow deep-copies a DAG's params into every task: the fleet-sized choices are shared, not copied
    (one restore task per possible target), and still reach the form as plain JSON lists and objects."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["tidb_restore"]
    form = dag.params.get_param("target_cluster").schema
    for task in dag.tasks:
        copied = task.params.get_param("target_cluster").schema
        assert copied["enum"] is form["enum"] and copied["values_display"] is form["values_display"]
    data = DagSerialization.to_dict(dag)
    params = dict(data["dag"]["params"])
    schema = params["target_cluster"]["schema"]["__var"]
    assert schema["enum"] == ["scratch1", "scratch2", "secure"]
    assert schema["values_display"]["__var"]["secure"] == "secure (test) — for itself only (in place)"
    served = DagSerialization.from_dict(data)
    assert served.params.get_param("source_cluster").schema["enum"] == ["dev", "uat", "prod", "secure"]
