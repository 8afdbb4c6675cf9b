"""DAG policy: every DAG of every pipeline file, built from the fleet config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
PIPELINES = {
    "tidb_cluster_check",
    "tidb_backup_full",
    "tidb_backup_incremental",
    "tidb_slow_query_harvest",
    "tidb_log_backup_check",
    "tidb_restore_drill",  # issue #6
    "tidb_verify",  # issue #16
    "tidb_retention",  # issue #16
}
# fleet-level DAGs (one for the whole fleet; the cluster is a run parameter): issue #7 names its id
FLEET_DAGS = {"tidb_restore"}
PER_CLUSTER = re.compile(r"^(?P<pipeline>[a-z_]+?)__(?P<cluster>[a-z0-9_-]+)$")


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_every_dag_follows_policy(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.dags, "no DAGs were built"
    for dag_id, dag in dagbag.dags.items():
        if dag_id in FLEET_DAGS:
            assert dag.schedule is None and dag.catchup is False and dag.start_date is not None, dag_id
            assert {"tidbops", dag_id} <= set(dag.tags) and dag.doc_md and "Runbook" in dag.doc_md, dag_id
            assert all(t.owner not in ("", "airflow") for t in dag.tasks), dag_id
            continue
        m = PER_CLUSTER.match(dag_id)
        assert m, f"{dag_id}: ids are <pipeline>__<cluster>"
        assert m["pipeline"] in PIPELINES, dag_id
        assert m["cluster"] in fleet.clusters, dag_id
        cluster = fleet.clusters[m["cluster"]]
        assert dag.start_date is not None and dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert {"tidbops", m["pipeline"], f"cluster:{cluster.name}", f"env:{cluster.env}"} <= set(dag.tags), dag_id
        assert dag.doc_md and "Runbook" in dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.owner == cluster.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 2, (dag_id, task.task_id)


def test_every_dag_has_a_one_line_description(dagbag) -> None:  # type: ignore[no-untyped-def]
    """What the Dags list shows under each id: one line, short, and not the same for two pipelines."""
    by_pipeline: dict[str, set[str]] = {}
    for dag_id, dag in dagbag.dags.items():
        text = dag.description
        assert text and text.strip() == text and "\n" not in text, (dag_id, text)
        assert 20 <= len(text) <= 120, (dag_id, len(text), text)
        by_pipeline.setdefault(dag_id.split("__")[0], set()).add(text)
    assert set(by_pipeline) == PIPELINES | FLEET_DAGS
    firsts = [sorted(texts)[0] for texts in by_pipeline.values()]
    assert len(set(firsts)) == len(firsts), "two pipelines describe themselves alike"


def test_a_description_is_cut_to_one_short_line() -> None:
    from tidbops_airflow.dagbuilder import one_line

    assert one_line("  two\n lines  ") == "two lines"
    long = one_line("x" * 500)
    assert len(long) == 120 and long.endswith("…")
    with pytest.raises(ValueError, match="needs a description"):
        one_line(" \n ")


def test_schedules_come_from_config(dagbag, fleet) -> None:  # type: ignore[no-untyped-def]
    for name, cluster in fleet.clusters.items():
        dag = dagbag.dags[f"tidb_cluster_check__{name}"]
        assert dag.schedule == cluster.schedules.cluster_check


def test_cluster_check_structure(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["tidb_cluster_check__prod"]
    assert [t.task_id for t in dag.tasks] == ["check_cluster"]
    task = dag.get_task("check_cluster")
    assert task.tidb_conn_id == "tidb_prod"


def test_parse_time(dagbag) -> None:  # type: ignore[no-untyped-def]
    for stat in dagbag.dagbag_stats:
        assert stat.duration.total_seconds() < 3, f"{stat.file} took {stat.duration} to parse"


def _parse_in_subprocess(env_extra: dict[str, str]) -> dict[str, object]:
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'great_expectations', 'pandas', 'boto3', 'kubernetes', 'pymysql'})\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': {k.rsplit('/', 1)[-1]: v for k, v in bag.import_errors.items()}, 'heavy': heavy}))\n"
    )
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_parsing_imports_nothing_heavy() -> None:
    result = _parse_in_subprocess({})
    assert result["heavy"] == [], "DAG files must not import GX, pandas, boto3, kubernetes or pymysql at parse time"


def test_bad_cluster_does_not_break_the_others_and_shows_in_ui(tmp_path: Path) -> None:
    shipped = (REPO / "include/config/clusters.yaml").read_text()
    bad = tmp_path / "clusters.yaml"
    bad.write_text(shipped.replace('full: "0 1 * * 0"', 'full: "61 1 * * 0"'))
    result = _parse_in_subprocess({"TIDBOPS_FLEET_CONFIG": str(bad)})
    dags = result["dags"]
    assert isinstance(dags, list)
    assert "tidb_cluster_check__uat" not in dags
    assert {"tidb_cluster_check__dev", "tidb_cluster_check__prod"} <= set(dags)
    errors = result["errors"]
    assert isinstance(errors, dict) and list(errors) == ["tidbops_fleet_config.py"]
    assert (
        "cluster 'uat': schedules.full: '61 1 * * 0' is not a valid cron expression"
        in errors["tidbops_fleet_config.py"]
    )
