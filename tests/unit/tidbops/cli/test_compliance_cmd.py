"""`tidbops compliance` and `tidbops cost`: text and JSON, exit codes, live measuring and its fallback."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.records import BackupKind, DrillRecord, DrillStatus, LogBackupCheck, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.cli import app
from tidbops.cost import USAGE_EVENT

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A local backup storage: dev has 300 kB of snapshot files and 40 kB of log."""
    root = tmp_path / "backups"
    for rel, size in (("dev/full/dev-full-1/a.sst", 300_000), ("dev/log/v1/1.log", 40_000)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)
    return root


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store: Path) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        f"""
version: 1
defaults:
  storage: {{uri: "local://{store}", price_per_gb_month: {{STANDARD: 20.0}}}}
clusters:
  - name: dev
    env: dev
    pd: ["127.0.0.1:1"]
    tidb_conn_id: tidb_dev
    log_backup: {{enabled: true, task_name: pitr-dev}}
    objectives: {{rpo: 15m, rto: 1h}}
  - {{name: prod, env: prod, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_prod}}
  - {{name: scratch1, env: scratch, scratch: true, pd: ["127.0.0.1:3"], tidb_conn_id: tidb_scratch1}}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/catalog.db"
    cat = Catalog.from_url(url)
    cat.migrate()
    cat.close()
    return url


def _record(url: str, store: Path, *, checkpoint_age: timedelta, rto: float, basis: bool = True) -> None:
    """A verified full backup 5 h old, a log backup check, a passed drill; times relative to now (the CLI's)."""
    now = datetime.now(UTC).replace(microsecond=0)
    cat = Catalog.from_url(url)
    at = now - timedelta(hours=5)
    cat.start_backup(
        NewBackup(id="dev-full-1", cluster="dev", kind=BackupKind.FULL, storage_uri="s3://b/x", started_at=at)
    )
    cat.finish_backup("dev-full-1", backup_ts=tso.from_datetime(at), size_bytes=250_000)
    cat.mark_verified("dev-full-1", True, "ok")
    cp = tso.from_datetime(now - checkpoint_age)
    cat.add_log_backup_check(
        LogBackupCheck(
            cluster="dev",
            checked_at=now,
            status="NORMAL",
            healthy=True,
            checkpoint_ts=cp,
            log_min_ts=tso.from_datetime(at - timedelta(hours=1)),
            log_max_ts=cp,
            window_start_ts=tso.from_datetime(at),
            window_end_ts=cp,
        )
    )
    cat.save_drill(
        DrillRecord(
            id="dev-drill-1",
            cluster="dev",
            target="scratch1",
            mode="snapshot",
            status=DrillStatus.PASSED,
            started_at=now - timedelta(days=1),
            restore_seconds=rto,
            finished_at=now - timedelta(hours=20),
            basis={"encryption_method": "plaintext", "encryption_key_id": "none", "storage_uri": f"local://{store}"}
            if basis
            else None,
        )
    )
    cat.close()


# ------------------------------------------------------------------------------------------ compliance


def test_compliance_met_exits_0(url: str, store: Path) -> None:
    _record(url, store, checkpoint_age=timedelta(minutes=3), rto=1800)
    result = runner.invoke(app, ["compliance", "--catalog", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(r"dev: rpo 15m met: newest recovery point is 3m( \d+s)? old \(log checkpoint 20", lines[0])
    assert lines[1].startswith("dev: rto 1h met: the last measured drill took 30m to restore and validate")
    assert "dev: backup_every not declared" in lines and "prod: rpo not declared" in lines
    assert "prod: note: no backups recorded" in lines
    assert not any(line.startswith("scratch1") for line in lines)
    assert lines[-1] == "compliance: every declared objective met (2 cluster(s))"


def test_compliance_breach_exits_3_with_one_line_each(url: str, store: Path) -> None:
    _record(url, store, checkpoint_age=timedelta(hours=2, minutes=3), rto=7200)
    result = runner.invoke(app, ["compliance", "--cluster", "dev", "--catalog", url])
    assert result.exit_code == 3, result.output
    out = result.output
    assert "dev: rpo 15m breached: newest recovery point is 2h 3m old (log checkpoint " in out
    assert "dev: rto 1h breached: the last measured drill took 2h to restore and validate (dev-drill-1, passed" in out
    assert out.splitlines()[-1] == "compliance: 2 breach(es) in 1 of 1 cluster(s)"


def test_compliance_flags_a_stale_drill(url: str, store: Path) -> None:
    _record(url, store, checkpoint_age=timedelta(minutes=1), rto=600, basis=False)  # a drill from before #16
    result = runner.invoke(app, ["compliance", "--cluster", "dev", "--json", "--catalog", url])
    assert result.exit_code == 3, result.output
    doc = json.loads(result.output)
    [rto] = doc["breaches"]
    assert rto.startswith("dev: rto 1h breached: the last measured drill took 10m") and "no longer counts" in rto
    assert doc["flags"] == [
        "dev: drill stale: drill dev-drill-1 of dev recorded no basis (versions, encryption, storage): what it "
        "stood on is unknown, so it no longer counts; the next drill is due now"
    ]
    assert doc["clusters"][0]["drill_freshness"]["status"] == "stale"


def test_compliance_json(url: str) -> None:
    result = runner.invoke(app, ["compliance", "--json", "--catalog", url])  # an empty catalog
    assert result.exit_code == 3, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is False and [c["cluster"] for c in doc["clusters"]] == ["dev", "prod"]
    assert doc["breaches"] == [
        "dev: rpo 15m breached: no recovery point (no backups recorded, no log backup check recorded)",
        "dev: rto 1h breached: no drill recorded",
    ]
    dev = doc["clusters"][0]
    assert [o["outcome"] for o in dev["objectives"]] == ["breached", "breached", "not declared", "not declared"]
    assert doc["clusters"][1]["ok"] is True


def test_compliance_usage_and_config_errors(url: str, tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["compliance", "--cluster", "nope", "--catalog", url])
    assert unknown.exit_code == 2 and "unknown cluster 'nope'" in unknown.output
    missing = runner.invoke(app, ["compliance", "--config", str(tmp_path / "none.yaml"), "--catalog", url])
    assert missing.exit_code == 1 and missing.output.startswith("error: ")
    bad_catalog = runner.invoke(app, ["compliance", "--catalog", "not a url"])
    assert bad_catalog.exit_code == 1 and "error: the catalog URL is not a database URL" in bad_catalog.output
    help_text = runner.invoke(app, ["compliance", "--help"]).output
    assert "Exit codes: 0" in help_text and "3 at least one breach" in help_text


# ------------------------------------------------------------------------------------------------ cost


def test_cost_measures_the_storage_and_records_the_sample(url: str) -> None:
    result = runner.invoke(app, ["cost", "--cluster", "dev", "--catalog", url])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == (
        "dev: 0.00034 GB (0.0003 GB snapshot, 0.00004 GB log), measured now; STANDARD at 20 per GB-month: "
        "0.0068 a month"
    )
    assert "(GB = 10^9 bytes; prices from storage.price_per_gb_month)" in result.output
    cat = Catalog.from_url(url)
    [event] = cat.list_events(cluster="dev", kind=USAGE_EVENT)
    cat.close()
    assert event.details == {"snapshot_bytes": 300_000, "log_bytes": 40_000, "storage_class": "STANDARD"}


def test_cost_json_and_growth_between_two_runs(url: str, store: Path) -> None:
    cat = Catalog.from_url(url)
    details = {"snapshot_bytes": 100_000, "log_bytes": 10_000, "storage_class": "STANDARD"}
    cat.add_event(USAGE_EVENT, "m", cluster="dev", details=details, time=datetime.now(UTC) - timedelta(days=7))
    cat.close()
    result = runner.invoke(app, ["cost", "--cluster", "dev", "--json", "--catalog", url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    [dev] = doc["clusters"]
    assert dev["source"] == "measured" and dev["total_bytes"] == 340_000 and doc["total_bytes"] == 340_000
    assert dev["monthly_cost"] == pytest.approx(340_000 / 1e9 * 20) and doc["gb_bytes"] == 10**9
    g7 = dev["growth"][0]
    assert (g7["source"], g7["snapshot_bytes"], g7["log_bytes"]) == ("samples", 200_000, 30_000)
    assert dev["growth"][1]["source"] == "none"  # no sample, no backup 30 days back
    projected = dev["projection"]["total_bytes"]  # the rate over the sample's real age (7 days and a second or so)
    assert dev["projection"]["basis_days"] == 7 and projected == pytest.approx(340_000 + 230_000 / 7 * 30, abs=50)


def test_cost_falls_back_to_the_last_sample_when_storage_is_unreachable(url: str, store: Path) -> None:
    assert runner.invoke(app, ["cost", "--cluster", "dev", "--catalog", url]).exit_code == 0  # records one sample
    (store / "dev/full/dev-full-1/a.sst").unlink()
    store.rename(store.with_name("moved"))  # the mount is gone
    result = runner.invoke(app, ["cost", "--cluster", "dev", "--catalog", url])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dev: 0.00034 GB (0.0003 GB snapshot, 0.00004 GB log), the last recorded sample, " in out
    assert "note: storage not measured (" in out and "is not a directory here" in out
    offline = runner.invoke(app, ["cost", "--no-measure", "--json", "--cluster", "dev", "--catalog", url])
    [dev] = json.loads(offline.output)["clusters"]
    assert dev["source"] == "sample" and dev["snapshot_bytes"] == 300_000  # the recorded figure, not a new 0


def test_cost_with_nothing_recorded_and_bad_usage(url: str) -> None:
    result = runner.invoke(app, ["cost", "--no-measure", "--catalog", url])
    assert result.exit_code == 0, result.output
    assert (
        "dev: nothing recorded" in result.output and "note: no backups recorded and no storage sample" in result.output
    )
    assert "fleet: 0.00 GB, - a month" in result.output
    bad = runner.invoke(app, ["cost", "--s3-endpoint", "ftp://x", "--catalog", url])
    assert bad.exit_code == 2 and bad.output.startswith("error: --s3-endpoint: ")
