"""The webhook notifier against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tidbops_airflow.notifiers.webhook import TiDBOpsWebhookNotifier

pytestmark = pytest.mark.operators


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    Receiver.received = []
    Receiver.status = 200
    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/tidbops"
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_HOOK",
        json.dumps({"conn_type": "http", "host": url, "extra": {"Authorization": "Bearer tok-123456"}}),
    )
    yield url
    httpd.shutdown()


def context() -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="tidb_backup_incremental__uat",
        task_id="run_br_backup",
        run_id="manual__x",
        try_number=3,
        log_url="http://af/log",
    )
    return {
        "ti": ti,
        "exception": RuntimeError("BR failed (exit 1): [BR:KV:ErrKVStorage] secret-access-key=abcdef1234"),
    }


def test_posts_the_alert_as_json(server: str) -> None:
    TiDBOpsWebhookNotifier(http_conn_id="alert_hook", route="ops-hook", cluster="uat")(context())
    (got,) = Receiver.received
    assert got["path"] == "/hooks/tidbops"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["Authorization"] == "Bearer tok-123456"
    alert = got["json"]
    assert (alert["route"], alert["cluster"], alert["dag_id"], alert["task_id"], alert["try_number"]) == (
        "ops-hook",
        "uat",
        "tidb_backup_incremental__uat",
        "run_br_backup",
        3,
    )
    assert alert["error"] == "BR failed (exit 1): [BR:KV:ErrKVStorage] secret-access-key=***"


def test_a_refused_alert_raises(server: str) -> None:
    Receiver.status = 500
    with pytest.raises(Exception, match="500"):
        TiDBOpsWebhookNotifier(http_conn_id="alert_hook")(context())
