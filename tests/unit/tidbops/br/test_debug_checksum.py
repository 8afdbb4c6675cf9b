"""``br debug checksum`` (verification tier 2): the argv builder and the reading of BR's output.

The outputs here are written from BR's own text (``br/cmd/br/debug.go``: ``cmd.Println("backup data
checksum succeed!")`` on stdout, ``errors.Annotatef(berrors.ErrBackupChecksumMismatch, "\\nbackup data
checksum failed: %s may be changed\\ncalculated sha256 is %s,\\norigin sha256 is %s", …)`` printed by
cobra as ``Error: <annotation>: [BR:Backup:ErrBackupChecksumMismatch]backup checksum mismatch``; see
``/work/shared/reference/br-cli.md`` §1.5 and §2), not from the playground's emulator.
"""

from __future__ import annotations

from typing import Any

import pytest

from tidbops.br.command import debug_checksum_argv
from tidbops.br.errors import BRRequestError
from tidbops.br.output import CHECKSUM_SUCCEED, parse_debug_checksum
from tidbops.config import ClusterConfig

pytestmark = pytest.mark.unit

CALC = "3f" * 32
ORIG = "a0" * 32
DETAIL = "Detail BR log in /tmp/br.log.2026-12-06T03.23.00+0000 "
LOG_LINE = (
    '[2026/12/06 03:23:01.120 +00:00] [INFO] [debug.go:98] ["file info"] [table=orders] '
    "[file=1_2_28_abc_434_write.sst] [crc64xor=123] [totalKvs=5] [totalBytes=327]"
)
MISMATCH_STDERR = (
    f"{DETAIL}\nError: \nbackup data checksum failed: 1_2_28_abc_434_write.sst may be changed\n"
    f"calculated sha256 is {CALC},\norigin sha256 is {ORIG}: "
    "[BR:Backup:ErrBackupChecksumMismatch]backup checksum mismatch\n"
)


def cluster(**over: Any) -> ClusterConfig:
    raw: dict[str, Any] = {
        "name": "prod",
        "env": "prod",
        "pd": ["pd-0:2379"],
        "tidb_conn_id": "tidb_prod",
        "storage": {"uri": "s3://backups", "conn_id": "s3_prod", "endpoint": "http://minio:9000"},
    }
    raw.update(over)
    return ClusterConfig.model_validate(raw)


PLAIN = cluster()
ENCRYPTED = cluster(br={"encryption": {"method": "aes256-ctr", "key_conn_id": "br_key"}})
LOCAL = cluster(storage={"uri": "local:///srv/backups"})


