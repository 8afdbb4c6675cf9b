from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops.cli import app
from tidbops.config import default_config_path

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_check_ok() -> None:
    result = runner.invoke(app, ["config", "check", str(default_config_path())])
    assert result.exit_code == 0, result.output
    assert "ok; 6 valid cluster(s): dev, uat, prod, scratch1, scratch2, secure" in result.output


def test_check_bad_human_and_json(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text(default_config_path().read_text().replace('full: "0 1 * * 0"', 'full: "61 1 * * 0"'))
    human = runner.invoke(app, ["config", "check", str(bad)])
    assert human.exit_code == 1
    assert "error: cluster 'uat': schedules.full: '61 1 * * 0' is not a valid cron expression" in human.output
    as_json = runner.invoke(app, ["config", "check", "--json", str(bad)])
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    assert doc["issues"] == [{"cluster": "uat", "field": "schedules.full", "message": doc["issues"][0]["message"]}]
    assert [c["name"] for c in doc["clusters"]] == ["dev", "prod", "scratch1", "scratch2", "secure"]


def test_check_unreadable(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", "--json", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "cannot read the fleet config" in json.loads(result.stdout)["issues"][0]["message"]


def test_installed_entry_point() -> None:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("tidbops", path=str(Path(sys.executable).parent))
    assert exe, "the tidbops console script is installed next to the venv's python"
    out = subprocess.run([exe, "config", "check"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


SHIPPED = default_config_path().read_text()
SECRET = "Sekr1tHunter2"
DEV_ENV = SHIPPED.encode().index(b"env: dev") + len("env: d")  # the byte offset of a byte that is not UTF-8
DEV_ENV_LINE = SHIPPED.encode()[:DEV_ENV].count(b"\n") + 1
UAT_ENV_LINE = SHIPPED[: SHIPPED.index("    env: uat\n")].count("\n") + 1

# (id, file content, a line `config check` must print) — every one exits 1, each problem one line
PROBLEMS = [
    ("not-utf8", SHIPPED.encode().replace(b"env: dev", b"env: d\xe9v"), f"line {DEV_ENV_LINE} column 11 (byte {DEV_ENV}): not UTF-8: byte 0xe9"),
    ("empty", b"", "the fleet config is empty"),
    ("top-level-list", b"- a\n", "must be a mapping with a 'clusters' list; it is a list"),
    ("clusters-null", b"version: 1\nclusters:\n", "'clusters' is empty (null)"),
    ("clusters-mapping", b"clusters: {a: 1}\n", "'clusters' must be a list of cluster entries; it is a mapping"),
    ("defaults-list", b"defaults: [1]\nclusters: []\n", "defaults: must be a mapping of cluster fields"),
    ("routes-list", b"alert_routes: [1]\nclusters: []\n", "alert_routes: must be a mapping of route name to route"),
    ("catalog-list", b"catalog: [1]\nclusters: []\n", "catalog: must be a mapping (conn_id, sqlite_path); it is a list"),
    ("storage-list", SHIPPED.replace("    tidb_conn_id: tidb_dev\n", "    tidb_conn_id: tidb_dev\n    storage: [a]\n").encode(),
     "cluster 'dev': storage: must be a mapping (uri, conn_id, endpoint"),
    ("version-2", SHIPPED.replace("version: 1", "version: 2").encode(), "version 2 is not known; this tidbops reads version 1"),
    ("duplicate-key", SHIPPED.replace("    env: uat\n", "    env: prod\n    env: uat\n").encode(),
     f"cluster 'uat': env: duplicate key 'env' at line {UAT_ENV_LINE + 1} (first defined at line {UAT_ENV_LINE})"),
    ("nan", SHIPPED.replace("max_checkpoint_lag: 5m", "max_checkpoint_lag: .nan").encode(),
     "cluster 'prod': log_backup.max_checkpoint_lag: nan is out of bounds; use a duration from 1s to 7d"),
    ("deep", b"clusters: " + b"[" * 40000 + b"]" * 40000, "nested deeper than 32 levels"),
    ("route-secret", SHIPPED.replace("    kind: log\n", f"    kind: webhook\n    conn_id: https://u:{SECRET}@h/x\n").encode(),
     "alert_routes.dba-log.conn_id: looks like a password in a URL"),
    ("secret-named", SHIPPED.replace("    tidb_conn_id: tidb_prod\n", f"    tidb_conn_id: tidb_prod\n    password: {SECRET}\n").encode(),
     "cluster 'prod': password: (secret-named field) holds a value; secrets belong in Airflow connections"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS])
def test_every_problem_is_one_line_and_exit_1(tmp_path: Path, content: bytes, line: str) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_bytes(content)
    human = runner.invoke(app, ["config", "check", str(bad)])
    assert human.exit_code == 1, human.output
    assert human.exception is None or isinstance(human.exception, SystemExit)
    errors = [row for row in human.stderr.splitlines() if row]
    assert errors and all(row.startswith("error: ") for row in errors), human.stderr
    assert any(line in row for row in errors), errors
    assert "Traceback" not in human.output and SECRET not in human.output
    as_json = runner.invoke(app, ["config", "check", "--json", str(bad)])
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False and doc["issues"]
    assert all("\n" not in i["message"] for i in doc["issues"])
    assert any(line in (f"cluster {i['cluster']!r}: " if i["cluster"] else "") + (f"{i['field']}: " if i["field"] else "") + i["message"] for i in doc["issues"]), doc  # fmt: skip
    assert SECRET not in as_json.stdout


@pytest.mark.parametrize("case", ["not-utf8", "secret-named", "deep"])
def test_the_installed_command_prints_the_same_lines(tmp_path: Path, case: str) -> None:
    """Through the console script (its redacting output and top-level handler), not only CliRunner."""
    import shutil
    import subprocess
    import sys

    content, line = next(p[1:] for p in PROBLEMS if p[0] == case)
    bad = tmp_path / "c.yaml"
    bad.write_bytes(content)
    exe = shutil.which("tidbops", path=str(Path(sys.executable).parent))
    assert exe
    out = subprocess.run([exe, "config", "check", str(bad)], capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 1, out.stderr
    assert any(line in row for row in out.stderr.splitlines()), out.stderr
    assert "Traceback" not in out.stderr and SECRET not in out.stderr + out.stdout
