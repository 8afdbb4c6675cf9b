"""The slow-query harvest through a real Airflow on the playground: two nights, SQL source and file source.

Night 1 publishes 7 generated days (the baseline) and the DAG harvests up to the start of day 8; night 2
appends day 8, on which the generator made a few digests 4x slower, and the DAG harvests up to today.
The second run reads only the new entries (its window starts at the first run's watermark), and the
report for day 8 names the regressed digests, in ``slow_query_reports`` and in the task log.
dev reads ``tidbops_slowlog.cluster_slow_query`` over SQL; uat reads slow-log files below S3.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops.catalog.store import Catalog
from tidbops.slowlog.store import get_watermark, load_report
from tidbops_playground import slowlogs
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

PIPELINE = "tidb_slow_query_harvest"


def night(api: AirflowAPI, dag_id: str, until: datetime) -> str:
    run_id = api.trigger(dag_id, conf={"until": until.isoformat()}, note="e2e slow-query night")
    assert api.wait_run(dag_id, run_id, timeout=150) == "success", [
        (t["task_id"], t["state"]) for t in api.task_instances(dag_id, run_id)
    ]
    return run_id


@pytest.mark.parametrize(("cluster", "source"), [("dev", "sql"), ("uat", "files")], ids=["sql-dev", "files-uat"])
def test_two_nights_then_a_regression(
    cluster: str, source: str, playground_home: Path, registry: Registry, airflow: AirflowAPI
) -> None:
    today = datetime.now(UTC).date()
    state: dict[str, Any] = slowlogs.reset(playground_home, registry, cluster, today=today)
    days = state["days"]
    per_day = state["entries_per_day"]
    dag_id = f"{PIPELINE}__{cluster}"
    airflow.wait_for_dag(dag_id)
    airflow.unpause(dag_id)
    midnight = datetime.combine(today, time.min, UTC)

    run1 = night(airflow, dag_id, midnight - timedelta(days=1))
    h1 = airflow.xcom(dag_id, run1, "harvest_slow_queries")
    assert h1["source"].startswith(f"{source}:")
    assert h1["entries"] == sum(per_day[d] for d in days[:-1]) > 0
    assert h1["days"] == days[:-1] and h1["previous_watermark"] is None
    if source == "files":
        assert h1["files"] >= 7

    slowlogs.load_night(playground_home, registry, cluster, 2)
    run2 = night(airflow, dag_id, midnight)
    h2 = airflow.xcom(dag_id, run2, "harvest_slow_queries")
    assert h2["start"] == h1["end"] and h2["previous_watermark"] == h1["end"]
    assert h2["entries"] == per_day[days[-1]] > 0  # only night 2's entries
    assert h2["days"] == [days[-1]]

    summary = airflow.xcom(dag_id, run2, "report_slow_queries")
    assert summary["day"] == days[-1] and summary["top"]
    regressed = set(state["regressed_digests"])
    assert regressed & set(summary["regressed_digests"]), (regressed, summary)

    catalog = Catalog.from_url(f"sqlite:///{playground_home / 'airflow' / 'tidbops_catalog.db'}")
    try:
        report = load_report(catalog, cluster, days[-1])
        assert report is not None and len(report["baseline"]) == 7
        stored = {r["digest"] for r in report["regressions"]}
        assert regressed & stored
        assert report["guardrails"] and report["guardrails_run"]["mode"] == "dry_run"
        assert report["guardrails_run"]["applied"] == []
        baseline_report = load_report(catalog, cluster, days[-2])
        assert baseline_report is not None and not baseline_report["regressions"]
        assert get_watermark(catalog, cluster, h2["source"]) == midnight
    finally:
        catalog.close()

    log = airflow.task_log(dag_id, run2, "report_slow_queries")
    assert any(d in log for d in regressed & stored), log[-3000:]
    assert "regression" in log.lower()
    guard_log = airflow.task_log(dag_id, run2, "suggest_guardrails")
    assert "dry run" in guard_log

    # nothing new: a third night reads an empty window and stores nothing
    run3 = night(airflow, dag_id, midnight)
    h3 = airflow.xcom(dag_id, run3, "harvest_slow_queries")
    assert h3["entries"] == 0 and h3["days"] == [] and h3["start"] == h3["end"] == h2["end"]
