"""Failure alerts, one Airflow notifier per alert route of the fleet config (``alert_routes``).

Route kinds: ``smtp`` (the smtp provider's ``SmtpNotifier``: ``to``, ``conn_id`` = the smtp connection),
``webhook`` (``TiDBOpsWebhookNotifier``: JSON POSTed to the URL of the http connection ``conn_id``),
``slack`` (the slack provider's ``SlackWebhookNotifier`` on the slack-webhook connection ``conn_id``,
when that provider is installed; otherwise the alert is logged and the log says why) and ``log`` (the
alert goes into the task log). A cluster's ``alerts`` lists the routes its DAGs alert through; the
notifiers are attached as ``on_failure_callback`` to every task, so they fire once a task has used up
its retries. What an alert says (``payload.alert_summary``) is redacted: no credential leaves through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier
from tidbops_airflow.notifiers.payload import slack_available
from tidbops_airflow.notifiers.webhook import TiDBOpsWebhookNotifier

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context

    from tidbops.config import AlertRoute, ClusterConfig, Fleet

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


def notifier_for(name: str, route: AlertRoute, cluster: str) -> BaseNotifier:
    """The notifier of one alert route."""
    if route.kind == "log":
        return TiDBOpsLogNotifier(route=name, cluster=cluster)
    if route.kind == "webhook":
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


# (route name, route, cluster) -> its notifier, for the kinds whose notifier keeps nothing of one alert
# (log, webhook): each of a cluster's DAGs (eight per cluster) shares them instead of building its own.
_shared: dict[tuple[str, AlertRoute, str], BaseNotifier] = {}


def failure_notifiers(fleet: Fleet, cluster: ClusterConfig) -> list[BaseNotifier]:
    """One notifier per route in ``cluster.alerts`` (routes are checked to exist when the config loads).

    The ``log`` and ``webhook`` notifiers are built once per route and cluster in a process and shared by
    the cluster's DAGs (what they send comes from the callback's context). The smtp and slack providers'
    notifiers render their templates into themselves when they fire, so every DAG gets its own.
    """
    notifiers = []
    for name in cluster.alerts:
        route = fleet.alert_routes[name]
        if route.kind not in ("log", "webhook"):
            notifiers.append(notifier_for(name, route, cluster.name))
            continue
        key = (name, route, cluster.name)
        notifier = _shared.get(key)
        if notifier is None:
            notifier = _shared[key] = notifier_for(name, route, cluster.name)
        notifiers.append(notifier)
    return notifiers


class RequestRoutesNotifier:
    """Alerts through the routes of the clusters a run's request names (``tidb_restore``: its source and
    target); each route once, in the order the clusters list them. A request naming no cluster of the fleet
    (a typo the plan refused) alerts through every route some cluster uses, so it still reaches a person.

    A plain callable, as Airflow calls an ``on_failure_callback``; each route's notifier is built when it
    fires (a fleet-wide DAG would otherwise hold one per route and cluster).
    """

    def __init__(self, fleet: Fleet, keys: tuple[str, ...] = ("source_cluster", "target_cluster")) -> None:
        self.fleet = fleet
        self.keys = keys

    def routes(self, params: Mapping[str, object]) -> list[tuple[str, str]]:
        """(route, cluster) pairs the request's alert goes to."""
        named = [str(params.get(k)) for k in self.keys if params.get(k) in self.fleet.clusters]
        clusters = named or list(self.fleet.clusters)
        chosen: dict[str, str] = {}
        for name in clusters:
            for route in self.fleet.clusters[name].alerts:
                chosen.setdefault(route, name)
        return list(chosen.items())

    def __call__(self, context: Context) -> None:
        params = dict(context.get("params") or {})
        dag_run = context.get("dag_run")
        params.update(getattr(dag_run, "conf", None) or {})
        for route, cluster in self.routes(params):
            notifier_for(route, self.fleet.alert_routes[route], cluster)(context)
