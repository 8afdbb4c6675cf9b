"""The retention pipeline's DAGs (#16): one per backed-up cluster, in its BR pool, on its schedule."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dags


def test_one_retention_dag_per_backed_up_cluster(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    expected = {f"tidb_retention__{n}" for n, c in fleet.clusters.items() if not c.scratch}
    assert {d for d in dagbag.dags if d.startswith("tidb_retention__")} == expected
    for name, cluster in fleet.clusters.items():
        if cluster.scratch:
            continue
        dag = dagbag.dags[f"tidb_retention__{name}"]
        assert dag.schedule == cluster.schedules.retention
        assert [t.task_id for t in dag.topological_sort()] == ["measure_storage", "apply_retention"]
        apply_task = dag.get_task("apply_retention")
        assert apply_task.pool == f"br_{name}" and apply_task.trigger_rule == "all_done"
        assert [t.task_id for t in dag.leaves] == ["apply_retention"]  # a refusal makes the run red
        assert dag.description and cluster.retention.window_text in dag.description
        assert ("dry run" in dag.description) == cluster.retention_dry_run


def test_production_reports_only_by_default(fleet) -> None:  # type: ignore[no-untyped-def]
    prod = [c for c in fleet.clusters.values() if c.is_production and c.retention.dry_run is None]
    assert prod and all(c.retention_dry_run for c in prod)
