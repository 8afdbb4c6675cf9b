from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops.cli import (
    app,
    config_cmd,  # noqa: F401  (registers the command)
)
from tidbops.config import default_config_path

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_check_ok() -> None:
    result = runner.invoke(app, ["config", "check", str(default_config_path())])
    assert result.exit_code == 0, result.output
    assert "ok; 5 valid cluster(s): dev, uat, prod, scratch1, scratch2" in result.output


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
    assert [c["name"] for c in doc["clusters"]] == ["dev", "prod", "scratch1", "scratch2"]


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
