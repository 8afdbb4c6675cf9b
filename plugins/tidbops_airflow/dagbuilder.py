"""What every DAG file shares: the fleet, the per-cluster loop, and the DAG-level policy.

DAG files only wire tasks. They call ``clusters_for(pipeline)`` to get the clusters to build a DAG for
(only the one being run when a task executes, via ``get_parsing_context()``), and ``dag_args`` for the
policy every DAG follows: explicit schedule, start date, no catchup, owner, retries, tags, one run at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import get_parsing_context

from tidbops.config import ClusterConfig, Fleet, load_fleet_cached

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 (Airflow wants a plain tz)
RETRIES = 2


def dag_id_for(pipeline: str, cluster: str) -> str:
    return f"{pipeline}__{cluster}"


def fleet() -> Fleet:
    """The fleet config, validated once per content (cache in $AIRFLOW_HOME/.tidbops-cache)."""
    airflow_home = os.environ.get("AIRFLOW_HOME")
    return load_fleet_cached(cache_dir=os.path.join(airflow_home, ".tidbops-cache") if airflow_home else None)


def clusters_for(
    pipeline: str, include: Callable[[ClusterConfig], bool] = lambda c: not c.scratch
) -> Iterator[ClusterConfig]:
    """The valid clusters to build ``<pipeline>__<cluster>`` for; only the running one inside a task."""
    wanted = get_parsing_context().dag_id
    for cluster in fleet().clusters.values():
        if wanted and wanted != dag_id_for(pipeline, cluster.name):
            continue
        if include(cluster):
            yield cluster


def dag_args(pipeline: str, cluster: ClusterConfig, *, doc_md: str | None, tags: list[str]) -> dict[str, Any]:
    """Everything but ``schedule``, which each DAG file passes itself (explicit, per pipeline)."""
    return {
        "dag_id": dag_id_for(pipeline, cluster.name),
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "doc_md": doc_md,
        "tags": sorted({"tidbops", pipeline, f"cluster:{cluster.name}", f"env:{cluster.env}", *tags}),
        "default_args": {
            "owner": cluster.owner,
            "retries": RETRIES,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": True,
        },
    }