@pytest.mark.parametrize(
    ("config", "kwargs", "expected"),
    [
        pytest.param(
            PLAIN,
            {"storage_uri": "s3://backups/prod/full/b1", "log_file": "/tmp/br.log"},
            [
                "br", "debug", "checksum", "--storage", "s3://backups/prod/full/b1",
                "--s3.endpoint", "http://minio:9000", "--log-file", "/tmp/br.log",
            ],
            id="s3-options-no-pd",
        ),
        pytest.param(
            ENCRYPTED,
            {"storage_uri": "s3://backups/prod/full/b1", "crypter_key_file": "/run/k", "br_path": "/opt/br"},
            [
                "/opt/br", "debug", "checksum", "--storage", "s3://backups/prod/full/b1",
                "--s3.endpoint", "http://minio:9000", "--crypter.method", "aes256-ctr", "--crypter.key-file", "/run/k",
            ],
            id="encrypted-key-as-a-file",
        ),
        pytest.param(
            LOCAL,
            {"storage_uri": "local:///srv/backups/prod/full/b1"},
            ["br", "debug", "checksum", "--storage", "local:///srv/backups/prod/full/b1"],
            id="local",
        ),
    ],
)  # fmt: skip
def test_debug_checksum_argv(config: ClusterConfig, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert debug_checksum_argv(config, **kwargs) == expected


@pytest.mark.parametrize(
    ("config", "kwargs", "match"),
    [
        pytest.param(ENCRYPTED, {"storage_uri": "s3://backups/p"}, "crypter_key_file", id="encrypted-without-key"),
        pytest.param(PLAIN, {"storage_uri": "s3://backups/p", "crypter_key_file": "/k"}, "no br.encryption",
                     id="key-without-encryption"),
        pytest.param(PLAIN, {"storage_uri": "s3://backups/p?secret-access-key=x"}, "carries credentials",
                     id="credentials-in-uri"),
        pytest.param(PLAIN, {"storage_uri": "s3://AKIA:secret@backups/p"}, "carries credentials",
                     id="userinfo-in-uri"),
        pytest.param(PLAIN, {"storage_uri": "s3://backups/p", "log_file": "/tmp/x\nrm"}, "control character",
                     id="newline-in-log-file"),
    ],
)  # fmt: skip
def test_debug_checksum_argv_refuses(config: ClusterConfig, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BRRequestError, match=match):
        debug_checksum_argv(config, **kwargs)


def test_success_line_on_stdout() -> None:
    check = parse_debug_checksum(f"{LOG_LINE}\n{CHECKSUM_SUCCEED}\n\n{DETAIL}\n", 0)
    assert check.ok
    assert check.error is None and check.mismatched_file is None
    assert check.log_path == "/tmp/br.log.2026-12-06T03.23.00+0000"
    assert check.reason().startswith("ok: backup data checksum succeed!")


def test_mismatch_names_the_file_and_both_hashes() -> None:
    check = parse_debug_checksum("\n" + MISMATCH_STDERR, 1)
    assert not check.ok
    assert check.error is not None and check.error.code == "BR:Backup:ErrBackupChecksumMismatch"
    assert check.mismatched_file == "1_2_28_abc_434_write.sst"
    assert (check.calculated_sha256, check.origin_sha256) == (CALC, ORIG)
    reason = check.reason()
    assert "\n" not in reason
    assert reason == (
        f"[BR:Backup:ErrBackupChecksumMismatch] 1_2_28_abc_434_write.sst may be changed: its sha256 is {CALC}, "
        f"backupmeta says {ORIG}"
    )


@pytest.mark.parametrize(
    ("text", "exit_code", "expected"),
    [
        pytest.param(
            f"{DETAIL}\nError: open /srv/backups/prod/full/b1/1_2_28_write.sst: no such file or directory\n", 1,
            "open /srv/backups/prod/full/b1/1_2_28_write.sst: no such file or directory", id="missing-file-local",
        ),
        pytest.param(
            f"{DETAIL}\nError: load backupmeta failed: failed to read s3 file, file info: input.bucket='backups', "
            "input.key='prod/full/b1/backupmeta': NoSuchKey: \n", 1,
            "load backupmeta failed: failed to read s3 file, file info: input.bucket='backups', "
            "input.key='prod/full/b1/backupmeta': NoSuchKey:", id="no-backupmeta",
        ),
        pytest.param(
            f"{DETAIL}\nError: crypter method and key length not match: [BR:Common:ErrInvalidArgument]invalid argument",
            1, "[BR:Common:ErrInvalidArgument] crypter method and key length not match: invalid argument",
            id="bad-key",
        ),
        pytest.param(f"{DETAIL}\n", 1, "br exited 1 and printed no error", id="silent-failure"),
        pytest.param(f"{DETAIL}\n", 0, "br printed neither", id="exit-0-without-the-success-line"),
        pytest.param(f"{CHECKSUM_SUCCEED}\n", 1, "br exited 1 and printed no error", id="success-line-but-exit-1"),
    ],
)  # fmt: skip
def test_failures_are_one_line(text: str, exit_code: int, expected: str) -> None:
    check = parse_debug_checksum(text, exit_code)
    assert not check.ok
    assert check.mismatched_file is None
    assert check.reason().startswith(expected)
    assert "\n" not in check.reason()


def test_the_error_stops_at_the_next_log_record() -> None:
    text = f"Error: \nopen x.sst: no such file or directory\n{LOG_LINE}\n"
    check = parse_debug_checksum(text, 1)
    assert check.error is not None and check.error.message == "open x.sst: no such file or directory"


def test_parse_never_raises_on_junk() -> None:
    assert not parse_debug_checksum("\x00\x1b[31mError:\r\r\n" * 50, None).ok
    assert not parse_debug_checksum(None, 0).ok  # type: ignore[arg-type]
