"""Who may see what: Airflow's login (401), the auth manager's custom-view permission (403), and per cluster
the read permission on its DAGs (an invisible cluster is a 404 like an unknown one, and out of the audit)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.tidbops_airflow.ui.conftest import Seeded
from tests.unit.tidbops_airflow.ui.helpers import as_user, soup, token

pytestmark = pytest.mark.operators

PAGES = ["/tidbops/", "/tidbops/clusters/dev", "/tidbops/audit"]
JSON = ["/tidbops/api/fleet", "/tidbops/api/clusters/dev", "/tidbops/api/audit", "/tidbops/api/audit/export"]


@pytest.mark.parametrize("path", PAGES + JSON)
def test_without_a_login_everything_but_health_is_401(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 401
    if path in PAGES:
        page = soup(resp.text)
        assert "not logged in" in page.select_one(".error").get_text()
        login = page.find("a", string="Log in to Airflow")
        assert login is not None and login["target"] == "_top"
    else:
        assert resp.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("path", PAGES + JSON)
def test_a_forged_token_is_refused(client: TestClient, path: str) -> None:
    forged = token("admin")[:-4] + "AAAA"
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code in (401, 403)


@pytest.mark.parametrize("path", PAGES + JSON)
def test_a_user_without_a_role_is_403(client: TestClient, path: str) -> None:
    resp = client.get(path, headers=as_user("nobody"))
    assert resp.status_code == 403
    assert "may not open the data protection view" in resp.text


@pytest.mark.parametrize("user", ["admin", "viewer"])
def test_any_role_sees_every_source_cluster(client: TestClient, user: str) -> None:
    resp = client.get("/tidbops/api/fleet", headers=as_user(user))
    assert resp.status_code == 200
    assert [row["cluster"] for row in resp.json()] == ["dev", "uat", "prod", "secure"]


def test_the_ui_cookie_is_a_login_too(client: TestClient) -> None:
    client.cookies.set("_token", token("viewer"))
    try:
        resp = client.get("/tidbops/")
    finally:
        client.cookies.clear()
    assert resp.status_code == 200
    assert "signed in as viewer" in resp.text


def test_a_token_from_airflows_login_endpoint_works(client: TestClient) -> None:
    got = client.post("/auth/token", json={"username": "viewer", "password": "pw-viewer-1234"})
    assert got.status_code in (200, 201), got.text
    resp = client.get("/tidbops/api/fleet", headers={"Authorization": f"Bearer {got.json()['access_token']}"})
    assert resp.status_code == 200


def test_health_and_icon_need_no_login_and_hold_no_data(client: TestClient) -> None:
    assert client.get("/tidbops/health").json() == {"status": "ok"}
    icon = client.get("/tidbops/icon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


# ------------------------------------------------------------------------------------ per-cluster visibility


def test_a_user_who_may_not_read_prods_dags_does_not_see_prod(client: TestClient) -> None:
    fleet = client.get("/tidbops/api/fleet", headers=as_user("limited")).json()
    assert [row["cluster"] for row in fleet] == ["dev", "uat", "secure"]
    page = soup(client.get("/tidbops/?sort=cluster", headers=as_user("limited")).text)
    assert [tr["data-cluster"] for tr in page.select("#fleet tbody tr")] == ["dev", "secure", "uat"]


@pytest.mark.parametrize("path", ["/tidbops/api/clusters/{}", "/tidbops/clusters/{}"])
def test_an_invisible_cluster_answers_exactly_like_an_unknown_one(client: TestClient, path: str) -> None:
    hidden = client.get(path.format("prod"), headers=as_user("limited"))
    unknown = client.get(path.format("nosuch"), headers=as_user("limited"))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text.replace("prod", "X") == unknown.text.replace("nosuch", "X")
    assert "known clusters: dev, uat, secure" in hidden.text
    # and a user who may see it gets it
    assert client.get(path.format("prod"), headers=as_user("viewer")).status_code == 200


def _audit_clusters(client: TestClient, user: str, **params: Any) -> set[str | None]:
    items = client.get("/tidbops/api/audit", params={"limit": 1000, **params}, headers=as_user(user)).json()["items"]
    return {event["cluster"] for event in items}


def test_the_audit_leaves_out_invisible_clusters(client: TestClient, seeded: Seeded) -> None:
    assert "prod" in _audit_clusters(client, "viewer")
    assert _audit_clusters(client, "limited") == {"dev"}  # uat has no event; prod's are hidden
    refused = client.get("/tidbops/api/audit", params={"cluster": "prod"}, headers=as_user("limited"))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "cluster"]
    assert "valid: dev, uat, secure" in refused.json()["detail"][0]["msg"]


def test_the_exports_leave_out_invisible_clusters(client: TestClient) -> None:
    rows = list(csv.DictReader(io.StringIO(client.get("/tidbops/api/audit/export", headers=as_user("limited")).text)))
    assert rows and {row["cluster"] for row in rows} == {"dev"}
    events = client.get("/tidbops/api/audit/export?format=json", headers=as_user("limited")).json()
    assert {event["cluster"] for event in events} == {"dev"}
    everything = client.get("/tidbops/api/audit/export?format=json", headers=as_user("viewer")).json()
    assert "prod" in {event["cluster"] for event in everything}


# ------------------------------------------------------------------------------------------ registration


def test_the_plugin_mounts_the_app_and_links_it_from_the_nav(client: TestClient) -> None:
    plugins = client.get("/api/v2/plugins", headers=as_user("admin")).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "tidbops")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/tidbops"
    view = ours["external_views"][0]
    assert view["name"] == "Data protection"
    assert view["href"] == "tidbops/" and view["url_route"] == "data-protection"
    assert view["destination"] == "nav" and view["nav_top_level"] is True
