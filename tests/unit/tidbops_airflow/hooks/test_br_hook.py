"""BRHook against a fake `br` that records what it was called with (patroni's way of testing backups)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tidbops.br.command import backup_argv
from tidbops.br.errors import BRError
from tidbops.config import load_fleet
from tidbops_airflow.hooks.br import BRHook

pytestmark = pytest.mark.operators

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CRYPTER_KEY = "0123456789abcdef" * 4

FAKE_BR = """#!{python}
import json, os, stat, sys
record = {{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}}}
if "--crypter.key-file" in sys.argv:
    path = sys.argv[sys.argv.index("--crypter.key-file") + 1]
    record["key"] = open(path).read()
    record["key_mode"] = stat.S_IMODE(os.stat(path).st_mode)
    record["key_path"] = path
open({out!r}, "w").write(json.dumps(record))
sys.stderr.write("Detail BR log in /tmp/br.log \\n")
mode = os.environ.get("FAKE_BR_MODE", "ok")
if mode == "fail":
    sys.stderr.write("Error: failed to check gc safePoint, checkpoint ts 433177834291200000: GC safepoint 433193092308795392 exceed TS 433177834291200000: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded\\n")
    sys.exit(1)
sys.stdout.write("Full Backup <---------->  50.00%\\r")
print('[2026/11/22 05:00:00.000 +00:00] [INFO] [collector.go:77] ["Full Backup success summary"] [total-ranges=2] [ranges-succeed=2] [ranges-failed=0] [total-take=1.5s] [BackupTS=435844546560000000] [total-kv=1131] [total-kv-size=250kB] [average-speed=53.02kB/s] [backup-data-size(after-compressed)=71.33kB] [Size=71330]')
"""


@pytest.fixture
def fake_br(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    out = tmp_path / "called.json"
    br = tmp_path / "br"
    br.write_text(FAKE_BR.format(python=sys.executable, out=str(out)))
    br.chmod(0o755)
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_PLAYGROUND",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAPLAYGROUND000001",
                "password": SECRET,
                "extra": {"endpoint_url": "http://127.0.0.1:14900", "region_name": "us-east-1"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_BR_CRYPTER_PROD", json.dumps({"conn_type": "generic", "password": CRYPTER_KEY}))
    return br, out


def run_backup(br: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> object:
    cluster = load_fleet().get("prod")
    hook = BRHook(cluster=cluster, log_dir=str(tmp_path))
    with hook.session("full") as s:
        argv = backup_argv(
            s.cluster,
            kind="full",
            storage_uri="s3://tidbops-backups/prod/full/x",
            br_path=str(br),
            crypter_key_file=s.key_file,
            log_file=s.log_file,
        )
        result = hook.run(argv, s, timeout=30)
        assert s.key_file is not None and Path(s.key_file).exists()
    assert not Path(s.key_file).exists(), "the key file is removed after the run"
    return result


def test_secrets_reach_br_only_through_env_and_key_file(
    fake_br: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    br, out = fake_br
    result = run_backup(br, tmp_path, caplog)
    logged = capsys.readouterr().out + caplog.text  # Airflow's structlog writes to stdout
    called = json.loads(out.read_text())
    argv = " ".join(called["argv"])
    assert SECRET not in argv and CRYPTER_KEY not in argv and "AKIA" not in argv
    assert called["env"]["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert called["env"]["AWS_ACCESS_KEY_ID"] == "AKIAPLAYGROUND000001"
    assert called["key"] == CRYPTER_KEY and called["key_mode"] == 0o600
    assert "--s3.endpoint" in called["argv"] and "http://127.0.0.1:14900" in called["argv"], (
        "endpoint from the connection"
    )
    assert "--crypter.method" in called["argv"]
    assert "running: " in logged and "--crypter.key-file" in logged
    assert SECRET not in logged and CRYPTER_KEY not in logged
    assert result.outcome.backup_ts == 435844546560000000  # type: ignore[attr-defined]
    assert result.summary()["size_bytes"] == 71330  # type: ignore[attr-defined]
    assert "progress: Full Backup 50.00%" in logged


def test_failure_raises_brerror_with_the_br_code(
    fake_br: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    br, _ = fake_br
    monkeypatch.setenv("FAKE_BR_MODE", "fail")
    with pytest.raises(BRError) as err:
        run_backup(br, tmp_path, caplog)
    assert err.value.exit_code == 1
    assert "BR:Backup:ErrBackupGCSafepointExceeded" in str(err.value)
    assert SECRET not in str(err.value)


def test_bad_crypter_key_is_refused_before_br_runs(
    fake_br: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    br, out = fake_br
    monkeypatch.setenv("AIRFLOW_CONN_BR_CRYPTER_PROD", json.dumps({"conn_type": "generic", "password": "not-hex"}))
    with pytest.raises(ValueError, match="hex key of 16, 24 or 32 bytes"):
        run_backup(br, tmp_path, caplog)
    assert not out.exists(), "BR was never called"
