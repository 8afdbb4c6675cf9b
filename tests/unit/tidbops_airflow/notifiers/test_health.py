"""Health alerts through each route kind: what the log line, the webhook and the mail say (redacted)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from tidbops.config import AlertRoute
from tidbops_airflow.notifiers import health
from tidbops_airflow.notifiers.health import (
    HealthLogNotifier,
    HealthWebhookNotifier,
    health_notifier,
    health_payload,
    send_health_notification,
)

pytestmark = pytest.mark.operators

NOTE = {
    "cluster": "prod",
    "key": "task_error",
    "kind": "firing",
    "severity": "critical",
    "title": "[FIRING] prod: log backup task in ERROR",
    "message": "store 1: KV:LogBackup:Io: s3://b/x?access-key=AKIAABCDEFGHIJKLMNOP&secret-access-key=s3cr3t failed",
    "first_seen": "2026-11-22T10:00:00.000Z",
    "deduplicated": True,
}
CTX: dict[str, Any] = {
    "ti": SimpleNamespace(dag_id="tidb_log_backup_check__prod", run_id="manual__1", log_url="http://af/log")
}


def test_payload_is_redacted_and_says_where_from() -> None:
    p = health_payload(NOTE, CTX, route="ops")
    assert (p["state"], p["alert"], p["cluster"], p["route"], p["dag_id"]) == (
        "firing", "task_error", "prod", "ops", "tidb_log_backup_check__prod",
    )  # fmt: skip
    assert "s3cr3t" not in p["message"] and "AKIAABCDEFGHIJKLMNOP" not in p["message"]
    assert json.loads(json.dumps(p)) == p


@pytest.mark.parametrize(("kind", "level"), [("firing", "error"), ("resolved", "warning")])
def test_log_route(kind: str, level: str) -> None:
    notifier = health_notifier("ops-log", AlertRoute(kind="log"), "prod", {**NOTE, "kind": kind}, CTX)
    assert isinstance(notifier, HealthLogNotifier)
    with mock.patch.object(HealthLogNotifier, "log") as log:
        notifier.notify(CTX)  # type: ignore[arg-type]
    (fmt, text), _ = getattr(log, level).call_args
    assert fmt == "ALERT %s"
    payload = json.loads(text)
    assert payload["state"] == kind and payload["alert"] == "task_error" and "s3cr3t" not in text


def test_webhook_route_posts_the_payload() -> None:
    notifier = health_notifier("hook", AlertRoute(kind="webhook", conn_id="alert_hook"), "prod", NOTE, CTX)
    assert isinstance(notifier, HealthWebhookNotifier) and notifier.http_conn_id == "alert_hook"
    with mock.patch("airflow.providers.http.hooks.http.HttpHook") as hook:
        notifier.notify(CTX)  # type: ignore[arg-type]
    sent = hook.return_value.run.call_args.kwargs["json"]
    assert sent["state"] == "firing" and sent["title"] == NOTE["title"] and "s3cr3t" not in sent["message"]


def test_smtp_route_mails_title_and_message() -> None:
    route = AlertRoute(kind="smtp", to=("dba@example.com",), conn_id="smtp_ops")
    notifier = health_notifier("mail", route, "prod", NOTE, CTX)
    assert notifier.subject == "[tidbops] [FIRING] prod: log backup task in ERROR"  # type: ignore[attr-defined]
    assert "s3cr3t" not in notifier.html_content and "http://af/log" in notifier.html_content  # type: ignore[attr-defined]


def test_slack_route_without_the_provider_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "slack_available", lambda: False)
    notifier = health_notifier("chat", AlertRoute(kind="slack", conn_id="slack_ops"), "prod", NOTE, CTX)
    assert isinstance(notifier, HealthLogNotifier) and notifier.note and "not installed" in notifier.note


def test_a_failing_route_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []

    class Broken:
        def __init__(self, name: str) -> None:
            self.name = name

        def notify(self, context: Any) -> None:
            tried.append(self.name)
            if self.name == "mail":
                raise ConnectionError("smtp down: password=hunter22")

    monkeypatch.setattr(health, "health_notifier", lambda name, *a: Broken(name))
    routes = [(n, AlertRoute(kind="log")) for n in ("mail", "ops-log")]
    sent, failed = send_health_notification(routes, "prod", NOTE, CTX)
    assert tried == ["mail", "ops-log"] and sent == ["ops-log"]
    assert failed == {"mail": "ConnectionError: smtp down: password=***"}
