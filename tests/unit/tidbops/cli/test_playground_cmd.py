"""`tidbops playground`, loaded through its entry point: --json everywhere, secrets masked, no services needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidbops.cli import run
from tidbops_playground import manager

pytestmark = pytest.mark.unit
PASSWORD = "pg-Secret-77"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIDBOPS_PLAYGROUND_HOME", str(tmp_path / "pg"))
    return tmp_path / "pg"


def test_status_of_no_playground(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["playground", "status"]) == 1
    assert capsys.readouterr().out == f"no playground at {home} (run `tidbops playground up`)\n"
    assert run(["playground", "status", "--json", "--no-counts"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exists"] is False and doc["clusters"] == {}


def test_env_as_json_is_masked_unless_asked(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir()
    conn = {"conn_type": "mysql", "host": "127.0.0.1", "login": "root", "password": PASSWORD, "port": 4000}
    (home / manager.ENV_FILE).write_text(
        "# Written by `tidbops playground up`\n"
        f"export AIRFLOW_CONN_TIDB_DEV='{json.dumps(conn)}'\n"
        "export TIDBOPS_S3_ENDPOINT=http://127.0.0.1:9000\n"
    )
    assert run(["playground", "env", "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert PASSWORD not in out and doc["path"] == str(home / manager.ENV_FILE)
    assert json.loads(doc["variables"]["AIRFLOW_CONN_TIDB_DEV"]) == {**conn, "password": "***"}
    assert doc["variables"]["TIDBOPS_S3_ENDPOINT"] == "http://127.0.0.1:9000"
    assert run(["playground", "env", "--show-secrets"]) == 0  # through tidbops, everything printed is redacted
    assert PASSWORD not in capsys.readouterr().out
    assert run(["playground", "env", "--path", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(home / manager.ENV_FILE)}


def test_faults_as_tables_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["playground", "fault", "list"]) == 0
    assert capsys.readouterr().out == "no faults armed\n"
    assert run(["playground", "fault", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    assert run(["playground", "fault", "list", "--known", "--json"]) == 0
    known = json.loads(capsys.readouterr().out)
    assert run(["playground", "fault", "list", "--known"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["FAULT", "WHAT", "IT", "DOES"] and len(lines) == len(known) + 1
    assert all(line.startswith(name) for line, name in zip(lines[1:], known, strict=True))
