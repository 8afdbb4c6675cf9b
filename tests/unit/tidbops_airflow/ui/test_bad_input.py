"""Bad input gets a clear answer: 404 naming the known clusters, 422 naming the field and what is valid."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.unit.tidbops_airflow.ui.helpers import as_user, soup

pytestmark = pytest.mark.operators


@pytest.mark.parametrize("path", ["/tidbops/api/clusters/{}", "/tidbops/clusters/{}"])
def test_an_unknown_cluster_is_404_naming_the_known_ones(client: TestClient, path: str) -> None:
    resp = client.get(path.format("prdo"), headers=as_user("admin"))
    assert resp.status_code == 404
    if not path.startswith("/tidbops/api"):
        assert (
            soup(resp.text).select_one(".error li").get_text()
            == "no cluster 'prdo'; known clusters: dev, uat, prod, secure"
        )
    else:
        assert resp.json() == {"detail": "no cluster 'prdo'; known clusters: dev, uat, prod, secure"}


def test_a_scratch_cluster_is_not_a_source(client: TestClient) -> None:
    assert client.get("/tidbops/api/clusters/scratch1", headers=as_user("admin")).status_code == 404


def _problem(client: TestClient, **params: str) -> tuple[list[str], str]:
    resp = client.get("/tidbops/api/audit", params=params, headers=as_user("admin"))
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    return [str(p) for p in error["loc"]], error["msg"]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        pytest.param({"category": "backups"}, "category", "'backup', 'verification', 'drill'", id="category"),
        pytest.param({"status": "ok"}, "status", "valid: running, succeeded, failed", id="status"),
        pytest.param({"cluster": "nosuch"}, "cluster", "valid: dev, uat, prod, secure", id="cluster"),
        pytest.param({"limit": "1001"}, "limit", "less than or equal to 1000", id="limit-cap"),
        pytest.param({"limit": "0"}, "limit", "greater than or equal to 1", id="limit-zero"),
        pytest.param({"limit": "ten"}, "limit", "valid integer", id="limit-text"),
        pytest.param({"before_id": "abc"}, "before_id", "valid integer", id="cursor"),
        pytest.param({"since": "yesterday"}, "since", "'yesterday' is not a time; use ISO 8601", id="since"),
        pytest.param({"until": "2026-13-01"}, "until", "'2026-13-01' is not a time", id="until"),
        pytest.param(
            {"since": "2026-12-02", "until": "2026-12-01T23:00Z"},
            "until",
            "since (2026-12-02T00:00:00.000Z) is after until (2026-12-01T23:00:00.000Z)",
            id="range",
        ),
        pytest.param({"actor": "a\nb"}, "actor", "printable", id="actor"),
        pytest.param({"catgory": "backup"}, "catgory", "Extra inputs are not permitted", id="unknown-param"),
    ],
)
def test_a_bad_filter_is_422_naming_the_field_and_what_is_valid(
    client: TestClient, params: dict[str, str], field: str, says: str
) -> None:
    loc, msg = _problem(client, **params)
    assert loc == ["query", field]
    assert says in msg


def test_the_page_size_is_capped_at_1000_and_1000_is_fine(client: TestClient) -> None:
    resp = client.get("/tidbops/api/audit", params={"limit": "1000"}, headers=as_user("admin"))
    assert resp.status_code == 200 and resp.json()["limit"] == 1000


def test_empty_form_fields_count_as_absent(client: TestClient) -> None:
    empty = {k: "" for k in ("cluster", "category", "status", "actor", "since", "until", "limit", "before_id")}
    resp = client.get("/tidbops/audit", params=empty, headers=as_user("admin"))
    assert resp.status_code == 200, resp.text[-600:]
    assert len(soup(resp.text).select("table#audit tr[data-event-id]")) > 0


def test_times_are_iso_dates_or_datetimes_in_utc(client: TestClient) -> None:
    for since in ("2000-01-01", "2000-01-01T00:00", "2000-01-01T02:00+02:00", "2000-01-01T00:00:00Z"):
        resp = client.get(
            "/tidbops/api/audit", params={"since": since, "until": "2000-01-01"}, headers=as_user("admin")
        )
        assert resp.status_code == 200, (since, resp.text)
        assert resp.json()["items"] == []


def test_the_html_pages_show_every_problem_in_words(client: TestClient) -> None:
    resp = client.get("/tidbops/audit", params={"since": "x", "limit": "5000"}, headers=as_user("admin"))
    assert resp.status_code == 422
    problems = [li.get_text() for li in soup(resp.text).select(".error li")]
    assert problems == [
        "since: 'x' is not a time; use ISO 8601: a date (2026-12-01) or a date and time "
        "(2026-12-01T08:00:00Z; no zone means UTC)",
        "limit: Input should be less than or equal to 1000",
    ]
