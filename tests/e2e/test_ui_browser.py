"""The data-protection view in a real browser, through Airflow's own UI, on the playground (#13).

Setup, through the e2e Airflow (started as ``make up`` starts it): a full backup of ``dev``, a restore
drill of ``dev``, and an on-demand restore of ``dev`` triggered by the user ``dba`` with a reason.

Then Debian's Chromium, driven by Playwright (``tests/e2e/browser.py``), signs in on Airflow's login
page as ``dba`` and opens the nav entry "Data protection" (Airflow embeds the plugin's pages in an
iframe under ``/plugin/data-protection``):

* the fleet page shows ``dev`` with the drill's verdict and RTO;
* the cluster page (from the fleet page's link) lists the backup with its real BackupTS, the catalog's;
* the audit page, filtered in its form to the user ``dba``, shows the restore with its reason, and the
  CSV export (a real download) holds the same rows as the page;
* a browser without a login is refused (the API answers 401, Airflow's view sends it to the login page),
  and a user with no role gets the 403 page.

Screenshots of every page are test artifacts (``$TIDBOPS_TEST_ARTIFACTS``, see ``browser.py``). With
``TIDBOPS_README_SCREENSHOT=1`` the fleet page's screenshot also replaces ``docs/img/fleet.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser import (
    APP_PREFIX,
    NAV_NAME,
    NAV_ROUTE,
    VIEWPORT_HEIGHT,
    VIEWPORT_WIDTH,
    artifacts_dir,
    chromium,
    login,
    new_context,
    open_nav_view,
    require_browser,
    screenshot,
    screenshot_document,
)
from tests.e2e.test_backup_pipelines import run_dag
from tests.e2e.test_on_demand_restore import query, trigger, user_schemas
from tidbops.catalog.records import DrillStatus, RestoreStatus
from tidbops.catalog.store import Catalog
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README_SCREENSHOT = REPO / "docs" / "img" / "fleet.png"
RESTORE_DAG = "tidb_restore"
RESTORE_TABLE = "shop.customers"
#: a playground user with no role (include/tidbops_playground/airflow.py USERS): signs in, may see nothing
NO_ROLE_USER = "nobody"

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page


@dataclass(frozen=True)
class History:
    """What the setup did, as the catalog recorded it."""

    backup_id: str
    backup_ts: int
    drill_id: str
    drill_status: str
    drill_rto_s: float
    restore_id: str
    reason: str


# ------------------------------------------------------------------------------------------- setup


@pytest.fixture(scope="module")
def history(airflow: AirflowAPI, playground_home: Path, registry: Registry, catalog: Catalog) -> History:
    """A full backup of dev, a drill of dev, and a restore of that backup (one table) by ``dba``."""
    require_browser()  # before minutes of setup: a machine without a browser skips (CI fails) at once
    run_id, state = run_dag(airflow, "tidb_backup_full__dev")
    assert state == "success", airflow.run_logs("tidb_backup_full__dev", run_id)[-6000:]
    backup_id = str(airflow.xcom("tidb_backup_full__dev", run_id, "plan_backup")["backup_id"])
    backup = catalog.get(backup_id)
    assert backup is not None and backup.backup_ts is not None and backup.verified, backup

    drill_dag = "tidb_restore_drill__dev"
    airflow.wait_for_dag(drill_dag)
    airflow.unpause(drill_dag)
    run_id = airflow.trigger(drill_dag, conf={"chunk_rows": 500}, note="e2e: drill for the browser test")
    state = airflow.wait_run(drill_dag, run_id, timeout=300)
    assert state == "success", airflow.run_logs(drill_dag, run_id)[-8000:]
    drill = catalog.get_drill(str(airflow.xcom(drill_dag, run_id, "record_drill")["drill_id"]))
    assert drill is not None and drill.status is DrillStatus.PASSED and drill.rto_seconds, drill

    # the reason carries characters HTML would eat ("<v2>" looks like a tag): the pages must show it as typed
    reason = f'browser e2e {uuid.uuid4().hex[:8]}: re-check "customers" after the <v2> import & rollback'
    dba = AirflowAPI(airflow.url, "dba", password(playground_home, "dba"))
    conf = {
        "source_cluster": "dev",
        "target_cluster": "scratch1",
        "restore_point": backup_id,
        "tables": [RESTORE_TABLE],
        "dry_run": False,
        "validate_after": False,
        "reason": reason,
    }
    run_id = trigger(dba, conf)
    state = airflow.wait_run(RESTORE_DAG, run_id, timeout=300)
    assert state == "success", airflow.run_logs(RESTORE_DAG, run_id)[-8000:]
    restore = catalog.get_restore(str(airflow.xcom(RESTORE_DAG, run_id, "record_restore")["restore_id"]))
    assert restore is not None and restore.status is RestoreStatus.SUCCEEDED, restore
    assert restore.requested_by == "dba" and restore.reason == reason, restore
    scratch1 = registry.clusters["scratch1"]
    for schema in user_schemas(scratch1):  # scratch1 as the other e2e tests expect it: empty
        query(scratch1, f"DROP DATABASE `{schema}`")
    return History(
        backup_id=backup_id,
        backup_ts=backup.backup_ts,
        drill_id=drill.id,
        drill_status=drill.status.value,
        drill_rto_s=float(drill.rto_seconds),
        restore_id=restore.id,
        reason=reason,
    )


def password(playground_home: Path, user: str) -> str:
    return str(json.loads((playground_home / "airflow" / "passwords.json").read_text())[user])


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = artifacts_dir(tmp_path_factory, "ui_browser")
    print(f"\nbrowser screenshots and downloads: {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def dba_page(
    browser: Browser, airflow: AirflowAPI, playground_home: Path, history: History, artifacts: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Page]:  # fmt: skip
    """``dba`` signed in through Airflow's login page, in a fresh context (after the setup); what the
    page shows at the end of the test is saved too (``<test>-end.png``: the state a failure left)."""
    context = new_context(browser, airflow.url)
    try:
        page = login(context, "dba", password(playground_home, "dba"))
        yield page
        screenshot(page, artifacts, f"{request.node.name}-end")
    finally:
        context.close()


def cells(frame: Frame, row_selector: str) -> list[dict[str, str]]:
    """Each row's ``data-col`` cells as the user reads them (innerText: one line per rendered line, spaces
    collapsed), and the row's own ``data-*`` attributes under ``@`` (``data-backup-id`` → ``@backupId``)."""
    rows: list[dict[str, str]] = frame.eval_on_selector_all(
        row_selector,
        """rows => rows.map(r => {
            const out = {};
            for (const [k, v] of Object.entries(r.dataset)) out['@' + k] = v;
            for (const c of r.querySelectorAll('[data-col]')) {
                out[c.dataset.col] = c.innerText.split('\\n').map(l => l.replace(/\\s+/g, ' ').trim())
                    .filter(l => l).join('\\n');
            }
            return out;
        })""",
    )
    return rows


