"""The command-line contract of the emulator, checked against the reference (br-cli.md §1-§2, §4.2)."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import BR, SECRET_KEY, Playground

pytestmark = pytest.mark.playground


def test_version_prints_build_info(pg: Playground) -> None:
    r = pg.br("-V", log=False)
    assert r.rc == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "Release Version: v8.5.1"
    assert [ln.split(":")[0] for ln in lines] == [
        "Release Version",
        "Git Commit Hash",
        "Git Branch",
        "Go Version",
        "UTC Build Time",
        "Race Enabled",
    ]
    assert r.stderr == ""
    r2 = pg.br("--version", log=False, env=pg.env(TIDBOPS_BR_EMULATE_VERSION="v7.5.2"))
    assert r2.stdout.startswith("Release Version: v7.5.2\n")


def test_detail_line_and_default_log_file(pg: Playground) -> None:
    proc = subprocess.run(
        [str(BR), "log", "status", "--pd", pg.src.pd], capture_output=True, text=True, env=pg.env(), timeout=60
    )
    assert proc.returncode == 0
    m = re.fullmatch(
        r"Detail BR log in (/tmp/br\.log\.\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d(?:Z|[+-]\d{4})) \n", proc.stderr
    )
    assert m, repr(proc.stderr)
    log_text = open(m.group(1)).read()
    assert '["Welcome to Backup & Restore (BR)"] [release-version=v8.5.1]' in log_text
    assert '[arguments] [__command="br log status"]' in log_text


def test_br_log_to_term_writes_no_file(pg: Playground) -> None:
    proc = subprocess.run(
        [str(BR), "log", "status", "--pd", pg.src.pd],
        capture_output=True,
        text=True,
        env=pg.env(BR_LOG_TO_TERM="1"),
        timeout=60,
    )
    assert proc.returncode == 0
    assert "Detail BR log in" not in proc.stderr
    assert "Welcome to Backup & Restore (BR)" in proc.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["backup", "full", "--checksum", "false"], 'Error: unknown command "false" for "br backup full"'),
        (["backup", "full", "--frobnicate"], "Error: unknown flag: --frobnicate"),
        (["backup", "table", "--db", "shop"], 'Error: required flag(s) "table" not set'),
        (["restore", "db"], 'Error: required flag(s) "db" not set'),
    ],
)
def test_cobra_errors(pg: Playground, args: list[str], error: str) -> None:
    r = pg.br(*args, "--pd", pg.src.pd, "-s", pg.local("never"))
    assert r.rc == 1
    assert r.stderr.splitlines()[-1] == error


def test_flag_error_goes_before_init_and_br_failed_to_stdout(pg: Playground) -> None:
    r = pg.br("backup", "full", "--nope")
    assert "Detail BR log in" not in r.stderr
    assert '["br failed"] [error="unknown flag: --nope"]' in r.stdout
    r2 = pg.br("backup", "db", "--pd", pg.src.pd)
    assert r2.stderr.startswith("Detail BR log in ")
    assert '["br failed"]' in r2.log


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--compression", "gzip"], "invalid compression type 'gzip': [BR:Common:ErrInvalidArgument]invalid argument"),
        (
            ["--crypter.method", "aes1024-ctr"],
            "invalid crypter method 'aes1024-ctr': [BR:Common:ErrInvalidArgument]invalid argument",
        ),
        (
            ["--crypter.method", "aes128-ctr"],
            "exactly one of --crypter.key or --crypter.key-file should be provided: "
            "[BR:Common:ErrInvalidArgument]invalid argument",
        ),
        (
            ["--crypter.method", "aes256-ctr", "--crypter.key", "0123456789abcdef0123456789abcdef"],
            "crypter method and key length not match: [BR:Common:ErrInvalidArgument]invalid argument",
        ),
        (["--timeago", "-1h"], "negative timeago is not allowed: [BR:Common:ErrInvalidArgument]invalid argument"),
        (["-f", "shop"], "at <cmdline>:1: wrong table pattern"),
    ],
)
def test_backup_argument_errors(pg: Playground, extra: list[str], error: str) -> None:
    r = pg.br("backup", "full", "--pd", pg.src.pd, "-s", pg.local("argerr"), *extra)
    assert r.rc == 1
    assert r.stderr.splitlines()[-1] == "Error: " + error
    assert "0123456789abcdef" not in r.log and "0123456789abcdef" not in r.stdout


def test_empty_storage_and_unknown_pd(pg: Playground) -> None:
    r = pg.br("backup", "full", "--pd", pg.src.pd)
    assert r.stderr.splitlines()[-1] == (
        "Error: empty store is not allowed: [BR:ExternalStorage:ErrStorageInvalidConfig]invalid external storage config"
    )
    r2 = pg.br("backup", "full", "--pd", "127.0.0.1:1", "-s", pg.local("nopd"))
    assert r2.rc == 1
    assert r2.stderr.splitlines()[-1].startswith("Error: pd address (127.0.0.1:1) not available, error is ")
    assert r2.stderr.splitlines()[-1].endswith("please check network: [BR:PD:ErrPDUpdateFailed]failed to update PD")


def test_log_status_needs_pd(pg: Playground) -> None:
    r = pg.br("log", "status", "--pd", "")
    assert r.rc == 1
    assert "must provide at least one PD server address" in r.stderr


def test_ratelimit_warning_and_backup_summary_fields(pg: Playground, no_faults: Playground) -> None:
    r = pg.backup_table(pg.local("ratelimit"), "--ratelimit", "10", "--concurrency", "8")
    assert r.rc == 0, r.stderr
    warn = [ln for ln in r.stdout.splitlines() if "[WARN]" in ln]
    assert (
        warn
        and '["setting `--ratelimit` and `--concurrency` at the same time, ignoring `--concurrency`: '
        '`--ratelimit` forces sequential (i.e. concurrency = 1) backup"]'
        in warn[0]
    )
    assert "[ratelimit=10.49MB/s] [concurrency-specified=8]" in warn[0]
    line = next(ln for ln in r.stdout.splitlines() if '["Table Backup success summary"]' in ln)
    assert re.search(
        r'\["Table Backup success summary"\] \[total-ranges=\d+\] \[ranges-succeed=\d+\] '
        r"\[ranges-failed=0\] ",
        line,
    )
    f = r.summary("Table Backup success summary")
    assert int(f["BackupTS"]) > 0 and int(f["Size"]) > 0 and int(f["total-kv"]) == 40 * 2
    assert re.fullmatch(r"[\d.]+(ns|µs|ms|s)|\d+m[\d.]+s", f["total-take"])
    assert re.fullmatch(r"[\d.]+k?B", f["total-kv-size"])
    assert "backup-checksum" not in f  # v8.5: --checksum defaults to false for backups
    # the summary goes to the log file too (each logger stamps its own time, so compare after the stamp)
    assert line.split("] ", 1)[1] in r.log


def test_secrets_never_printed(pg: Playground, no_faults: Playground) -> None:
    key = "00112233445566778899aabbccddeeff"
    url = (
        f"s3://backups/secret-test?endpoint={pg.s3_endpoint}&access-key=test-access-key&secret-access-key={SECRET_KEY}"
    )
    r = pg.backup_table(url, "--crypter.method", "aes128-ctr", "--crypter.key", key)
    assert r.rc == 0, r.stderr
    for text in (r.stdout, r.stderr, r.log):
        assert SECRET_KEY not in text
        assert key not in text
    assert "[crypter.key=<redacted>]" in r.log
    assert "[storage=s3://backups/secret-test]" in r.log


def test_unknown_root_command_suggests(pg: Playground) -> None:
    r = pg.br("bakcup", log=False)
    assert r.rc == 1
    assert r.stderr.startswith('Error: unknown command "bakcup" for "br"\n\nDid you mean this?\n\tbackup\n')


def test_help_exits_zero(pg: Playground) -> None:
    r = pg.br("backup", "full", "--help", log=False)
    assert r.rc == 0
    assert "br backup full [flags]" in r.stdout
