"""The tidbops Airflow plugin: registers the platform with Airflow: macros, and the data protection view.

**The view.** ``tidbops_airflow.ui.app`` (fleet, cluster and audit pages, their JSON API, ``/metrics``) is
mounted in Airflow's API server at ``/tidbops`` (imported on its first request: ``LazyApp``) and linked
from Airflow's navigation as "Data protection" (an iframe at ``/plugin/data-protection``). Who may see
what: ``tidbops_airflow.ui.access``.

**Warm workers.** With ``[core] lazy_load_plugins = False``, every Airflow process imports its plugins
when it imports ``airflow``, so the scheduler imports this module before the LocalExecutor forks its
workers (and Celery's prefork workers before their pool forks). Then this module imports what the tasks
need at run time (our core, the restore engine and its operators, the drill and restore DAG builders
their DAG files call, SQLAlchemy, boto3 with the S3 service model loaded into boto3's default session
and shared with every later session, Great Expectations with what its first run loads and its Data Docs
templates compiled, PyMySQL's TLS context), and each
task process, forked from a warm parent, starts without paying for it again: about half a second less
per backup task (``bench/bench_backup_overhead.py``) and 3 to 5 s less for a drill's validation
(``bench/bench_drill_overhead.py``). The parent grows by what it imports (Great Expectations: some
150 MiB, shared with the forked children until they write to it). With lazy loading (Airflow's default)
nothing is preloaded and nothing changes.
"""

from __future__ import annotations

import logging

from airflow.plugins_manager import AirflowPlugin

from tidbops_airflow.ui import LazyApp

log = logging.getLogger(__name__)


def tso_to_iso(tso: int) -> str:
    """Jinja macro ``{{ macros.tidbops.tso_to_iso(ts) }}``: a TiDB TSO as an ISO-8601 UTC time."""
    from tidbops.tso import to_datetime

    return to_datetime(int(tso)).isoformat()


WARM_MODULES = (
    "tidbops.backup",
    "tidbops.catalog.store",
    "tidbops.storage",
    "tidbops.drill",
    "tidbops.restore",
    "tidbops.recovery.fingerprints",
    "tidbops.recovery.holds",
    "tidbops.recovery.run",
    "tidbops.recovery.scratch",
    "tidbops.recovery.timing",
    "tidbops.recovery.validate",
    "tidbops.tidb",
    "tidbops.validate.expectations",
    "tidbops_airflow.hooks.br",
    "tidbops_airflow.hooks.catalog",
    "tidbops_airflow.hooks.storage",
    "tidbops_airflow.hooks.tidb",
    "tidbops_airflow.operators.drill",
    "tidbops_airflow.operators.recovery",
    "tidbops_airflow.operators.restore",
    # what a task's parse of its DAG file imports (every task parses its DAG file first): the builders
    "tidbops_airflow.drill_dag",
    "tidbops_airflow.restore_dag",
    "pymysql",
    "boto3",
)


def warm_imports() -> list[str]:
    """Import the modules the tasks use at run time, Great Expectations (``tidbops.validate.expectations.
    preload``), and load boto3's S3 model; returns what was loaded.

    Never fails: a module that cannot be imported here is simply imported (and fails) in the task.
    """
    loaded: list[str] = []
    for name in WARM_MODULES:
        try:
            __import__(name)
            loaded.append(name)
        except Exception as exc:  # a warm-up must never break Airflow's start
            log.debug("tidbops warm-up: cannot import %s: %s", name, exc)
    try:
        from tidbops.validate.expectations import preload

        loaded += preload()
    except Exception as exc:
        log.debug("tidbops warm-up: cannot preload Great Expectations: %s", exc)
    try:
        import boto3

        from tidbops.storage import share_botocore_data

        # boto3.client() uses boto3's default session, whose loader caches the service model, endpoint
        # rules and client class: building one throwaway client (no request is made) fills those caches;
        # its loader becomes the one every later session shares (the provider makes one per hook)
        boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="warm-up",
            aws_secret_access_key="warm-up",  # noqa: S106 (a placeholder; never used for a request)
        )
        share_botocore_data(boto3.DEFAULT_SESSION)
        loaded.append("s3 client")
    except Exception as exc:
        log.debug("tidbops warm-up: cannot load the S3 model: %s", exc)
    return loaded


def _plugins_load_eagerly() -> bool:
    try:
        from airflow.configuration import conf

        return not conf.getboolean("core", "lazy_load_plugins", fallback=True)
    except Exception:
        return False


if _plugins_load_eagerly():
    warm_imports()


#: the view's FastAPI app, mounted in Airflow's API server
UI_PREFIX = "/tidbops"


class TiDBOpsPlugin(AirflowPlugin):
    name = "tidbops"
    macros = [tso_to_iso]  # noqa: RUF012 (AirflowPlugin API)
    fastapi_apps = [{"app": LazyApp(), "url_prefix": UI_PREFIX, "name": "tidbops data protection"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Data protection",
            "href": UI_PREFIX.lstrip("/") + "/",  # relative: Airflow's base URL is prepended
            "url_route": "data-protection",  # shown inside Airflow's UI, at /plugin/data-protection
            "destination": "nav",
            "nav_top_level": True,
            "icon": UI_PREFIX.lstrip("/") + "/icon.svg",
        }
    ]
