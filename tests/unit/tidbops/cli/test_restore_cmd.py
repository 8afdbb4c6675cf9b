"""`tidbops restore --dry-run`: the same guardrails and plan as the DAG, from the config and the catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.records import BackupKind, LogBackupCheck, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()
NOW = datetime.now(UTC).replace(microsecond=0)
FULL = "dev-full-20261122t010000z-0a0b0c0d"


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
  - name: dev
    env: dev
    pd: ["127.0.0.1:1"]
    tidb_conn_id: tidb_dev
    log_backup: {enabled: true, task_name: pitr-dev}
  - {name: prod, env: prod, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_prod}
  - {name: scratch1, env: scratch, scratch: true, pd: ["127.0.0.1:3"], tidb_conn_id: tidb_scratch1}
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
    cat.start_backup(
        NewBackup(
            id=FULL,
            cluster="dev",
            kind=BackupKind.FULL,
            storage_uri=f"s3://tidbops-backups/dev/{FULL}",
            started_at=NOW - timedelta(minutes=60),
        )
    )
    cat.finish_backup(FULL, backup_ts=ts(60))
    cat.mark_verified(FULL, True, "ok")
    cat.add_log_backup_check(
        LogBackupCheck(
            cluster="dev",
            checked_at=NOW,
            status="NORMAL",
            healthy=True,
            task_name="pitr-dev",
            checkpoint_ts=ts(1),
            lag_seconds=60.0,
            log_min_ts=ts(120),
            log_max_ts=ts(1),
            log_range_source="metadata",
        )
    )
    cat.close()
    return url


def invoke(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["restore", "--catalog", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_plans_a_pitr_of_some_tables(url: str) -> None:
    point = (NOW - timedelta(minutes=30)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = invoke(url, "--dry-run", "--source", "dev", "--target", "scratch1", "--point", point,
                            "-f", "shop.orders", "-f", "crm.*", "--reason", "INC-1: bad delete")  # fmt: skip
    assert code == 0, err
    assert out.startswith("DRY RUN: nothing is changed: dev → scratch1")
    assert f"1. point {FULL}" in out and "br restore point" in out and "-f shop.orders -f 'crm.*'" in out
    assert f"--restored-ts {ts(30)}" in out
    assert "not checked here" in out


def test_json_plan(url: str) -> None:
    code, out, _ = invoke(url, "--dry-run", "--source", "dev", "--target", "scratch1", "--point", FULL,
                          "--reason", "why not", "--json")  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    assert plan["mode"] == "snapshot" and plan["restore_ts"] == ts(60) and plan["steps"][0]["backup_id"] == FULL


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--source", "nope", "--target", "scratch1"], "refused (unknown_cluster): unknown source cluster 'nope'"),
        (["--source", "dev", "--target", "prod"], "refused (target_not_allowed): prod is not an allowed restore"),
        (["--source", "prod", "--target", "prod"], "refused (in_place)"),
        (["--source", "dev", "--target", "scratch1", "--point", "2020-01-01T00:00:00Z"], "refused (outside_window)"),
        (["--source", "dev", "--target", "scratch1", "-f", "a b.c"], "refused (tables): invalid table filter"),
    ],
)
def test_refusals_exit_3_with_the_message(url: str, args: list[str], says: str) -> None:
    code, _, err = invoke(url, "--dry-run", "--reason", "testing", *args)
    assert code == 3 and says in err, err


def test_it_only_plans(url: str) -> None:
    code, _, err = invoke(url, "--source", "dev", "--target", "scratch1", "--reason", "x y z")
    assert code == 2 and "only plans; pass --dry-run" in err
