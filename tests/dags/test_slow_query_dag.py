"""Structure of tidb_slow_query_harvest__<cluster>."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dags

PIPELINE = "tidb_slow_query_harvest"


def test_one_dag_per_non_scratch_cluster(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    ids = {d for d in dagbag.dag_ids if d.startswith(PIPELINE + "__")}
    assert ids == {f"{PIPELINE}__{c.name}" for c in fleet.clusters.values() if not c.scratch}
    assert not any(fleet.clusters[i.split("__")[1]].scratch for i in ids)


def test_tasks_order_and_schedule(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for name, cluster in fleet.clusters.items():
        if cluster.scratch:
            continue
        dag = dagbag.dags[f"{PIPELINE}__{name}"]
        assert [t.task_id for t in dag.topological_sort()] == [
            "harvest_slow_queries", "report_slow_queries", "suggest_guardrails"
        ]  # fmt: skip
        assert dag.get_task("harvest_slow_queries").downstream_task_ids == {"report_slow_queries"}
        assert dag.get_task("report_slow_queries").downstream_task_ids == {"suggest_guardrails"}
        assert dag.schedule == cluster.schedules.slow_query_harvest
        assert dag.get_task("suggest_guardrails").apply is cluster.slow_query.apply_guardrails
        assert dag.get_task("harvest_slow_queries").cluster.slow_query == cluster.slow_query
