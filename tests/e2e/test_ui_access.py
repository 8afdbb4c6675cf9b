"""The data protection view over HTTP, on the playground's real Airflow (``airflow standalone``): refused
without a login (401) or without a role (403), open to a viewer and an admin, linked from the nav, and
clear about bad input (404 naming the clusters, 422 naming the field)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tidbops_playground.airflow import AirflowAPI

pytestmark = pytest.mark.e2e

PAGES = ["/tidbops/", "/tidbops/clusters/dev", "/tidbops/audit"]
JSON = ["/tidbops/api/fleet", "/tidbops/api/clusters/dev", "/tidbops/api/audit", "/tidbops/api/audit/export"]


def get(url: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


@pytest.fixture(scope="module")
def tokens(airflow: AirflowAPI, playground_home: Path) -> dict[str, str]:
    """A JWT per playground user, from Airflow's own ``POST /auth/token`` with its password."""
    passwords = json.loads((playground_home / "airflow" / "passwords.json").read_text())
    return {user: AirflowAPI(airflow.url, user, passwords[user]).token() for user in ("admin", "viewer", "nobody")}


@pytest.mark.parametrize("path", PAGES + JSON)
def test_no_login_is_401(airflow: AirflowAPI, path: str) -> None:
    status, body, _ = get(airflow.url + path)
    assert status == 401, body[:500]
    if path in JSON:
        assert json.loads(body) == {"detail": "Not authenticated"}
    else:
        assert "not logged in" in body and "Log in to Airflow" in body


@pytest.mark.parametrize("path", PAGES + JSON)
def test_a_user_without_a_role_is_403(airflow: AirflowAPI, tokens: dict[str, str], path: str) -> None:
    status, body, _ = get(airflow.url + path, tokens["nobody"])
    assert status == 403, body[:500]
    assert "may not open the data protection view" in body


@pytest.mark.parametrize("user", ["viewer", "admin"])
@pytest.mark.parametrize("path", PAGES + JSON)
def test_viewers_and_admins_get_the_view(airflow: AirflowAPI, tokens: dict[str, str], user: str, path: str) -> None:
    status, body, headers = get(airflow.url + path, tokens[user])
    assert status == 200, body[:500]
    if path in PAGES:
        assert headers["content-type"].startswith("text/html") and f"signed in as {user}" in body
    if path == "/tidbops/api/fleet":
        assert [row["cluster"] for row in json.loads(body)] == ["dev", "uat", "prod", "secure"]


def test_health_is_open_and_holds_no_data(airflow: AirflowAPI) -> None:
    status, body, _ = get(airflow.url + "/tidbops/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_the_nav_link_is_registered(airflow: AirflowAPI) -> None:
    plugins = airflow._request("GET", "/api/v2/plugins")["plugins"]
    ours = next(p for p in plugins if p["name"] == "tidbops")
    view = next(v for v in ours["external_views"] if v["name"] == "Data protection")
    assert (view["href"], view["url_route"], view["destination"]) == ("tidbops/", "data-protection", "nav")
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == ["/tidbops"]
    # the href, resolved against Airflow's base URL, is the fleet page
    status, body, _ = get(urllib.parse.urljoin(airflow.url + "/", view["href"]), airflow.token())
    assert status == 200 and 'id="fleet"' in body


@pytest.mark.parametrize("path", ["/tidbops/api/clusters/nosuch", "/tidbops/clusters/nosuch"])
def test_an_unknown_cluster_is_404_naming_the_known_ones(airflow: AirflowAPI, path: str) -> None:
    status, body, _ = get(airflow.url + path, airflow.token())
    assert status == 404
    assert "known clusters: dev, uat, prod" in body


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("category=backups", "category", "'backup'"),
        ("limit=5000", "limit", "less than or equal to 1000"),
        ("since=last+tuesday", "since", "is not a time"),
        ("since=2026-12-02&until=2026-12-01", "until", "is after until"),
    ],
)
def test_bad_filters_are_422_naming_the_field(airflow: AirflowAPI, query: str, field: str, says: str) -> None:
    status, body, _ = get(f"{airflow.url}/tidbops/api/audit?{query}", airflow.token())
    assert status == 422, body[:500]
    detail: list[dict[str, Any]] = json.loads(body)["detail"]
    assert detail[0]["loc"] == ["query", field] and says in detail[0]["msg"]