def hrefs(frame: Frame, selector: str) -> list[str]:
    """The links' targets as the browser resolves them (absolute URLs)."""
    return list(frame.eval_on_selector_all(selector, "links => links.map(a => a.href)"))


UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> tuple[int, int]:
    """``"1m 5s"`` → (65, 1), ``"2h 5m"`` → (7500, 60): the seconds shown and the smallest unit shown."""
    parts = re.findall(r"(\d+)([dhms])", text)
    return sum(int(n) * UNITS[u] for n, u in parts), UNITS[parts[-1][1]]


# --------------------------------------------------------------------------------------- the pages


def test_fleet_page_shows_dev_with_the_drills_verdict(
    dba_page: Page, history: History, airflow: AirflowAPI, artifacts: Path
) -> None:
    frame = open_nav_view(dba_page)
    frame.locator("table#fleet").wait_for()
    screenshot(dba_page, artifacts, "fleet")
    screenshot_document(frame, artifacts, "fleet")
    if os.environ.get("TIDBOPS_README_SCREENSHOT"):  # Airflow's window down to the end of the table
        table = frame.locator("table#fleet").bounding_box()  # in the window's coordinates
        assert table is not None
        height = min(VIEWPORT_HEIGHT, int(table["y"] + table["height"]) + 24)
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        dba_page.screenshot(path=str(README_SCREENSHOT), clip={"x": 0, "y": 0, "width": VIEWPORT_WIDTH, "height": height})

    rows = {r["@cluster"]: r for r in cells(frame, "table#fleet tr[data-cluster]")}
    assert "dev" in rows, rows.keys()
    dev = rows["dev"]
    assert dev["@rag"] in ("green", "amber", "red") and dev["rag"].startswith(dev["@rag"]), dev
    # "passed · RTO 41s" (then its age and target): the verdict word and the RTO the catalog recorded
    verdict = dev["drill"].splitlines()[0]
    assert verdict.split()[0] == history.drill_status, dev["drill"]
    rto = re.fullmatch(r".* RTO ((?:\d+[dhms] ?){1,2})", verdict)
    assert rto, dev["drill"]
    shown, unit = duration_seconds(rto.group(1))
    assert shown <= history.drill_rto_s < shown + unit, (dev["drill"], history.drill_rto_s)
    assert dev["restore"].startswith("succeeded") and "by dba" in dev["restore"], dev["restore"]
    # scratch clusters are restore targets, not sources: no row
    assert "scratch1" not in rows and "scratch2" not in rows
    # the row links to the cluster page and to Airflow's own pages of dev's DAG runs
    assert hrefs(frame, "tr[data-cluster='dev'] [data-col='cluster'] a") == [f"{airflow.url}{APP_PREFIX}/clusters/dev"]
    runs = hrefs(frame, "tr[data-cluster='dev'] [data-col='runs'] a")
    for dag_id in ("tidb_backup_full__dev", "tidb_restore_drill__dev"):
        assert f"{airflow.url}/dags/{dag_id}/runs" in runs, runs


