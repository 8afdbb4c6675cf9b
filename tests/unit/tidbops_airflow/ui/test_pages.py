"""The fleet, cluster and audit pages and their JSON API, on a catalog written through ``Catalog``'s API."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.unit.tidbops_airflow.ui.conftest import Seeded
from tests.unit.tidbops_airflow.ui.helpers import as_user, soup

pytestmark = pytest.mark.operators


def test_the_fleet_page_has_a_row_per_source_cluster_with_its_state(client: TestClient, seeded: Seeded) -> None:
    page = soup(client.get("/tidbops/", headers=as_user("admin")).text)
    rows = {tr["data-cluster"]: tr for tr in page.select("table#fleet tbody tr")}
    assert set(rows) == {"dev", "uat", "prod", "secure"}  # scratch clusters are not sources
    order = {"red": 2, "amber": 1, "green": 0}
    rags = [order[tr["data-rag"]] for tr in rows.values()]
    assert rags == sorted(rags, reverse=True)  # the worst first, by default
    dev = rows["dev"]
    cells = {td["data-col"]: td for td in dev.select("td[data-col]")}
    assert set(cells) == {
        "cluster",
        "rag",
        "last-full",
        "last-incremental",
        "window",
        "lag",
        "drill",
        "restore",
        "storage",
        "runs",
    }
    assert cells["cluster"].a["href"] == "./clusters/dev"
    assert "passed" in cells["drill"].get_text() and "RTO 3m" in cells["drill"].get_text()
    assert "succeeded" in cells["last-full"].get_text() and "3.0 GiB" in cells["last-full"].get_text()
    assert "verified" in cells["last-full"].get_text()
    assert "1m" in cells["lag"].get_text()  # 60 s of checkpoint lag
    assert "succeeded" in cells["restore"].get_text() and "by dba" in cells["restore"].get_text()
    runs = {a.get_text(): a for a in cells["runs"].find_all("a")}
    assert runs["full"]["href"] == "../dags/tidb_backup_full__dev/runs" and runs["full"]["target"] == "_top"
    assert rows["prod"]["data-rag"] == "red"
    assert "failed" in rows["prod"].select_one('td[data-col="last-full"]').get_text()
    assert rows["uat"].select_one('td[data-col="last-full"]').get_text(strip=True) == "never"
    assert dev["data-rag"] in ("green", "amber", "red")
    reasons = [li.get_text() for li in rows["prod"].select('td[data-col="rag"] li')]
    assert reasons, "a red row says why"


def test_the_fleet_page_is_sortable_by_a_script_of_ours(client: TestClient) -> None:
    page = soup(client.get("/tidbops/", headers=as_user("admin")).text)
    assert len(page.select("table#fleet th.sortable")) == 9
    assert all(td.has_attr("data-sort") for td in page.select('table#fleet td[data-col]:not([data-col="runs"])'))
    assert not page.select("script[src]"), "no third-party script"


def test_the_cluster_page_shows_the_chain_with_real_backup_ts_and_links(client: TestClient, seeded: Seeded) -> None:
    page = soup(client.get("/tidbops/clusters/dev", headers=as_user("admin")).text)
    full = page.select_one(f'table#backups tr[data-backup-id="{seeded.full_id}"]')
    assert full.select_one('[data-col="backup-ts"]').get_text(strip=True) == str(seeded.full_ts)
    assert full.select_one('[data-col="kind"]').get_text(strip=True) == "full"
    assert "tier 1" in full.select_one('[data-col="verified"]').get_text()
    assert full.select_one('[data-col="manifest"]').get_text(strip=True).endswith("/tidbops-manifest.json")
    assert full.select_one('[data-col="duration"]').get_text(strip=True) == "1m 35s"
    run = full.select_one('[data-col="run"] a')
    run_id = run.get_text(strip=True)
    assert run["href"] == f"../../dags/tidb_backup_full__dev/runs/{quote(run_id, safe='')}"
    assert run["target"] == "_top"
    inc = page.select_one(f'table#backups tr[data-backup-id="{seeded.incremental_id}"]')
    assert seeded.full_id in inc.get_text()  # the link it builds on
    # the timeline: one mark per backup, each linking to its row, and the log window
    timeline = page.select_one("#timeline svg")
    assert {a["href"] for a in timeline.find_all("a")} == {
        f"#backup-{seeded.full_id}",
        f"#backup-{seeded.incremental_id}",
    }
    assert timeline.select_one("rect.window") is not None
    # drills and their RTO chart
    drills = page.select("table#drills tr[data-drill-id]")
    assert [tr.select_one('[data-col="verdict"]').get_text(strip=True)[:6] for tr in drills] == ["passed", "failed"]
    assert len(page.select("#rto-chart svg circle")) == 2
    # restores: who, why (escaped, as typed), point, target, outcome
    restore = page.select_one(f'table#restores tr[data-restore-id="{seeded.restore_id}"]')
    assert restore.select_one('[data-col="requested-by"]').get_text(strip=True) == "dba"
    assert (
        restore.select_one('[data-col="reason"]').get_text(strip=True)
        == "INC-4711 <b>rows deleted</b> by a bad migration"
    )
    assert "dev → scratch2" in restore.select_one('[data-col="target"]').get_text()
    assert restore.select_one('[data-col="status"]').get_text(strip=True) == "succeeded"
    assert page.select_one("section#slow-queries") is not None
    assert page.select_one("table#alerts") is not None


def test_the_cluster_json_is_the_same_view(client: TestClient, seeded: Seeded) -> None:
    view = client.get("/tidbops/api/clusters/dev", headers=as_user("admin")).json()
    assert view["summary"]["cluster"] == "dev"
    assert [b["id"] for b in view["backups"]] == [seeded.incremental_id, seeded.full_id]
    assert view["backups"][1]["backup_ts"] == seeded.full_ts
    assert view["restores"][0]["reason"].startswith("INC-4711")


def test_the_audit_page_filters_by_user_and_exports_the_same_rows(client: TestClient, seeded: Seeded) -> None:
    resp = client.get("/tidbops/audit", params={"actor": "dba"}, headers=as_user("admin"))
    page = soup(resp.text)
    form = page.select_one("form#audit-filters")
    assert {i["name"] for i in form.select("input, select")} == {
        "cluster",
        "category",
        "status",
        "actor",
        "since",
        "until",
        "limit",
    }
    assert form.select_one('input[name="actor"]')["value"] == "dba"
    rows = page.select("table#audit tbody tr[data-event-id]")
    assert rows and {tr.select_one('[data-col="actor"]').get_text(strip=True) for tr in rows} == {"dba"}
    restores = [tr for tr in rows if tr.select_one('[data-col="category"]').get_text(strip=True) == "restore"]
    assert any("INC-4711" in tr.select_one('[data-col="message"]').get_text() for tr in restores), [
        tr.get_text(" ", strip=True) for tr in rows
    ]
    csv_link = page.select_one("a#export-csv")["href"]
    assert parse_qs(urlsplit(csv_link).query) == {"actor": ["dba"], "format": ["csv"]}
    exported = client.get("/tidbops/" + csv_link.removeprefix("./"), headers=as_user("admin"))
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(line["id"]) for line in lines] == [int(tr["data-event-id"]) for tr in rows]
    json_link = page.select_one("a#export-json")["href"]
    events = json.loads(client.get("/tidbops/" + json_link.removeprefix("./"), headers=as_user("admin")).text)
    assert [e["id"] for e in events] == [int(tr["data-event-id"]) for tr in rows]


def test_the_audit_pages_through_with_a_cursor(client: TestClient) -> None:
    every = client.get("/tidbops/api/audit", params={"limit": 1000}, headers=as_user("admin")).json()["items"]
    assert len(every) >= 4
    seen: list[int] = []
    params: dict[str, str] = {"limit": "3"}
    for _ in range(50):
        page = soup(client.get("/tidbops/audit", params=params, headers=as_user("admin")).text)
        seen += [int(tr["data-event-id"]) for tr in page.select("table#audit tr[data-event-id]")]
        nxt = page.select_one("a#next-page")
        if nxt is None:
            break
        params = {k: v[0] for k, v in parse_qs(urlsplit(nxt["href"]).query).items()}
        assert params["limit"] == "3"
    assert seen == [e["id"] for e in every]


def test_the_audit_json_filters_by_category_and_status(client: TestClient) -> None:
    items = client.get(
        "/tidbops/api/audit", params={"category": "backup", "status": "failed"}, headers=as_user("admin")
    ).json()
    assert items["items"] and all(e["category"] == "backup" and e["status"] == "failed" for e in items["items"])
    assert {e["cluster"] for e in items["items"]} == {"prod"}


def test_the_openapi_documents_every_json_route_with_its_model(client: TestClient) -> None:
    spec = client.get("/tidbops/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {"/api/fleet", "/api/clusters/{cluster}", "/api/audit", "/api/audit/export", "/health"}
    ok = {
        p: paths[p]["get"]["responses"]["200"]["content"]
        for p in ("/api/fleet", "/api/clusters/{cluster}", "/api/audit")
    }
    assert ok["/api/fleet"]["application/json"]["schema"]["items"]["$ref"].endswith("/FleetRow")
    assert ok["/api/clusters/{cluster}"]["application/json"]["schema"]["$ref"].endswith("/ClusterView")
    assert ok["/api/audit"]["application/json"]["schema"]["$ref"].endswith("/AuditPage")
    assert {"401", "403"} <= set(paths["/api/audit"]["get"]["responses"])
    params = {p["name"] for p in paths["/api/audit"]["get"]["parameters"]}
    assert params == {"cluster", "category", "status", "actor", "since", "until", "before_id", "limit"}
    assert client.get("/tidbops/docs").status_code == 200


def test_the_fleet_page_sorts_on_the_server_and_pages(client: TestClient, seeded: Seeded) -> None:
    def clusters(query: str) -> list[str]:
        response = client.get(f"/tidbops/{query}", headers=as_user("admin"))
        assert response.status_code == 200, response.text
        return [tr["data-cluster"] for tr in soup(response.text).select("table#fleet tbody tr")]

    assert clusters("?sort=cluster") == ["dev", "prod", "secure", "uat"]
    assert clusters("?sort=cluster&order=desc") == ["uat", "secure", "prod", "dev"]
    assert clusters("?sort=storage")[0] == "dev"  # the only one with stored backups: the biggest first
    assert clusters("?sort=cluster&per_page=2") == ["dev", "prod"]
    assert clusters("?sort=cluster&per_page=2&page=2") == ["secure", "uat"]
    page = soup(client.get("/tidbops/?sort=cluster&per_page=2", headers=as_user("admin")).text)
    assert "page=2" in page.select_one("#fleet-next")["href"] and page.select_one("#fleet-prev") is None
    heading = page.select_one('th[data-col="cluster"]')
    assert heading["aria-sort"] == "ascending" and "order=desc" in heading.select_one("a")["href"]


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("?sort=bogus", "sort", "valid: cluster, status"),
        ("?order=up", "order", "asc, desc"),
        ("?per_page=2&page=9", "page", "2 page(s)"),
        ("?per_page=501", "per_page", "500"),
    ],
)
def test_bad_fleet_page_parameters_are_a_422_naming_the_field(
    client: TestClient, seeded: Seeded, query: str, field: str, says: str
) -> None:
    response = client.get(f"/tidbops/{query}", headers=as_user("admin"))
    assert response.status_code == 422
    assert field in response.text and says in response.text
