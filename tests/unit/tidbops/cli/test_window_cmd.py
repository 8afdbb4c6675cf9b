"""`tidbops window`: the PITR window, snapshot points, last check and lag history, as text and JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.records import AlertState, BackupKind, LogBackupCheck, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        """
version: 1
defaults:
  storage: {uri: "s3://tidbops-backups"}
clusters:
  - {name: dev, env: dev, pd: ["127.0.0.1:1"], tidb_conn_id: tidb_dev}
  - {name: prod, env: prod, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_prod}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))


def ts(minutes_ago: float) -> int:
    return tso.from_datetime(NOW - timedelta(minutes=minutes_ago))


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/catalog.db"
    cat = Catalog.from_url(url)
    cat.migrate()
    for backup_id, minutes in (("dev-full-old", 300), ("dev-full-1", 50)):
        at = NOW - timedelta(minutes=minutes)
        cat.start_backup(
            NewBackup(
                id=backup_id, cluster="dev", kind=BackupKind.FULL, storage_uri=f"s3://b/{backup_id}", started_at=at
            )
        )
        cat.finish_backup(backup_id, backup_ts=ts(minutes))
        cat.mark_verified(backup_id, True, "ok")
    for i, lag in enumerate((2.0, 3.5, 65.0)):  # oldest first
        at = NOW - timedelta(minutes=10 - 5 * i)
        cat.add_log_backup_check(
            LogBackupCheck(
                cluster="dev",
                checked_at=at,
                status="NORMAL",
                healthy=lag < 60,
                task_name="pitr-dev",
                checkpoint_ts=tso.from_datetime(at - timedelta(seconds=lag)),
                lag_seconds=lag,
                log_min_ts=ts(120),
                log_max_ts=tso.from_datetime(at - timedelta(seconds=lag)),
                log_range_source="metadata",
                findings=() if lag < 60 else ({"key": "checkpoint_frozen", "severity": "critical", "message": "m"},),
            )
        )
    cat.update_alert_states(
        "dev",
        lambda s: [
            AlertState(
                cluster="dev",
                key="checkpoint_frozen",
                severity="critical",
                message="the checkpoint has not moved",
                first_seen=NOW,
                last_seen=NOW,
            )
        ],
    )
    cat.close()
    return url


def test_text(url: str) -> None:
    result = runner.invoke(app, ["window", "--catalog", url])
    assert result.exit_code == 0, result.output
    out = result.output
    dev, prod = out.split("\n\n")
    assert dev.startswith("dev: PITR window ")
    assert "full backup dev-full-1 (verified)" in dev and f"TSO {ts(50)}" in dev
    assert "log checkpoint, as of the check" in dev and "(from br log metadata)" in dev
    assert "snapshot restore points: 2" in dev and "dev-full-old" in dev
    assert "UNHEALTHY: checkpoint_frozen" in dev and "open alert checkpoint_frozen (critical)" in dev
    rows = [re.split(r"\s{2,}", line) for line in dev.splitlines()]
    points = rows.index(["KIND", "BACKUP", "TIME", "TSO", "VERIFIED", "CHAIN"])
    assert [(r[0], r[1], r[3], r[4]) for r in rows[points + 1 : points + 3]] == [
        ("full", "dev-full-old", str(ts(300)), "yes"),
        ("full", "dev-full-1", str(ts(50)), "yes"),
    ]
    history = rows.index(["CHECKED", "STATUS", "LAG", "CHECKPOINT", "FINDINGS"])
    assert [(r[1], r[2], r[4]) for r in rows[history + 1 :]] == [
        ("NORMAL", "1m 5s", "checkpoint_frozen"),  # newest first
        ("NORMAL", "3s", "ok"),
        ("NORMAL", "2s", "ok"),
    ]
    assert all(r[0].endswith(" UTC") and r[3].endswith(" UTC") for r in rows[history + 1 :])
    assert "no log backup" in prod and "no log backup check recorded yet" in prod


def test_json_one_cluster(url: str) -> None:
    result = runner.invoke(app, ["window", "--cluster", "dev", "--json", "--checks", "2", "--catalog", url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    [dev] = doc["clusters"]
    w = dev["window"]
    assert w["exists"] and w["base"]["backup_id"] == "dev-full-1" and w["start_ts"] == ts(50)
    assert w["end_ts"] == dev["last_check"]["log_max_ts"] and w["end_time"].endswith("Z")
    assert [h["lag_seconds"] for h in dev["history"]] == [65.0, 3.5]
    assert [a["key"] for a in dev["open_alerts"]] == ["checkpoint_frozen"]
    assert dev["last_check"]["status"] == "NORMAL" and dev["last_check_age_seconds"] >= 0


def test_catalog_without_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["window", "--catalog", f"sqlite:///{tmp_path}/empty.db"])
    assert result.exit_code == 1 and "run `tidbops catalog migrate`" in result.output
