from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tidbops.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "br" / "samples"


def run(*args: str, stdin: bytes | str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["br", "parse", *args], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def cells(out: str) -> list[list[str]]:
    """The rows of the plain tables in ``out`` (columns are two or more blanks apart)."""
    return [re.split(r"\s{2,}", line) for line in out.splitlines()]


def test_success_human() -> None:
    code, out, _ = run(str(SAMPLES / "v8_full_backup_success.txt"))
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["BR Full Backup: SUCCESS", "FIGURE           VALUE"]
    rows = cells(out)
    assert ["backup ts", "435844546560000000 (2022-09-08 05:30:00.000 UTC)"] in rows
    assert ["total kv size", "250000 bytes (250 kB)"] in rows
    assert ["average speed", "53020 bytes/s (53.02 kB/s)"] in rows
    assert ["total take", "4.71551 s"] in rows
    summary = lines.index("Full Backup summary (success):")
    assert cells(lines[summary + 1])[0] == ["FIELD", "VALUE"]
    assert ["backup-checksum", "3.597416ms -> 0.00359742 s"] in rows[summary:]
    assert ["BackupTS", "435844546560000000 (2022-09-08 05:30:00.000 UTC)"] in rows[summary:]
    assert lines[-1] == "Detail BR log: /tmp/br.log.2022-09-08T13.30.57+0800"


def test_success_json() -> None:
    code, out, _ = run("--json", str(SAMPLES / "v8_5_pitr_restore_point.txt"))
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "br_output" and doc["success"] is True
    assert doc["command"] == "restore log"
    assert [s["command"] for s in doc["summaries"]] == ["Full Restore", "restore log"]
    assert doc["backup_ts"] == 456118101615575040 and doc["backup_time"] == "2025-02-19T08:07:55.035Z"
    assert doc["restore_end_ts"] == 456136975983575040 and doc["restore_end_time"] == "2025-02-20T04:07:55.035Z"
    assert doc["normalised"]["total-size"] == 261_400_000_000
    assert doc["total_size_bytes"] == 261_400_000_000


def test_failure_exits_3_and_names_the_code() -> None:
    code, out, _ = run(str(SAMPLES / "v8_backup_meta_exists.txt"))
    assert code == 3
    assert "FAILED" in out.splitlines()[0]
    assert "[BR:Common:ErrInvalidArgument] (stderr) backup meta file exists in s3://" in out


def test_failure_json_errors() -> None:
    code, out, _ = run("--json", str(SAMPLES / "v8_log_pause_failed.txt"))
    doc = json.loads(out)
    assert code == 3 and doc["success"] is False
    assert doc["errors"][0]["code"] == "BR:Backup:ErrBackupGCSafepointExceeded"
    assert doc["errors"][0]["error_class"] == "Backup"


def test_progress_and_unknown_outcome_from_stdin() -> None:
    code, out, _ = run("-", stdin=(SAMPLES / "v8_killed_mid_backup.txt").read_bytes())
    assert code == 0
    assert "outcome unknown (no summary)" in out
    assert "Last progress: Full Backup 25.00% (200 / 800) [log]" in out
    assert "Warnings:" in out


def test_log_status_table() -> None:
    code, out, _ = run(str(SAMPLES / "log_status_error_wrapped.txt"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "br log status: 1 task(s)"
    assert cells(lines[1]) == [["NAME", "STATUS", "CHECKPOINT", "GAP", "STORAGE"]]
    row = cells(lines[2])[0]
    assert row[:2] == ["task1", "ERROR"] and row[2].endswith(" UTC") and row[3] == "11h31m29s"
    assert "task1: error (store 1 at 2022-07-25 14:54:44 UTC): KV:LogBackup:RaftReq: retry time exceeds" in out


def test_log_status_table_of_several_tasks() -> None:
    code, out, _ = run(str(SAMPLES / "log_status_multi_v8.txt"))
    assert code == 0
    assert cells(out)[1:4] == [
        ["NAME", "STATUS", "CHECKPOINT", "GAP", "STORAGE"],
        ["pitr-a", "NORMAL", "2024-05-10 01:59:58 UTC", "2m2s", "s3://tidbops-backups/dev/log"],
        ["pitr-b", "NORMAL", "2024-05-10 01:58:00 UTC*", "2m0s", "local:///srv/backups/uat/log"],
    ]
    assert "* no global checkpoint yet: the lowest store checkpoint" in out
    assert "pitr-b: store 4: checkpoint 2024-05-10 01:59:10 UTC" in out


def test_log_status_json() -> None:
    code, out, _ = run("--json", str(SAMPLES / "log_status_json_released.txt"))
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "log_status"
    assert [(t["name"], t["status"], t["status_derived"]) for t in doc["tasks"]] == [
        ("pitr", None, False),
        ("pitr-old", "ERROR", True),
    ]


def test_no_task() -> None:
    code, out, _ = run(str(SAMPLES / "log_status_no_task.txt"))
    assert code == 0 and "no log backup task" in out


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"just some text\nnothing else\n", id="text"),
        pytest.param(bytes(range(256)) * 4, id="binary"),
        pytest.param(b"\xff\xfe[\x00\x01", id="invalid-utf8"),
    ],
)
def test_unrecognised_input_is_a_clear_message(data: bytes) -> None:
    code, out, err = run(stdin=data)
    assert code == 1
    assert "no BR output recognised in stdin" in err
    assert "Traceback" not in out + err


def test_unrecognised_json() -> None:
    code, out, _ = run("--json", "-", stdin="hello\n")
    assert code == 1 and json.loads(out.splitlines()[0]) == {
        "kind": "unrecognised",
        "recognised": False,
        "source": "stdin",
    }


def test_missing_file(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nope.log"))
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_non_utf8_file_with_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "br.log"
    path.write_bytes(b"\xff\xfe garbage\n" + (SAMPLES / "v8_full_backup_success.txt").read_bytes() + b"\x80\x81\n")
    code, out, _ = run(str(path))
    assert code == 0 and "SUCCESS" in out