def test_cluster_page_lists_the_backup_with_its_real_backupts(
    dba_page: Page, history: History, airflow: AirflowAPI, catalog: Catalog, artifacts: Path
) -> None:
    frame = open_nav_view(dba_page)
    frame.locator("tr[data-cluster='dev'] [data-col='cluster'] a").click()
    frame.wait_for_url(re.compile(r"/clusters/dev$"))
    frame.locator("table#backups").wait_for()
    screenshot(dba_page, artifacts, "cluster-dev")
    screenshot_document(frame, artifacts, "cluster-dev")

    rows = {r["@backupId"]: r for r in cells(frame, "table#backups tr[data-backup-id]")}
    assert history.backup_id in rows, sorted(rows)
    row = rows[history.backup_id]
    recorded = catalog.get(history.backup_id)
    assert recorded is not None and recorded.backup_ts is not None
    assert row["backup-ts"] == str(recorded.backup_ts) == str(history.backup_ts), row
    assert row["kind"] == "full" and row["status"] == "succeeded" and row["verified"].startswith("yes"), row
    assert row["manifest"] == recorded.manifest_uri, row
    # the drill and the restore are there too, the reason as typed (escaped, not eaten as a tag)
    drills = {r["@drillId"]: r for r in cells(frame, "table#drills tr[data-drill-id]")}
    assert drills[history.drill_id]["verdict"].startswith(history.drill_status), drills[history.drill_id]
    restores = {r["@restoreId"]: r for r in cells(frame, "table#restores tr[data-restore-id]")}
    assert restores[history.restore_id]["reason"] == history.reason, restores[history.restore_id]  # one line
    assert restores[history.restore_id]["requested-by"] == "dba"
    assert restores[history.restore_id]["status"].startswith("succeeded")
    for hook in ("#timeline svg", "#rto-chart svg", "table#alerts", "section#slow-queries"):
        assert frame.locator(hook).count() == 1, hook
    # the backup's link to the Airflow run that made it
    run_id = recorded.run_id
    assert run_id and hrefs(frame, f"tr[data-backup-id='{history.backup_id}'] [data-col='run'] a") == [
        f"{airflow.url}/dags/tidb_backup_full__dev/runs/{urllib.parse.quote(run_id, safe='')}"
    ]


