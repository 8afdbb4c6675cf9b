"""The inline SVG charts: a mark per backup or drill at its time, catalog text escaped, a word when empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from tidbops.fleetview.models import BackupBrief, DrillBrief, LogWindow
from tidbops_airflow.ui.charts import backup_timeline, rto_chart, seconds, when

pytestmark = pytest.mark.operators

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def backup(n: int, kind: str = "full", base: str | None = None, **kw: object) -> BackupBrief:
    at = NOW - timedelta(hours=10 - n)
    values: dict[str, object] = {
        "id": f"b{n}",
        "kind": kind,
        "status": "succeeded",
        "backup_ts": 1000 + n,
        "backup_time": at,
        "started_at": at,
        "base_backup_id": base,
    }
    return BackupBrief(**{**values, **kw})  # type: ignore[arg-type]


def test_the_timeline_places_fulls_and_incrementals_in_time_order_and_links_rows() -> None:
    chain = [backup(0), backup(3, "incremental", "b0", verified=True), backup(6, "incremental", "b3", status="failed")]
    svg = BeautifulSoup(str(backup_timeline(chain, None, NOW)), "html.parser").svg
    marks = {a["href"]: a.circle for a in svg.find_all("a")}
    assert set(marks) == {"#backup-b0", "#backup-b3", "#backup-b6"}
    xs = [float(marks[f"#backup-b{n}"]["cx"]) for n in (0, 3, 6)]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert float(marks["#backup-b0"]["cy"]) < float(marks["#backup-b3"]["cy"])  # fulls above incrementals
    assert marks["#backup-b3"]["fill"] == marks["#backup-b3"]["stroke"]  # verified: filled
    assert marks["#backup-b0"]["fill"] == "var(--bg)"  # not verified: hollow
    assert marks["#backup-b6"]["stroke"] == "var(--bad)"
    assert len(svg.select("line.link")) == 2  # each incremental to its base
    assert "BackupTS 1003" in marks["#backup-b3"].title.get_text()


def test_the_timeline_draws_the_log_window_and_escapes_catalog_text() -> None:
    log = LogWindow(
        checked_at=NOW,
        status="NORMAL",
        healthy=True,
        lag_s=42.0,
        window_start=NOW - timedelta(hours=9),
        window_end=NOW - timedelta(minutes=1),
    )
    evil = backup(1, id="b1", error=None, storage_uri=None, triggered_by="<script>")
    html = str(backup_timeline([evil.model_copy(update={"id": "x<y"})], log, NOW))
    assert "<script>" not in html and "x&lt;y" in html
    rect = BeautifulSoup(html, "html.parser").select_one("rect.window")
    assert "checkpoint lag 42s" in rect.title.get_text()


def test_empty_charts_say_so() -> None:
    assert "No backup recorded yet" in backup_timeline([], None, NOW)
    assert "No drill has measured an RTO yet" in rto_chart([])


def test_the_rto_chart_plots_each_drill_higher_for_a_longer_rto() -> None:
    drills = [
        DrillBrief(id=f"d{n}", target="s", mode="snapshot", status=s, started_at=NOW - timedelta(days=3 - n), rto_s=r)
        for n, (s, r) in enumerate([("passed", 100.0), ("failed", 400.0), ("passed", 200.0)])
    ]
    svg = BeautifulSoup(str(rto_chart(drills)), "html.parser").svg
    points = {a["href"]: a.circle for a in svg.find_all("a")}
    y = {k: float(c["cy"]) for k, c in points.items()}
    assert y["#drill-d1"] < y["#drill-d2"] < y["#drill-d0"]  # SVG y grows downwards
    assert points["#drill-d1"]["fill"] == "var(--bad)"
    assert len(svg.select("polyline.trend")) == 1  # through the passed drills


def test_times_and_durations_in_words() -> None:
    assert when(NOW) == "2026-12-06 12:00:00 UTC" and when(None) == "-"
    assert [seconds(s) for s in (7.5, 95, 7200 + 300, 3 * 86400 + 3600)] == ["7s", "1m 35s", "2h 5m", "3d 1h"]
