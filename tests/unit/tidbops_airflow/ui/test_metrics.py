"""GET /metrics: its own door (the ``tidbops_metrics`` connection, read through Airflow's secrets backends),
off unless configured, and a 200 with ``tidbops_metrics_scrape_error 1`` when the catalog does not answer."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tidbops_airflow.ui.metrics import METRICS_CONN_ID, router

pytestmark = pytest.mark.operators

REPO = Path(__file__).resolve().parents[4]
CONN_ENV = f"AIRFLOW_CONN_{METRICS_CONN_ID.upper()}"
TOKEN = "scrape-token-7c1f9e2a"


def fleet_config(tmp_path: Path, catalog: dict[str, str | None]) -> Path:
    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    doc["catalog"] = catalog
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet_config(tmp_path, {"sqlite_path": str(tmp_path / "c.db")})))
    monkeypatch.delenv(CONN_ENV, raising=False)
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as c:
        yield c


def connection(monkeypatch: pytest.MonkeyPatch, password: str | None = TOKEN, login: str | None = None) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "http", "login": login, "password": password}))


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def samples(text: str) -> dict[str, float]:
    return {
        s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else ""): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("password", [None, ""], ids=["no-connection", "no-password"])
def test_off_unless_configured(client: TestClient, monkeypatch: pytest.MonkeyPatch, password: str | None) -> None:
    if password is not None:
        connection(monkeypatch, password=password)
    answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 403
    detail = answer.json()["detail"]
    assert f"airflow connections add {METRICS_CONN_ID}" in detail and CONN_ENV in detail


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(""),
        bearer(TOKEN + "x"),
        {"Authorization": TOKEN},
        {"Authorization": f"Token {TOKEN}"},
        basic("prometheus", TOKEN),  # the connection has no login: no basic auth
    ],
    ids=["none", "wrong", "empty", "longer", "no-scheme", "other-scheme", "basic-without-login"],
)
def test_refused_without_the_token(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    connection(monkeypatch)
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="tidbops metrics"'
    assert METRICS_CONN_ID in answer.json()["detail"] and TOKEN not in answer.text


def test_bearer_token(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch)
    answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(answer.text)
    assert got["tidbops_metrics_scrape_error"] == 0
    # the shipped fleet's source clusters, none backed up yet: statuses, no backup timestamps
    assert {k for k in got if k.startswith("tidbops_cluster_status")} == {
        "tidbops_cluster_status{cluster=dev,env=dev}",
        "tidbops_cluster_status{cluster=prod,env=prod}",
        "tidbops_cluster_status{cluster=secure,env=test}",
        "tidbops_cluster_status{cluster=uat,env=uat}",
    }
    assert not [k for k in got if k.startswith("tidbops_backup_last_success_timestamp_seconds")]


@pytest.mark.parametrize(
    ("login", "password", "status"),
    [("prometheus", TOKEN, 200), ("prometheus", "wrong", 401), ("someone", TOKEN, 401), ("", TOKEN, 401)],
    ids=["right", "wrong-password", "wrong-login", "no-login"],
)
def test_basic_auth_with_the_connections_login(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, login: str, password: str, status: int
) -> None:
    connection(monkeypatch, login="prometheus")
    answer = client.get("/metrics", headers=basic(login, password))
    assert answer.status_code == status
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="tidbops metrics", Basic realm="tidbops metrics"'
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200, "the token works as a bearer too"


@pytest.mark.parametrize("value", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Basic "])
def test_malformed_basic_auth(client: TestClient, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    connection(monkeypatch, login="prometheus")
    assert client.get("/metrics", headers={"Authorization": value}).status_code == 401


def test_a_rotated_token_takes_effect_at_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch)
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
    connection(monkeypatch, password="the-new-token")
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 401
    assert client.get("/metrics", headers=bearer("the-new-token")).status_code == 200


def test_a_catalog_that_does_not_answer_is_a_scrape_error_not_a_failed_scrape(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db_password = "catalog-pw-55e1"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_DOWN",
        json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": port, "login": "ops", "password": db_password}),
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet_config(tmp_path, {"conn_id": "catalog_down"})))
    connection(monkeypatch)
    with caplog.at_level(logging.WARNING):
        answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 200
    got = samples(answer.text)
    assert got["tidbops_metrics_scrape_error"] == 1
    assert set(got) == {"tidbops_metrics_scrape_error", "tidbops_metrics_scrape_duration_seconds"}
    assert "cannot open the catalog" in caplog.text and "OperationalError" in caplog.text
    assert db_password not in caplog.text and db_password not in answer.text


def test_an_unusable_fleet_config_fails_the_scrape_in_one_line(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [\n")
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(broken))
    connection(monkeypatch)
    answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 500
    assert "broken.yaml" in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_documented_in_openapi(client: TestClient) -> None:
    op = client.app.openapi()["paths"]["/metrics"]["get"]  # type: ignore[attr-defined]
    assert set(op["responses"]) >= {"200", "401", "403"}
    assert "text/plain" in op["responses"]["200"]["content"]
    assert METRICS_CONN_ID in op["description"]
