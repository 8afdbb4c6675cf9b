"""Failure alerts, one Airflow notifier per alert route of the fleet config (``alert_routes``).

Route kinds: ``smtp`` (the smtp provider's ``SmtpNotifier``: ``to``, ``conn_id`` = the smtp connection),
``webhook`` (``TiDBOpsWebhookNotifier``: JSON POSTed to the URL of the http connection ``conn_id``),
``slack`` (the slack provider's ``SlackWebhookNotifier`` on the slack-webhook connection ``conn_id``,
when that provider is installed; otherwise the alert is logged and the log says why) and ``log`` (the
alert goes into the task log). A cluster's ``alerts`` lists the routes its DAGs alert through; the
notifiers are attached as ``on_failure_callback`` to every task, so they fire once a task has used up
its retries. What an alert says (``alert_summary``) is redacted: no credential leaves through it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from tidbops.redact import redact

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context

    from tidbops.config import AlertRoute, ClusterConfig, Fleet

MAX_ERROR = 2000
SUBJECT = "[tidbops] {{ ti.dag_id }}: {{ ti.task_id }} failed (try {{ ti.try_number }})"
HTML = (
    "<p>Task <b>{{ ti.task_id }}</b> of <b>{{ ti.dag_id }}</b> (run {{ ti.run_id }}) failed after its retries.</p>"
    "<pre>{{ exception }}</pre>"
    '<p><a href="{{ ti.log_url }}">Task log</a>. Runbook: the DAG\'s documentation in the Airflow UI.</p>'
)
SLACK_TEXT = (
    ":red_circle: tidbops: `{{ ti.dag_id }}` task `{{ ti.task_id }}` failed (try {{ ti.try_number }}, "
    "run `{{ ti.run_id }}`): {{ exception }} <{{ ti.log_url }}|log>"
)


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
    return importlib.util.find_spec("airflow.providers.slack") is not None


def notifier_for(name: str, route: AlertRoute, cluster: str) -> BaseNotifier:
    """The notifier of one alert route."""
    from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

    if route.kind == "log":
        return TiDBOpsLogNotifier(route=name, cluster=cluster)
    if route.kind == "webhook":
        from tidbops_airflow.notifiers.webhook import TiDBOpsWebhookNotifier

        assert route.conn_id is not None  # the config model requires it
        return TiDBOpsWebhookNotifier(http_conn_id=route.conn_id, route=name, cluster=cluster)
    if route.kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=list(route.to), smtp_conn_id=route.conn_id, subject=SUBJECT, html_content=HTML)
    if route.kind == "slack":
        if not slack_available():
            return TiDBOpsLogNotifier(
                route=name,
                cluster=cluster,
                note="route kind slack, but apache-airflow-providers-slack is not installed: logged instead",
            )
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=route.conn_id, text=SLACK_TEXT)
    raise ValueError(f"alert route {name!r}: unknown kind {route.kind!r}")


def failure_notifiers(fleet: Fleet, cluster: ClusterConfig) -> list[BaseNotifier]:
    """One notifier per route in ``cluster.alerts`` (routes are checked to exist when the config loads)."""
    return [notifier_for(name, fleet.alert_routes[name], cluster.name) for name in cluster.alerts]
