"""What every pipeline shares: the fleet, the per-cluster loop, and the DAG-level policy.

A DAG file (``dags/<pipeline>.py``) holds the pipeline's documentation and calls ``clusters_for(pipeline)``
to get the clusters to build a DAG for (only the one being run when a task executes, via
``get_parsing_context()``), and, for each, the pipeline's builder (``build_<x>_dag`` in
``tidbops_airflow/<x>_dag.py``), which makes and wires the tasks. Builders take ``dag_args`` for the
policy every DAG follows: explicit schedule, start date, no catchup, owner, retries, tags, one run at a
time, and a one-line ``description`` (what the Dags list shows under the id; ``DESCRIPTION_MAX`` at most).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import get_parsing_context

from tidbops.config import ClusterConfig, ConfigIssue, Fleet, default_config_path, load_fleet_cached
from tidbops.errors import ConfigError

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 (Airflow wants a plain tz)
RETRIES = 2
DESCRIPTION_MAX = 120


def one_line(description: str) -> str:
    """A DAG description as the Dags list shows it: one line of at most ``DESCRIPTION_MAX`` characters."""
    line = " ".join(description.split())
    if not line:
        raise ValueError("a DAG needs a description")
    return line if len(line) <= DESCRIPTION_MAX else line[: DESCRIPTION_MAX - 1].rstrip() + "…"


def schedule_text(schedule: str | None) -> str:
    """``on 0 1 * * *`` or ``manual runs only``, for descriptions."""
    return f"on {schedule}" if schedule else "manual runs only"


def dag_id_for(pipeline: str, cluster: str) -> str:
    return f"{pipeline}__{cluster}"


class FleetConfigProblems(Exception):
    """The fleet config has problems: raised by ``dags/tidbops_fleet_config.py`` alone, one line per problem."""


def fleet() -> Fleet:
    """The fleet config, validated once per content (cache in $AIRFLOW_HOME/.tidbops-cache).

    A file that cannot be used at all (``ConfigError``) gives a fleet without clusters whose one issue is
    that line: every pipeline file then builds no cluster's DAG (and fails nothing), and
    ``dags/tidbops_fleet_config.py`` shows the line as its import error.
    """
    airflow_home = os.environ.get("AIRFLOW_HOME")
    try:
        loaded = load_fleet_cached(cache_dir=os.path.join(airflow_home, ".tidbops-cache") if airflow_home else None)
    except ConfigError as exc:
        return Fleet(path=default_config_path(), clusters={}, issues=(ConfigIssue(None, "", str(exc)),))
    refusal = sqlite_catalog_refusal(loaded.catalog.conn_id, loaded.catalog.sqlite_path, _executor_setting())
    if refusal:
        return Fleet(path=loaded.path, clusters={}, issues=(ConfigIssue(None, "catalog.conn_id", refusal),))
    return loaded


SINGLE_HOST_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def _executor_setting() -> str:
    from airflow.configuration import conf

    return str(conf.get("core", "executor", fallback="LocalExecutor"))


def multi_host_executors(setting: str) -> list[str]:
    """The executors of Airflow's ``[core] executor`` that may run tasks on other hosts: every one but
    Local/Sequential/Debug (Celery, Kubernetes, Edge, ECS, Batch, custom ones). The setting is a comma
    list whose entries are a class name, a dotted path or ``alias:path``."""
    names = (entry.strip().rsplit(":", 1)[-1].rsplit(".", 1)[-1] for entry in setting.split(","))
    return [name for name in names if name and name not in SINGLE_HOST_EXECUTORS]


def sqlite_catalog_refusal(
    conn_id: str | None, sqlite_path: str | None, executor: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why a SQLite catalog cannot serve this deployment, or None: with an executor that runs tasks on
    several hosts each would write its own file, splitting the history. A catalog connection counts as
    SQLite when its ``AIRFLOW_CONN_*`` variable says so (no lookup at parse time otherwise)."""
    remote = multi_host_executors(executor)
    if not remote:
        return None
    env = os.environ if environ is None else environ
    if conn_id is not None:
        raw = env.get(f"AIRFLOW_CONN_{conn_id.upper()}", "").strip()
        if not (raw.startswith("sqlite:") or raw.replace(" ", "").find('"conn_type":"sqlite"') >= 0):
            return None
        where = f"connection {conn_id!r} is SQLite"
    elif sqlite_path:
        where = f"it is the SQLite file {sqlite_path} (catalog.sqlite_path)"
    else:
        from tidbops_airflow.hooks.catalog import airflow_catalog_url

        url = airflow_catalog_url(env)
        if not url.startswith("sqlite"):
            return None
        where = f"it is the SQLite file {url.removeprefix('sqlite:///')} (no catalog.conn_id)"
    return (
        f"a SQLite catalog cannot serve [core] executor = {executor.strip()} ({', '.join(remote)} run tasks on "
        f"other hosts, each of which would keep its own catalog), and {where}: set catalog.conn_id to an "
        "Airflow connection of a MySQL-compatible database (TiDB, MySQL, MariaDB; docs/deploy.md, "
        '"The catalog database")'
    )


def fleet_problems(current: Fleet) -> str | None:
    """The text of ``FleetConfigProblems``: what is wrong, one problem a line; None when nothing is."""
    if current.ok:
        return None
    lines = "\n".join(f"  - {issue}" for issue in current.issues)
    return (
        f"{current.path}: {len(current.issues)} problem(s) in the fleet config; the clusters named have no DAGs, "
        f"and a problem outside any cluster stops them all:\n{lines}"
    )


_scratch: tuple[Fleet, list[str]] | None = None


def scratch_clusters(current: Fleet) -> list[str]:
    """The names of the fleet's scratch clusters, sorted: worked out once per fleet, not once per DAG (a
    drill DAG per cluster names them all: a loop over the fleet per cluster grows with its square)."""
    global _scratch
    if _scratch is None or _scratch[0] is not current:
        _scratch = (current, sorted(c.name for c in current.clusters.values() if c.scratch))
    return _scratch[1]


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


def dag_args(
    pipeline: str, cluster: ClusterConfig, *, doc_md: str | None, tags: list[str], description: str
) -> dict[str, Any]:
    """Everything but ``schedule``, which each builder passes itself (explicit, per pipeline)."""
    return {
        "dag_id": dag_id_for(pipeline, cluster.name),
        "description": one_line(description),
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