def test_links_into_airflow_open_airflows_pages_in_its_window(
    dba_page: Page, history: History, airflow: AirflowAPI, catalog: Catalog, artifacts: Path
) -> None:
    """Airflow embeds the view in a sandboxed iframe: a link to one of Airflow's own pages must open it in
    Airflow's window (its navigation and all), not fail silently nor nest Airflow inside the frame."""
    recorded = catalog.get(history.backup_id)
    assert recorded is not None and recorded.run_id
    frame = open_nav_view(dba_page)
    frame.locator("tr[data-cluster='dev'] [data-col='runs'] a", has_text="full").click()
    dba_page.wait_for_url(f"{airflow.url}/dags/tidb_backup_full__dev/runs")
    dba_page.locator(f"iframe[src*='{APP_PREFIX.strip('/')}']").wait_for(state="detached")
    dba_page.get_by_text("tidb_backup_full__dev").first.wait_for()  # in Airflow's window, not the frame

    frame = open_nav_view(dba_page)
    frame.locator("tr[data-cluster='dev'] [data-col='cluster'] a").click()
    frame.wait_for_url(re.compile(r"/clusters/dev$"))
    frame.locator(f"tr[data-backup-id='{history.backup_id}'] [data-col='run'] a").click()
    dba_page.wait_for_url(re.compile(r"/dags/tidb_backup_full__dev/runs/[^/]+$"))
    assert urllib.parse.unquote(dba_page.url.rsplit("/", 1)[1]) == recorded.run_id
    # Airflow draws its page of that run in its own window: the view's iframe is gone, the run's id shown
    dba_page.locator(f"iframe[src*='{APP_PREFIX.strip('/')}']").wait_for(state="detached")
    dba_page.get_by_text(recorded.run_id).first.wait_for()
    screenshot(dba_page, artifacts, "airflow-run-from-link")


def test_audit_filtered_to_dba_shows_the_restore_and_the_csv_holds_the_same_rows(
    dba_page: Page, history: History, artifacts: Path
) -> None:
    frame = open_nav_view(dba_page)
    frame.get_by_role("link", name="Audit", exact=True).click()
    frame.wait_for_url(re.compile(r"/audit$"))
    frame.locator("table#audit").wait_for()
    everyone = {r["actor"] for r in cells(frame, "table#audit tr[data-event-id]")}
    assert "dba" in everyone and len(everyone) > 1, everyone  # the setup's backup and drill ran as admin
    form = frame.locator("form#audit-filters")
    form.locator("[name='actor']").fill("dba")
    form.get_by_role("button").click()
    frame.wait_for_url(re.compile(r"[?&]actor=dba(&|$)"))
    frame.locator("table#audit").wait_for()
    screenshot(dba_page, artifacts, "audit-dba")
    screenshot_document(frame, artifacts, "audit-dba")

    page_rows = cells(frame, "table#audit tr[data-event-id]")
    assert page_rows, "no audit event for dba"
    assert {r["actor"] for r in page_rows} == {"dba"}, page_rows
    requested = [r for r in page_rows if r["kind"] == "restore.requested" and history.restore_id in r["message"]]
    assert len(requested) == 1 and history.reason in requested[0]["message"], [r["message"] for r in page_rows]
    assert requested[0]["category"] == "restore" and requested[0]["cluster"] == "dev", requested[0]
    outcome = [r for r in page_rows if r["kind"] == "restore.succeeded" and history.restore_id in r["message"]]
    assert len(outcome) == 1, [r["kind"] for r in page_rows]
    assert frame.locator("a#next-page").count() == 0, "more dba events than one page: the comparison needs them all"

    with dba_page.expect_download() as download_info:
        frame.locator("a#export-csv").click()
    download = download_info.value
    saved = artifacts / download.suggested_filename
    download.save_as(saved)
    assert saved.suffix == ".csv", download.suggested_filename
    exported = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["id"] for r in exported] == [r["@eventId"] for r in page_rows]
    for page_row, row in zip(page_rows, exported, strict=True):
        for col in ("cluster", "category", "kind", "status", "actor"):
            shown = "" if page_row[col] == "-" else page_row[col]  # the page shows "-" for none
            assert row[col] == shown, (col, row, page_row)
        assert " ".join(row["message"].split()) in " ".join(page_row["message"].split()), (row, page_row)

    # the JSON export: the same events
    with dba_page.expect_download() as download_info:
        frame.locator("a#export-json").click()
    saved = artifacts / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    events = json.loads(saved.read_text(encoding="utf-8"))
    assert [str(e["id"]) for e in events] == [r["@eventId"] for r in page_rows]
    assert {e["actor"] for e in events} == {"dba"}


