"""Health alerts through the alert routes: an episode firing, a reminder, its recovery, or a notice.

Failure alerts (``alerts.py``) describe a failed task and fire as ``on_failure_callback``. Health alerts
(log backup today) describe a problem a check found, and a step sends them itself, de-duplicated (see
``tidbops.logbackup``). They go through the same routes of the fleet config and the same notifiers:
``log`` (one line ``ALERT {json}`` in the task log), ``webhook`` (the JSON POSTed), ``smtp`` (subject =
the title, the message as HTML), ``slack`` (the slack provider's webhook notifier, else logged). What
leaves is redacted like failure alerts: no credential goes out through an alert.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier
from tidbops_airflow.notifiers.payload import clean_error, slack_available
from tidbops_airflow.notifiers.webhook import TiDBOpsWebhookNotifier

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier

    from tidbops.config import AlertRoute

ICONS = {
    "firing": ":red_circle:",
    "reminder": ":red_circle:",
    "resolved": ":large_green_circle:",
    "notice": ":information_source:",
}


def health_payload(
    notification: Mapping[str, Any], context: Context | Mapping[str, Any], *, route: str
) -> dict[str, Any]:
    """What a route sends (JSON-safe): the notification, redacted, and where it came from."""
    ti = context.get("ti")
    return {
        "source": "tidbops",
        "route": route,
        "cluster": notification.get("cluster"),
        "state": notification.get("kind"),
        "alert": notification.get("key"),
        "severity": notification.get("severity"),
        "title": notification.get("title"),
        "message": clean_error(notification.get("message") or ""),
        "first_seen": notification.get("first_seen"),
        "last_seen": notification.get("last_seen"),
        "resolved_at": notification.get("resolved_at"),
        "occurrences": notification.get("occurrences"),
        "deduplicated": notification.get("deduplicated", True),
        "dag_id": getattr(ti, "dag_id", None),
        "run_id": getattr(ti, "run_id", None),
        "log_url": getattr(ti, "log_url", None),
    }


class HealthLogNotifier(TiDBOpsLogNotifier):
    """The ``log`` route: ``ALERT {json}`` (ERROR for firing and reminders, WARNING for recoveries and notices).

    :param notification: ``Notification.to_dict()`` of what to send.
    :param route: the alert route's name.
    :param cluster: the cluster it is about.
    :param note: an extra remark (why a route fell back to the log).
    """

    def __init__(self, *, notification: Mapping[str, Any], route: str, cluster: str | None = None, **kwargs: Any):
        super().__init__(route=route, cluster=cluster, **kwargs)
        self.notification = dict(notification)

    def notify(self, context: Context) -> None:
        payload = health_payload(self.notification, context, route=self.route)
        if self.note:
            payload["note"] = self.note
        level = self.log.error if payload["state"] in ("firing", "reminder") else self.log.warning
        level("ALERT %s", json.dumps(payload, sort_keys=True, default=str))


class HealthWebhookNotifier(TiDBOpsWebhookNotifier):
    """The ``webhook`` route: ``health_payload`` POSTed as JSON.

    :param notification: ``Notification.to_dict()`` of what to send.
    :param http_conn_id: the Airflow http connection with the webhook's URL.
    :param route: the alert route's name.
    :param cluster: the cluster it is about.
    """

    def __init__(self, *, notification: Mapping[str, Any], http_conn_id: str, **kwargs: Any) -> None:
        super().__init__(http_conn_id=http_conn_id, **kwargs)
        self.notification = dict(notification)

    def payload(self, context: Context) -> dict[str, Any]:
        return health_payload(self.notification, context, route=self.route)


def _text(payload: Mapping[str, Any]) -> str:
    return f"{payload['title']}: {payload['message']}"


def health_notifier(
    name: str, route: AlertRoute, cluster: str, notification: Mapping[str, Any], context: Context | Mapping[str, Any]
) -> BaseNotifier:
    """The notifier that sends ``notification`` through one route (call its ``notify(context)``)."""
    if route.kind == "log":
        return HealthLogNotifier(notification=notification, route=name, cluster=cluster)
    if route.kind == "webhook":
        assert route.conn_id is not None  # the config model requires it
        return HealthWebhookNotifier(notification=notification, http_conn_id=route.conn_id, route=name, cluster=cluster)
    payload = health_payload(notification, context, route=name)
    if route.kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        link = f'<p><a href="{html.escape(str(payload["log_url"]))}">Task log</a></p>' if payload["log_url"] else ""
        body = f"<p>{html.escape(_text(payload))}</p>{link}"
        return SmtpNotifier(
            to=list(route.to), smtp_conn_id=route.conn_id, subject=f"[tidbops] {payload['title']}", html_content=body
        )
    if route.kind == "slack":
        if not slack_available():
            return HealthLogNotifier(
                notification=notification,
                route=name,
                cluster=cluster,
                note="route kind slack, but apache-airflow-providers-slack is not installed: logged instead",
            )
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        icon = ICONS.get(str(payload["state"]), "")
        return SlackWebhookNotifier(slack_webhook_conn_id=route.conn_id, text=f"{icon} tidbops: {_text(payload)}")
    raise ValueError(f"alert route {name!r}: unknown kind {route.kind!r}")


def send_health_notification(
    routes: Sequence[tuple[str, AlertRoute]],
    cluster: str,
    notification: Mapping[str, Any],
    context: Context | Mapping[str, Any],
) -> tuple[list[str], dict[str, str]]:
    """Send through every route; one route failing does not stop the others. Returns the routes it went
    through and, for those that failed, why (the caller decides: the log backup step fails only when no
    route delivered, as a failure callback's own failure does not fail a task either)."""
    sent: list[str] = []
    failed: dict[str, str] = {}
    for name, route in routes:
        try:
            health_notifier(name, route, cluster, notification, context).notify(context)  # type: ignore[arg-type]
        except Exception as exc:  # reported to the caller, which logs it and fails when nothing got through
            failed[name] = clean_error(f"{type(exc).__name__}: {exc}") or type(exc).__name__
            continue
        sent.append(name)
    return sent, failed
