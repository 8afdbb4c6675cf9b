"""What an alert says: the failed task described as JSON-safe data, its error redacted and cut short.

Every notifier reads from here and nothing here reads a notifier, so imports go one way: ``payload`` ←
``log``/``webhook`` ← ``alerts`` (failure alerts: a route to its notifier) and ``health`` (health alerts).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from tidbops.redact import redact

if TYPE_CHECKING:
    from airflow.sdk import Context

MAX_ERROR = 2000


def clean_error(error: object) -> str | None:
    """An exception's text fit to leave Airflow: credentials redacted, cut short."""
    if error is None:
        return None
    text = redact(str(error))
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def alert_summary(context: Context | dict[str, Any], *, route: str, cluster: str | None) -> dict[str, Any]:
    """A JSON-safe description of the failed task (what the webhook posts and the log route logs)."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    return {
        "source": "tidbops",
        "route": route,
        "cluster": cluster,
        "state": "failed",
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "run_type": str(getattr(run_type, "value", run_type)) if run_type is not None else None,
        "try_number": getattr(ti, "try_number", None),
        "error": clean_error(context.get("exception")),
        "log_url": getattr(ti, "log_url", None),
    }


def slack_available() -> bool:
    """Whether the slack provider is installed (a ``slack`` route falls back to the log without it)."""
    return importlib.util.find_spec("airflow.providers.slack") is not None