# ------------------------------------------------------------------------------------------- access


def test_without_a_login_the_view_is_refused(browser: Browser, airflow: AirflowAPI, artifacts: Path) -> None:
    context = new_context(browser, airflow.url)
    try:
        page = context.new_page()
        # Airflow's page of the view: sent to Airflow's login page (which returns there afterwards)
        page.goto(NAV_ROUTE)
        page.wait_for_url(re.compile(r"/auth/login\?next=%2Fplugin%2Fdata-protection$"))
        page.get_by_label("Username").wait_for()
        screenshot(page, artifacts, "no-login-view")
        # the app itself, opened directly: 401, none of the data, and the way to log in
        for path in ("/", "/clusters/dev", "/audit?actor=dba", "/api/fleet", "/api/audit/export?format=csv"):
            answer = page.goto(APP_PREFIX + path)
            assert answer is not None and answer.status == 401, (path, answer and answer.status)
            assert "dev" not in re.findall(r"\w+", page.inner_text("body")), (path, page.inner_text("body"))
        page.goto(f"{APP_PREFIX}/")
        screenshot(page, artifacts, "no-login-app")
        page.get_by_role("link", name=re.compile("log in", re.IGNORECASE)).click()
        page.wait_for_url(re.compile(r"/auth/login"))
        page.get_by_label("Username").wait_for()
    finally:
        context.close()
    # and over plain HTTP (a script, curl): the pages, the JSON and the export
    for path in ("/", "/api/fleet", "/api/clusters/dev", "/api/audit?actor=dba", "/api/audit/export?format=csv"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(airflow.url + APP_PREFIX + path, timeout=30)
        assert refused.value.code == 401, path


def test_a_user_without_a_role_gets_the_403_page(
    browser: Browser, airflow: AirflowAPI, playground_home: Path, artifacts: Path
) -> None:
    context = new_context(browser, airflow.url)
    try:
        page = login(context, NO_ROLE_USER, password(playground_home, NO_ROLE_USER))
        # Airflow's navigation, once drawn, does not offer the view to a user it does not authorize
        page.get_by_role("link", name="Dags", exact=True).wait_for()
        page.wait_for_load_state("networkidle")
        assert page.get_by_role("link", name=NAV_NAME, exact=True).count() == 0
        screenshot(page, artifacts, "no-role-home")
        # opened directly: the 403 page, none of the data
        for path in ("/", "/clusters/dev", "/audit", "/api/fleet", "/api/audit/export?format=csv"):
            answer = page.goto(APP_PREFIX + path)
            assert answer is not None and answer.status == 403, (path, answer and answer.status)
            assert "dev" not in re.findall(r"\w+", page.inner_text("body")), (path, page.inner_text("body"))
        page.goto(f"{APP_PREFIX}/")
        assert "403" in page.inner_text("body")
        screenshot(page, artifacts, "no-role-403")
    finally:
        context.close()
