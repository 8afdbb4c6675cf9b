from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops import tso
from tidbops.catalog.manifest import backup_path, build_manifest, write_manifest
from tidbops.catalog.migrations import LATEST_VERSION
from tidbops.catalog.records import BackupKind, NewBackup
from tidbops.catalog.store import Catalog, default_catalog_url
from tidbops.cli import app, run
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        f"""
version: 1
defaults:
  storage: {{uri: "local://{tmp_path}/backups"}}
clusters:
  - {{name: dev, env: dev, pd: ["127.0.0.1:1"], tidb_conn_id: tidb_dev}}
  - {{name: prod, env: prod, pd: ["127.0.0.1:2"], tidb_conn_id: tidb_prod}}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cat/catalog.db"


def one_backup(tmp_path: Path, *, verified: bool = True) -> Catalog:
    """A succeeded, verified full backup of dev in the catalog and in local storage, with its manifest."""
    catalog = Catalog.from_url(url(tmp_path))
    catalog.migrate()
    at = datetime.now(UTC) - timedelta(hours=2)
    backup_id = "dev-full-20240101t000000z-12345678"
    where = LocalStorage(tmp_path / "backups").child(backup_path("dev", BackupKind.FULL, backup_id))
    catalog.start_backup(
        NewBackup(id=backup_id, cluster="dev", kind=BackupKind.FULL, storage_uri=where.uri, started_at=at)
    )
    where.write_bytes("backupmeta", b"meta")
    where.write_bytes("store1/1.sst", b"x" * 2048)
    record = catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at), size_bytes=2052)
    catalog.record_manifest(backup_id, write_manifest(where, build_manifest(record, where)))
    if verified:
        catalog.mark_verified(backup_id, True, "ok: 2 files")
    return catalog


def test_migrate_then_current(tmp_path: Path) -> None:
    first = runner.invoke(app, ["catalog", "migrate", "--catalog", url(tmp_path)])
    assert first.exit_code == 0, first.output
    assert f"{url(tmp_path)}: schema version 0 → {LATEST_VERSION}" in first.output
    assert "applied 1: backups and events tables" in first.output
    again = runner.invoke(app, ["catalog", "migrate", "--catalog", url(tmp_path)])
    assert again.exit_code == 0 and f"schema is current (version {LATEST_VERSION})" in again.output


def test_info_on_a_machine_with_no_catalog_says_no_backups_recorded_and_creates_nothing(tmp_path: Path) -> None:
    where = tmp_path / "cat" / "catalog.db"
    result = runner.invoke(app, ["info", "--catalog", url(tmp_path)])
    assert (result.exit_code, result.output) == (0, f"no backups recorded (no catalog at {where} yet; the first "
                                                    "backup run creates it)\n")  # fmt: skip
    assert not where.exists() and not where.parent.exists(), "info created the catalog"
    as_json = runner.invoke(app, ["info", "--json", "--catalog", url(tmp_path)])
    doc = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and doc["clusters"] == [] and doc["status"] == "ok"
    assert doc["summary"] == "no backups recorded"


def test_info_before_migrate_is_no_backups_recorded(tmp_path: Path) -> None:
    empty = Catalog.from_url(url(tmp_path))  # the file exists, without tables (as a failed first start leaves it)
    assert empty.schema_version() == 0 and (tmp_path / "cat" / "catalog.db").exists()
    empty.close()
    result = runner.invoke(app, ["info", "--catalog", url(tmp_path)])
    assert result.exit_code == 0 and result.output.startswith("no backups recorded (the catalog at sqlite:///")
    assert "has no tables yet" in result.output
    assert json.loads(runner.invoke(app, ["info", "--json", "--catalog", url(tmp_path)]).stdout)["clusters"] == []


def test_info_lists_every_fleet_cluster_and_a_cluster_in_error_is_critical(tmp_path: Path) -> None:
    one_backup(tmp_path)
    result = runner.invoke(app, ["info", "--catalog", url(tmp_path)])
    assert result.exit_code == 2, result.output  # prod has no backup: CRITICAL
    assert "cluster: dev\n    status: ok\n    latest restore point: dev-full-20240101t000000z-12345678" in result.output
    assert "cluster: prod\n    status: error (no restorable backup)" in result.output
    assert "    full backup: dev-full-20240101t000000z-12345678  [verified]" in result.output
    assert result.output.endswith("status: ERROR (exit 2): 2 clusters: 1 error (prod), 1 ok\n")
    ok = runner.invoke(app, ["info", "--cluster", "dev", "--catalog", url(tmp_path)])
    assert ok.exit_code == 0 and ok.output.endswith("status: OK (exit 0): 1 cluster: 1 ok\n"), ok.output


def test_info_json_one_cluster_with_a_warning(tmp_path: Path) -> None:
    one_backup(tmp_path, verified=False)
    result = runner.invoke(app, ["info", "--json", "--cluster", "dev", "--catalog", url(tmp_path)])
    assert result.exit_code == 1, result.output  # WARNING: the backup is not verified
    doc = json.loads(result.stdout)
    (dev,) = doc["clusters"]
    assert dev["cluster"] == "dev" and dev["status"] == "warning"
    assert (doc["status"], doc["exit_code"], doc["summary"]) == ("warning", 1, "1 cluster: 1 warning (dev)")
    assert dev["latest"]["size_bytes"] == 2052


def test_info_stale_after(tmp_path: Path) -> None:
    one_backup(tmp_path)
    result = runner.invoke(app, ["info", "--cluster", "dev", "--stale-after", "1h", "--catalog", url(tmp_path)])
    assert result.exit_code == 2  # stale: CRITICAL
    assert "status: error (latest restorable backup is 2h old (limit 1h))" in result.output
    fresh = runner.invoke(app, ["info", "--cluster", "dev", "--stale-after", "3h", "--catalog", url(tmp_path)])
    assert fresh.exit_code == 0
    bad = runner.invoke(app, ["info", "--stale-after", "soon", "--catalog", url(tmp_path)])
    assert bad.exit_code == 3 and bad.output.startswith("error: --stale-after:")  # UNKNOWN: no check was made


def test_info_unknown_cluster_is_unknown(tmp_path: Path) -> None:
    one_backup(tmp_path)
    result = runner.invoke(app, ["info", "--cluster", "dve", "--catalog", url(tmp_path)])
    assert result.exit_code == 3 and "unknown cluster 'dve'" in result.output


def test_info_help_documents_the_exit_codes() -> None:
    result = runner.invoke(app, ["info", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    for words in ("0 OK", "1 WARNING", "2 CRITICAL", "3 UNKNOWN", "no backups recorded"):
        assert words in text, words


def test_catalog_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_backup(tmp_path)
    monkeypatch.setenv("TIDBOPS_CATALOG_URL", url(tmp_path))
    result = runner.invoke(app, ["info", "--json", "--cluster", "dev"])
    assert result.exit_code == 0 and json.loads(result.stdout)["clusters"][0]["status"] == "ok"


def test_default_catalog_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDBOPS_CATALOG_URL", "mysql+pymysql://u@db/x")
    assert default_catalog_url() == "mysql+pymysql://u@db/x"
    monkeypatch.delenv("TIDBOPS_CATALOG_URL")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))  # Airflow's, not the CLI's: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_catalog_url() == f"sqlite:///{tmp_path}/home/.tidbops/catalog.db"


def test_passwords_are_never_printed(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", "--catalog", "mysql+pymysql://tidbops:hunter2@127.0.0.1:1/catalog"])
    assert result.exit_code == 3  # UNKNOWN: the catalog does not answer
    assert "hunter2" not in result.output
    assert "mysql+pymysql://tidbops:***@127.0.0.1:1/catalog" in result.output
    garbled = runner.invoke(app, ["info", "--catalog", "mysql+pymysql://tidbops:hunter2@host:notaport/x"])
    assert garbled.exit_code == 3 and "hunter2" not in garbled.output


def test_rebuild_from_explicit_storage(tmp_path: Path) -> None:
    one_backup(tmp_path)
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    args = ["catalog", "rebuild", "--catalog", fresh, "--storage", f"local://{tmp_path}/backups"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"1 manifest(s) in local://{tmp_path}/backups, 1 added, 0 updated, 0 unchanged" in result.output
    again = runner.invoke(app, [*args, "--json", "--verify", "--sha256"])
    assert again.exit_code == 0, again.output
    (report,) = json.loads(again.stdout)
    assert report["unchanged"] == ["dev-full-20240101t000000z-12345678"]
    assert report["verified"] == ["dev-full-20240101t000000z-12345678"] and report["ok"] is True
    rows = Catalog.from_url(fresh).list_backups()
    assert [(r.id, r.verified) for r in rows] == [("dev-full-20240101t000000z-12345678", True)]


def test_migrate_as_json(tmp_path: Path) -> None:
    first = runner.invoke(app, ["catalog", "migrate", "--catalog", url(tmp_path), "--json"])
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["catalog"] == url(tmp_path) and (doc["from_version"], doc["to_version"]) == (0, LATEST_VERSION)
    assert len(doc["applied"]) == LATEST_VERSION and doc["applied"][0] == "1: backups and events tables"
    again = json.loads(runner.invoke(app, ["catalog", "migrate", "--catalog", url(tmp_path), "--json"]).stdout)
    assert again["applied"] == [] and again["from_version"] == again["to_version"] == LATEST_VERSION


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rebuild_draws_a_progress_bar_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    one_backup(tmp_path)
    args = [
        "catalog",
        "rebuild",
        "--catalog",
        f"sqlite:///{tmp_path}/fresh.db",
        "--storage",
        f"local://{tmp_path}/backups",
    ]
    assert run([*args, "--verify"]) == 0
    assert capsys.readouterr().err == ""  # no terminal: no bar
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert run([*args, "--verify"]) == 0
    drawn = terminal.getvalue()
    assert "cataloging and verifying backups" in drawn and "1 done" in drawn


def test_rebuild_uses_the_fleet_storage_and_fails_on_errors(tmp_path: Path) -> None:
    one_backup(tmp_path)
    LocalStorage(tmp_path / "backups").write_bytes("prod/full/prod-full-x/tidbops-manifest.json", b"[]")
    result = runner.invoke(app, ["catalog", "rebuild", "--catalog", f"sqlite:///{tmp_path}/fresh.db"])
    assert result.exit_code == 1
    assert "2 manifest(s)" in result.output and "1 added" in result.output and "1 error(s)" in result.output
    assert "error: " in result.output and "a manifest is a JSON object" in result.output
    only_dev = runner.invoke(
        app, ["catalog", "rebuild", "--cluster", "dev", "--catalog", f"sqlite:///{tmp_path}/f2.db"]
    )
    assert only_dev.exit_code == 0, only_dev.output


def test_rebuild_unknown_cluster_and_bad_storage(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["catalog", "rebuild", "--cluster", "nope", "--catalog", url(tmp_path)])
    assert unknown.exit_code == 1 and "unknown cluster 'nope'" in unknown.output
    bad = runner.invoke(
        app, ["catalog", "rebuild", "--catalog", url(tmp_path), "--storage", "s3://b/x?secret-access-key=SECRET"]
    )
    assert bad.exit_code == 1 and "no query parameters" in bad.output and "SECRET" not in bad.output
