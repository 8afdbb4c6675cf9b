"""BRHook against a fake `br` that records what it was called with (patroni's way of testing backups)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.helpers.tidb_version import VersionOnlyTiDB
from tidbops.br.command import backup_argv
from tidbops.br.errors import BRError
from tidbops.config import load_fleet
from tidbops_airflow.hooks.br import BRHook

pytestmark = pytest.mark.operators

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CRYPTER_KEY = "0123456789abcdef" * 4

FAKE_BR = """#!{python}
import json, os, stat, sys
if sys.argv[1:] == ["--version"]:
    open({out!r} + ".versions", "a").write("called\\n")
    print("Release Version: " + os.environ.get("FAKE_BR_VERSION", "v8.5.1"))
    print("Git Commit Hash: fea86c8e35ad4a86a5e1160701f99493c2ee547c\\nGit Branch: HEAD\\nGo Version: go1.23.6")
    print("UTC Build Time: 2025-01-17 07:21:06\\nRace Enabled: false")
    sys.exit(0)
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
    monkeypatch.setattr("pymysql.connect", VersionOnlyTiDB)  # the cluster's SQL side (pymysql is not ours)
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_PROD", json.dumps({"conn_type": "mysql", "host": "tidb-prod", "login": "br"}))
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


def test_the_version_check_runs_once_per_hook_before_br(
    fake_br: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    br, out = fake_br
    cluster = load_fleet().get("prod")
    hook = BRHook(cluster=cluster, log_dir=str(tmp_path))
    for _ in range(2):
        with hook.session("full") as s:
            argv = backup_argv(
                s.cluster, kind="full", storage_uri="s3://b/prod/x", br_path=str(br), crypter_key_file=s.key_file
            )
            hook.run(argv, s, timeout=30)
    assert Path(str(out) + ".versions").read_text().count("called") == 1, "one `br --version` per task run"
    logged = capsys.readouterr().out + caplog.text
    assert "BR v8.5.1, cluster 'prod' v8.5.1: compatible by BR's rule" in logged


@pytest.mark.parametrize(
    ("br_version", "tidb_version", "pin", "message"),
    [
        pytest.param(
            "v7.5.4",
            "v8.5.1",
            None,
            r"br at .*/br is v7\.5\.4 and cluster 'prod' runs v8\.5\.1: the major versions differ; BR's rule",
            id="major",
        ),
        pytest.param("v8.5.1", "v8.1.2", None, r"runs v8\.1\.2: BR v8\.2\+ does not support", id="82"),
        pytest.param(
            "v8.5.0", "v8.5.1", "v8.5.1", r"is v8\.5\.0, but cluster 'prod' pins br\.version v8\.5\.1", id="pin"
        ),
    ],
)
def test_a_mismatch_is_refused_in_one_line_before_br_runs(
    fake_br: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    br_version: str,
    tidb_version: str,
    pin: str | None,
    message: str,
) -> None:
    from tidbops.br.version import VersionMismatchError

    br, out = fake_br
    monkeypatch.setenv("FAKE_BR_VERSION", br_version)
    monkeypatch.setenv("FAKE_TIDB_VERSION", tidb_version)
    cluster = load_fleet().get("prod")
    if pin:
        cluster = cluster.model_copy(update={"br": cluster.br.model_copy(update={"version": pin})})
    hook = BRHook(cluster=cluster, log_dir=str(tmp_path))
    with pytest.raises(VersionMismatchError, match=message) as err, hook.session("full") as s:
        hook.run(
            backup_argv(s.cluster, kind="full", storage_uri="s3://b/x", br_path=str(br), crypter_key_file=s.key_file), s
        )
    assert "\n" not in str(err.value)
    assert not out.exists(), "BR itself never ran"


CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"
KEY_PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIfakefakefake\n-----END EC PRIVATE KEY-----"


def test_tls_pems_from_a_connection_reach_br_as_0600_files_removed_after(
    fake_br: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tidbops.config import TLSConfig

    br, out = fake_br
    extra = {"ca": CA_PEM, "cert": CA_PEM.replace("fake", "client"), "key": KEY_PEM}
    monkeypatch.setenv("AIRFLOW_CONN_TLS_PROD", json.dumps({"conn_type": "generic", "extra": extra}))
    cluster = load_fleet().get("prod").model_copy(update={"tls": TLSConfig(conn_id="tls_prod")})
    hook = BRHook(cluster=cluster, log_dir=str(tmp_path))
    with hook.session("full") as s:
        argv = backup_argv(s.cluster, kind="full", storage_uri="s3://b/x", br_path=str(br), crypter_key_file=s.key_file)
        paths = {flag: argv[argv.index(flag) + 1] for flag in ("--ca", "--cert", "--key")}
        for flag, pem in (("--ca", CA_PEM), ("--key", KEY_PEM)):
            assert Path(paths[flag]).read_text().strip() == pem
            assert stat.S_IMODE(os.stat(paths[flag]).st_mode) == 0o600
        hook.run(argv, s, timeout=30)
    assert not any(Path(p).exists() for p in paths.values()), "the PEM files are removed after the run"
    assert "MHcCAQEEIfakefakefake" not in capsys.readouterr().out + caplog.text
    called = json.loads(out.read_text())["argv"]
    assert [called[called.index(flag) + 1] for flag in ("--ca", "--cert", "--key")] == list(paths.values())


def test_tls_paths_from_the_config_go_to_br_as_they_are(fake_br: tuple[Path, Path], tmp_path: Path) -> None:
    from tidbops.config import TLSConfig

    br, out = fake_br
    tls = TLSConfig(ca="/etc/tidb/ca.pem", cert="/etc/tidb/client.pem", key="/etc/tidb/client-key.pem")
    cluster = load_fleet().get("prod").model_copy(update={"tls": tls})
    hook = BRHook(cluster=cluster, log_dir=str(tmp_path))
    with hook.session("full") as s:
        hook.run(
            backup_argv(s.cluster, kind="full", storage_uri="s3://b/x", br_path=str(br), crypter_key_file=s.key_file), s
        )
    argv = json.loads(out.read_text())["argv"]
    i = argv.index("--ca")
    assert argv[i : i + 6] == [
        "--ca",
        "/etc/tidb/ca.pem",
        "--cert",
        "/etc/tidb/client.pem",
        "--key",
        "/etc/tidb/client-key.pem",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"ca": "/etc/ca.pem"}, "extra 'ca' must hold the CA certificate", id="a-path-not-a-pem"),
        pytest.param({"ca": CA_PEM, "key": KEY_PEM}, "'cert' and 'key' go together", id="key-without-cert"),
    ],
)
def test_bad_tls_connections_are_refused_before_br_runs(
    fake_br: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], message: str
) -> None:
    from tidbops.config import TLSConfig

    _, out = fake_br
    monkeypatch.setenv("AIRFLOW_CONN_TLS_PROD", json.dumps({"conn_type": "generic", "extra": extra}))
    cluster = load_fleet().get("prod").model_copy(update={"tls": TLSConfig(conn_id="tls_prod")})
    with pytest.raises(ValueError, match=message), BRHook(cluster=cluster, log_dir=str(tmp_path)).session("x"):
        pass
    assert not out.exists()
