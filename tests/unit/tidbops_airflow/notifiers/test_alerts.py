"""Alert routes → notifiers, and what an alert says (redacted)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.config import load_fleet
from tidbops_airflow.notifiers import alerts
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier
from tidbops_airflow.notifiers.payload import MAX_ERROR, alert_summary
from tidbops_airflow.notifiers.webhook import TiDBOpsWebhookNotifier

pytestmark = pytest.mark.operators

FLEET = """
version: 1
defaults:
  storage: {uri: "s3://tidbops-backups", conn_id: s3_x}
alert_routes:
  ops-log: {kind: log}
  ops-mail: {kind: smtp, to: [dba@example.com, oncall@example.com], conn_id: smtp_ops}
  ops-hook: {kind: webhook, conn_id: alert_hook}
  ops-slack: {kind: slack, conn_id: slack_ops}
clusters:
  - {name: quiet, env: dev, pd: ["pd-0:2379"], tidb_conn_id: tidb_quiet}
  - name: loud
    env: prod
    pd: ["pd-1:2379"]
    tidb_conn_id: tidb_loud
    alerts: [ops-log, ops-mail, ops-hook, ops-slack]
  - {name: loud2, env: prod, pd: ["pd-2:2379"], tidb_conn_id: tidb_loud2, alerts: [ops-log, ops-mail, ops-hook]}
"""


def ctx(exception: BaseException | None = None) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="tidb_backup_full__loud",
        task_id="run_br_backup",
        run_id="scheduled__2026-11-22T01:00:00+00:00",
        try_number=3,
        log_url="http://airflow/dags/tidb_backup_full__loud/runs/x/tasks/run_br_backup",
    )
    return {"ti": ti, "dag_run": SimpleNamespace(run_type="scheduled"), "exception": exception}


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "clusters.yaml"
    path.write_text(FLEET)
    fleet = load_fleet(path)
    assert fleet.ok, fleet.issues
    return fleet


def test_one_notifier_per_route_of_the_cluster(fleet, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    monkeypatch.setattr(alerts, "slack_available", lambda: False)
    assert failure_notifiers(fleet, fleet.get("quiet")) == []
    log, mail, hook, slack = failure_notifiers(fleet, fleet.get("loud"))
    assert isinstance(log, TiDBOpsLogNotifier) and (log.route, log.cluster) == ("ops-log", "loud")
    assert isinstance(mail, SmtpNotifier)
    assert (mail.to, mail.smtp_conn_id) == (["dba@example.com", "oncall@example.com"], "smtp_ops")
    assert isinstance(hook, TiDBOpsWebhookNotifier) and hook.http_conn_id == "alert_hook"
    assert isinstance(slack, TiDBOpsLogNotifier) and slack.note and "providers-slack is not installed" in slack.note


def test_log_and_webhook_notifiers_are_shared_by_a_clusters_dags_only(fleet) -> None:  # type: ignore[no-untyped-def]
    """Each DAG of a cluster gets the same log/webhook notifier objects (built once per process), each
    cluster its own (naming it); the smtp notifier renders into itself, so each DAG gets a new one."""
    log, mail, hook, _ = failure_notifiers(fleet, fleet.get("loud"))
    log_again, mail_again, hook_again, _ = failure_notifiers(fleet, fleet.get("loud"))
    assert log_again is log and hook_again is hook
    assert mail_again is not mail
    other_log, _, other_hook = failure_notifiers(fleet, fleet.get("loud2"))
    assert other_log is not log and other_hook is not hook
    assert (other_log.cluster, other_hook.cluster, log.cluster) == ("loud2", "loud2", "loud")  # type: ignore[attr-defined]
    assert alert_summary(ctx(), route="ops-log", cluster=other_log.cluster)["cluster"] == "loud2"  # type: ignore[attr-defined]


def test_slack_route_uses_the_slack_provider_when_installed(fleet, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fake = mock.MagicMock()
    monkeypatch.setattr(alerts, "slack_available", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "airflow.providers.slack.notifications.slack_webhook", fake)
    route = fleet.alert_routes["ops-slack"]
    notifier = alerts.notifier_for("ops-slack", route, "loud")
    fake.SlackWebhookNotifier.assert_called_once_with(slack_webhook_conn_id="slack_ops", text=alerts.SLACK_TEXT)
    assert notifier is fake.SlackWebhookNotifier.return_value


def test_alert_summary_says_what_failed_and_redacts_credentials() -> None:
    err = RuntimeError(
        "upload to s3://b/x?access-key=AKIAABCDEFGHIJKLMNOP&secret-access-key=wJalrXUtnFEMI/K7MDENG failed; "
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG mysql://root:hunter22@db:3306/x"
    )
    summary = alert_summary(ctx(err), route="ops-hook", cluster="loud")
    assert summary == {
        "source": "tidbops",
        "route": "ops-hook",
        "cluster": "loud",
        "state": "failed",
        "dag_id": "tidb_backup_full__loud",
        "task_id": "run_br_backup",
        "run_id": "scheduled__2026-11-22T01:00:00+00:00",
        "run_type": "scheduled",
        "try_number": 3,
        "error": summary["error"],
        "log_url": "http://airflow/dags/tidb_backup_full__loud/runs/x/tasks/run_br_backup",
    }
    assert "wJalrXUtnFEMI" not in summary["error"] and "hunter22" not in summary["error"]
    assert "AKIAABCDEFGHIJKLMNOP" not in summary["error"]
    assert summary["error"].startswith("upload to s3://b/x?access-key=***")


def test_alert_summary_keeps_brs_error_code_first() -> None:
    text = "Error: failed: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
    err = BRError(exit_code=1, outcome=parse_br_output(text), stderr_tail=text)
    summary = alert_summary(ctx(err), route="ops-log", cluster="loud")
    assert summary["error"].startswith("BR failed (exit 1): [BR:Backup:ErrBackupGCSafepointExceeded]")


def test_long_errors_are_cut() -> None:
    summary = alert_summary(ctx(RuntimeError("x" * 10_000)), route="r", cluster=None)
    assert len(summary["error"]) == MAX_ERROR and summary["error"].endswith("…")


def test_smtp_route_sends_a_rendered_mail(fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.smtp.notifications import smtp

    mail = alerts.notifier_for("ops-mail", fleet.alert_routes["ops-mail"], "loud")
    with mock.patch.object(smtp, "SmtpHook") as hook_cls:
        hook = hook_cls.return_value.__enter__.return_value
        hook.from_email = "tidbops@example.com"
        mail(ctx(RuntimeError("BR failed (exit 1): [BR:KV:ErrKVStorage] disk full")))
    hook_cls.assert_called_once_with(smtp_conn_id="smtp_ops", auth_type="basic")
    sent = hook.send_email_smtp.call_args.kwargs
    assert sent["to"] == ["dba@example.com", "oncall@example.com"]
    assert sent["subject"] == "[tidbops] tidb_backup_full__loud: run_br_backup failed (try 3)"
    assert "[BR:KV:ErrKVStorage] disk full" in sent["html_content"]
