"""BR argv builders, credentials, paths, redaction and BR-style time parsing."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tidbops import tso
from tidbops.br import command
from tidbops.br.command import (
    BR_TZ_REQUIRED,
    backup_argv,
    br_env,
    log_argv,
    parse_ts,
    restore_full_argv,
    restore_point_argv,
)
from tidbops.br.errors import BRRequestError, InvalidFilterError, InvalidTimestampError
from tidbops.config import ClusterConfig
from tidbops.errors import TiDBOpsError
from tidbops.redact import redact_argv

pytestmark = pytest.mark.unit

TS = 435844546560000000  # 2022-09-08 13:30:00 +08:00
LAST = 435800000000000000


def cluster(**over: Any) -> ClusterConfig:
    raw: dict[str, Any] = {
        "name": "prod",
        "env": "prod",
        "pd": ["pd-0:2379", "pd-1:2379"],
        "tidb_conn_id": "tidb_prod",
        "storage": {"uri": "s3://backups", "conn_id": "s3_prod"},
        "log_backup": {"enabled": True, "task_name": "pitr-prod"},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return ClusterConfig.model_validate(raw)


PLAIN = cluster()
S3_FULL = cluster(
    storage={"endpoint": "http://minio:9000", "region": "us-east-1", "sse": "aws:kms", "sse_kms_key_id": "k-1"}
)
LIMITED = cluster(br={"ratelimit_mib": 64, "concurrency": 8, "checksum": False, "compression": "lz4"})
ENCRYPTED = cluster(br={"encryption": {"method": "aes256-ctr", "key_conn_id": "br_key"}})
LOCAL = cluster(storage={"uri": "local:///srv/backups"})


def flag(argv: list[str], name: str) -> str | None:
    """The value after ``name`` in argv (``None`` if absent)."""
    return argv[argv.index(name) + 1] if name in argv else None


# ------------------------------------------------------------------------------------------ backup


BACKUP_CASES = [
    pytest.param(
        PLAIN,
        {"kind": "full", "storage_uri": "s3://backups/prod/full/x"},
        [
            "br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/full/x",
            "--concurrency", "4", "--compression", "zstd", "--checksum=true",
        ],
        id="full-defaults",
    ),
    pytest.param(
        LIMITED,
        {"kind": "full", "storage_uri": "s3://backups/p", "backupts": TS, "log_file": "/tmp/br.log"},
        [
            "br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/p",
            "--backupts", str(TS), "--ratelimit", "64", "--compression", "lz4", "--checksum=false",
            "--log-file", "/tmp/br.log",
        ],
        id="ratelimit-drops-concurrency-and-checksum-false",
    ),
    pytest.param(
        PLAIN,
        {"kind": "incremental", "storage_uri": "s3://backups/p/incr", "lastbackupts": LAST, "backupts": TS},
        [
            "br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/p/incr",
            "--backupts", str(TS), "--lastbackupts", str(LAST), "--concurrency", "4", "--compression", "zstd",
            "--checksum=true",
        ],
        id="incremental",
    ),
    pytest.param(
        S3_FULL,
        {"kind": "full", "storage_uri": "s3://backups/p", "br_path": "/opt/br", "filters": ["shop.*", "!shop.tmp_*"]},
        [
            "/opt/br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/p",
            "--concurrency", "4", "--compression", "zstd", "--checksum=true", "-f", "shop.*", "-f", "!shop.tmp_*",
            "--s3.endpoint", "http://minio:9000", "--s3.region", "us-east-1", "--s3.sse", "aws:kms",
            "--s3.sse-kms-key-id", "k-1",
        ],
        id="s3-options-filters-br-path",
    ),
    pytest.param(
        ENCRYPTED,
        {"kind": "full", "storage_uri": "s3://backups/p", "crypter_key_file": "/run/tidbops/key"},
        [
            "br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/p",
            "--concurrency", "4", "--compression", "zstd", "--checksum=true",
            "--crypter.method", "aes256-ctr", "--crypter.key-file", "/run/tidbops/key",
        ],
        id="encrypted-key-file-only",
    ),
    pytest.param(
        S3_FULL,
        {"kind": "full", "storage_uri": "local:///srv/b"},
        [
            "br", "backup", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "local:///srv/b",
            "--concurrency", "4", "--compression", "zstd", "--checksum=true",
        ],
        id="no-s3-flags-for-local-storage",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("config", "kwargs", "expected"), BACKUP_CASES)
def test_backup_argv(config: ClusterConfig, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert backup_argv(config, **kwargs) == expected


BACKUP_ERRORS = [
    pytest.param(PLAIN, {"kind": "incremental", "storage_uri": "s3://b/p"}, "needs lastbackupts", id="incr-no-last"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "lastbackupts": LAST}, "no lastbackupts", id="full-last"),
    pytest.param(PLAIN, {"kind": "weekly", "storage_uri": "s3://b/p"}, "not 'full'", id="bad-kind"),
    pytest.param(
        PLAIN, {"kind": "incremental", "storage_uri": "s3://b/p", "lastbackupts": TS, "backupts": LAST},
        "must be after", id="backupts-before-last",
    ),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "backupts": 0}, "not a TSO", id="zero-ts"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "backupts": True}, "TSO integer", id="bool-ts"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "backupts": 1 << 64}, "not a TSO", id="ts-overflow"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p?access-key=AK&secret-access-key=SK"}, "credentials", id="creds-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p?session-token=T"}, "credentials", id="token-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "azure://c/p?account-key=K"}, "credentials", id="azure-key-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://user:pw@b/p"}, "credentials", id="userinfo-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p\n?secret-access-key=SK"}, "credentials", id="creds-and-newline"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "/srv/backups"}, "no known scheme", id="no-scheme"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p q"}, "whitespace", id="space-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p\n--pd=x"}, "control character", id="newline-in-uri"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": ""}, "empty", id="empty-uri"),
    pytest.param(ENCRYPTED, {"kind": "full", "storage_uri": "s3://b/p"}, "pass crypter_key_file", id="encrypted-no-key"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "crypter_key_file": "/k"}, "no br.encryption", id="key-no-encryption"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "filters": "shop.*"}, "list of patterns", id="filters-as-string"),
    pytest.param(PLAIN, {"kind": "full", "storage_uri": "s3://b/p", "log_file": "/tmp/a\nb"}, "control", id="log-file-newline"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "kwargs", "match"), BACKUP_ERRORS)
def test_backup_argv_refuses(config: ClusterConfig, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BRRequestError, match=match) as info:
        backup_argv(config, **kwargs)
    assert isinstance(info.value, TiDBOpsError)
    assert "SK" not in str(info.value) and "pw" not in str(info.value), "errors never echo credentials"


def test_backup_argv_rejects_a_bad_filter_with_a_typed_error() -> None:
    with pytest.raises(InvalidFilterError, match="unexpected character ';'"):
        backup_argv(PLAIN, kind="full", storage_uri="s3://b/p", filters=["shop.*;rm"])


def test_booleans_are_always_written_with_equals() -> None:
    argvs = [
        backup_argv(LIMITED, kind="full", storage_uri="s3://b/p"),
        restore_full_argv(LIMITED, storage_uri="s3://b/p", with_sys_table=False),
        restore_point_argv(LIMITED, log_storage_uri="s3://b/log", with_sys_table=True),
    ]
    for argv in argvs:
        for i, token in enumerate(argv):
            assert token not in ("true", "false"), f"bare boolean after {argv[i - 1]!r}: BR would see a positional"
        assert any(t.startswith("--checksum=") for t in argv)


# ----------------------------------------------------------------------------------------- restore


RESTORE_CASES = [
    pytest.param(
        {"storage_uri": "s3://backups/prod/full/x"},
        ["br", "restore", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/full/x", "--checksum=true"],
        id="full",
    ),
    pytest.param(
        {"storage_uri": "s3://b/x", "filters": ["shop.*", "`my db`.`t 1`"], "with_sys_table": False},
        [
            "br", "restore", "full", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://b/x", "--checksum=true",
            "--with-sys-table=false", "-f", "shop.*", "-f", "`my db`.`t 1`",
        ],
        id="full-filters-no-sys-table",
    ),
    pytest.param(
        {"storage_uri": "s3://b/x", "scope": "db", "db": "shop"},
        ["br", "restore", "db", "--db", "shop", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://b/x", "--checksum=true"],
        id="db",
    ),
    pytest.param(
        {"storage_uri": "s3://b/x", "scope": "table", "db": "shop", "table": "orders", "log_file": "/l"},
        [
            "br", "restore", "table", "--db", "shop", "--table", "orders", "--pd", "pd-0:2379,pd-1:2379",
            "--storage", "s3://b/x", "--checksum=true", "--log-file", "/l",
        ],
        id="table",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "expected"), RESTORE_CASES)
def test_restore_full_argv(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert restore_full_argv(PLAIN, **kwargs) == expected


def test_restore_from_another_clusters_encrypted_backup_into_scratch() -> None:
    scratch = cluster(
        name="scratch1", env="scratch", pd=["scratch-pd:2379"], scratch=True, log_backup={"enabled": False}
    )
    source = cluster(
        br={"encryption": {"method": "aes128-ctr", "key_conn_id": "k"}}, storage={"endpoint": "http://minio:9000"}
    )
    argv = restore_full_argv(scratch, source=source, storage_uri="s3://backups/prod/full/x", crypter_key_file="/k")
    assert flag(argv, "--pd") == "scratch-pd:2379", "the target's PD"
    assert flag(argv, "--s3.endpoint") == "http://minio:9000", "the source's storage options"
    assert flag(argv, "--crypter.method") == "aes128-ctr" and flag(argv, "--crypter.key-file") == "/k"
    assert not any(t.startswith("--crypter.key=") or t == "--crypter.key" for t in argv)


RESTORE_ERRORS = [
    pytest.param({"storage_uri": "s3://b/x", "scope": "db"}, "database name is required", id="db-missing"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "table", "db": "shop"}, "table name is required", id="table-missing"),
    pytest.param({"storage_uri": "s3://b/x", "db": "shop"}, "takes no db/table", id="full-with-db"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "db", "db": "shop", "table": "t"}, "takes no table", id="db-with-table"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "db", "db": "shop", "filters": ["a.b"]}, "only apply", id="db-filters"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "db", "db": "sh\nop"}, "control", id="db-newline"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "db", "db": " shop"}, "whitespace", id="db-space"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "db", "db": "x" * 65}, "64", id="db-too-long"),
    pytest.param({"storage_uri": "s3://b/x", "scope": "everything"}, "not 'full'", id="bad-scope"),
    pytest.param({"storage_uri": "s3://b/x", "filters": ["@/etc/filters"]}, "@file", id="filter-import"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "match"), RESTORE_ERRORS)
def test_restore_full_argv_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BRRequestError, match=match):
        restore_full_argv(PLAIN, **kwargs)


POINT_CASES = [
    pytest.param(
        {"log_storage_uri": "s3://backups/prod/log", "full_backup_storage_uri": "s3://backups/prod/full/x", "restored_ts": TS},
        [
            "br", "restore", "point", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/log",
            "--full-backup-storage", "s3://backups/prod/full/x", "--restored-ts", str(TS), "--checksum=true",
        ],
        id="snapshot-plus-logs",
    ),
    pytest.param(
        {"log_storage_uri": "s3://backups/prod/log", "start_ts": LAST, "restored_ts": TS},
        [
            "br", "restore", "point", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/log",
            "--start-ts", str(LAST), "--restored-ts", str(TS), "--checksum=true",
        ],
        id="logs-only-interval",
    ),
    pytest.param(
        {"log_storage_uri": "s3://backups/prod/log"},
        ["br", "restore", "point", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/log", "--checksum=true"],
        id="to-log-end",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "expected"), POINT_CASES)
def test_restore_point_argv(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert restore_point_argv(PLAIN, **kwargs) == expected


POINT_ERRORS = [
    pytest.param(
        {"log_storage_uri": "s3://b/log", "full_backup_storage_uri": "s3://b/f", "start_ts": LAST},
        "mutually exclusive", id="start-ts-with-snapshot",
    ),
    pytest.param({"log_storage_uri": "s3://b/log", "start_ts": TS, "restored_ts": LAST}, "is after", id="start-after-end"),
    pytest.param({"log_storage_uri": "s3://b/log", "crypter_key_file": "/k"}, "only applies", id="key-without-snapshot"),
    pytest.param({"log_storage_uri": "s3://b/log?secret-access-key=x"}, "credentials", id="creds-in-log-uri"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "match"), POINT_ERRORS)
def test_restore_point_argv_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BRRequestError, match=match):
        restore_point_argv(PLAIN, **kwargs)


def test_restore_point_s3_options_cover_both_storages_and_encryption_applies_to_the_snapshot() -> None:
    argv = restore_point_argv(
        cluster(storage={"uri": "s3://backups", "region": "eu-west-1"}, br={"encryption": ENCRYPTED.br.encryption}),
        log_storage_uri="s3://backups/prod/log",
        full_backup_storage_uri="s3://backups/prod/full/x",
        crypter_key_file="/k",
    )
    assert flag(argv, "--s3.region") == "eu-west-1" and argv.count("--s3.region") == 1
    assert flag(argv, "--crypter.key-file") == "/k"


# --------------------------------------------------------------------------------------------- log


LOG_CASES = [
    pytest.param(
        "start", {"start_ts": TS},
        ["br", "log", "start", "--task-name", "pitr-prod", "--pd", "pd-0:2379,pd-1:2379", "--storage", "s3://backups/prod/log", "--start-ts", str(TS)],
        id="start-defaults-from-config",
    ),
    pytest.param("status", {}, ["br", "log", "status", "--pd", "pd-0:2379,pd-1:2379", "--json"], id="status-all-json"),
    pytest.param(
        "status", {"task_name": "pitr-prod", "json_output": False},
        ["br", "log", "status", "--pd", "pd-0:2379,pd-1:2379", "--task-name", "pitr-prod"],
        id="status-one-table",
    ),
    pytest.param(
        "pause", {"gc_ttl_seconds": 86400},
        ["br", "log", "pause", "--task-name", "pitr-prod", "--pd", "pd-0:2379,pd-1:2379", "--gc-ttl", "86400"],
        id="pause-gc-ttl",
    ),
    pytest.param("resume", {}, ["br", "log", "resume", "--task-name", "pitr-prod", "--pd", "pd-0:2379,pd-1:2379"], id="resume"),
    pytest.param("stop", {"task_name": "other"}, ["br", "log", "stop", "--task-name", "other", "--pd", "pd-0:2379,pd-1:2379"], id="stop-named"),
    pytest.param(
        "truncate", {"until": TS},
        ["br", "log", "truncate", "--storage", "s3://backups/prod/log", "--until", str(TS), "-y"],
        id="truncate-always-yes-no-pd",
    ),
    pytest.param(
        "truncate", {"until": TS, "dry_run": True, "storage_uri": "s3://x/log", "log_file": "/l"},
        ["br", "log", "truncate", "--storage", "s3://x/log", "--until", str(TS), "-y", "--dry-run", "--log-file", "/l"],
        id="truncate-dry-run",
    ),
    pytest.param("metadata", {}, ["br", "log", "metadata", "--storage", "s3://backups/prod/log"], id="metadata-no-pd"),
]  # fmt: skip


@pytest.mark.parametrize(("sub", "kwargs", "expected"), LOG_CASES)
def test_log_argv(sub: command.LogSub, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert log_argv(PLAIN, sub, **kwargs) == expected


def test_log_argv_s3_options_only_where_storage_is_read() -> None:
    assert "--s3.endpoint" in log_argv(S3_FULL, "start")
    assert "--s3.endpoint" in log_argv(S3_FULL, "truncate", until=TS)
    assert "--s3.endpoint" not in log_argv(S3_FULL, "status")


LOG_ERRORS = [
    pytest.param("truncate", {}, "needs until", id="truncate-no-until"),
    pytest.param("status", {"until": TS}, "only applies to 'log truncate'", id="until-elsewhere"),
    pytest.param("stop", {"start_ts": TS}, "only applies to 'log start'", id="start-ts-elsewhere"),
    pytest.param("resume", {"gc_ttl_seconds": 5}, "only applies to 'log pause'", id="gc-ttl-elsewhere"),
    pytest.param("pause", {"gc_ttl_seconds": 0}, "positive integer", id="gc-ttl-zero"),
    pytest.param("status", {"dry_run": True}, "only applies", id="dry-run-elsewhere"),
    pytest.param("pause", {"storage_uri": "s3://b/log"}, "takes no storage_uri", id="storage-for-pd-command"),
    pytest.param("start", {"task_name": "bad name"}, "invalid", id="task-name-space"),
    pytest.param("start", {"task_name": "x;rm -rf /"}, "invalid", id="task-name-shell"),
    pytest.param("explode", {}, "not a BR log subcommand", id="bad-sub"),
]  # fmt: skip


@pytest.mark.parametrize(("sub", "kwargs", "match"), LOG_ERRORS)
def test_log_argv_refuses(sub: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BRRequestError, match=match):
        log_argv(PLAIN, sub, **kwargs)


def test_log_start_without_a_configured_task_name() -> None:
    bare = cluster(log_backup={"enabled": False, "task_name": None})
    with pytest.raises(BRRequestError, match="no log backup task name"):
        log_argv(bare, "start")


# ----------------------------------------------------------------------------- env, paths, secrets


def test_br_env_carries_credentials() -> None:
    assert br_env("AK", "SK") == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    assert br_env("AK", "SK", "TOK")["AWS_SESSION_TOKEN"] == "TOK"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param(("", "SK"), "AWS_ACCESS_KEY_ID is empty", id="no-access-key"),
        pytest.param(("AK", " "), "AWS_SECRET_ACCESS_KEY is empty", id="blank-secret"),
        pytest.param(("AK", "SK", ""), "AWS_SESSION_TOKEN is empty", id="empty-token"),
        pytest.param(("AK", "S\nK"), "control character", id="newline-secret"),
    ],
)
def test_br_env_refuses(args: tuple[str, ...], match: str) -> None:
    with pytest.raises(BRRequestError, match=match) as info:
        br_env(*args)
    assert "S\nK" not in str(info.value)


def test_redact_argv_is_shell_quoted_and_masked() -> None:
    argv = ["br", "backup", "full", "--storage", "s3://b/p?access-key=A&secret-access-key=S", "--crypter.key", "00ff",
            "--log.crypter.key=11ee", "-f", "`my db`.*"]  # fmt: skip
    shown = redact_argv(argv)
    assert "00ff" not in shown and "11ee" not in shown and "=S" not in shown and "=A&" not in shown
    assert shlex.split(shown) == [
        "br", "backup", "full", "--storage", "s3://b/p?access-key=***&secret-access-key=***", "--crypter.key", "***",
        "--log.crypter.key=***", "-f", "`my db`.*",
    ]  # fmt: skip
    assert "hunter2" not in redact_argv(["br", "--x", "hunter2"], ["hunter2"])


# ------------------------------------------------------------------------------------------- times


TZ8 = timezone(timedelta(hours=8))
EXPECT_0142 = tso.from_datetime(datetime(2018, 5, 11, 1, 42, 23, tzinfo=TZ8))

TS_CASES = [
    pytest.param("435844546560000000", True, 435844546560000000, id="tso"),
    pytest.param(" 435844546560000000 ", True, 435844546560000000, id="tso-padded"),
    pytest.param("18446744073709551615", True, (1 << 64) - 1, id="tso-max"),
    pytest.param("2018-05-11 01:42:23+0800", True, EXPECT_0142, id="br-example"),
    pytest.param("2018-05-11 01:42:23+08:00", True, EXPECT_0142, id="colon-offset"),
    pytest.param("2018-05-11 01:42:23 +08:00", True, EXPECT_0142, id="space-offset"),
    pytest.param("2018-05-11 01:42:23+08", True, EXPECT_0142, id="hour-offset"),
    pytest.param("2018-05-10 17:42:23Z", True, EXPECT_0142, id="zulu"),
    pytest.param("2018-05-10T17:42:23Z", True, EXPECT_0142, id="iso-t"),
    pytest.param("2018-05-10 12:42:23-0500", True, EXPECT_0142, id="negative-offset"),
    pytest.param("2022-09-08 13:30:00 +08:00", True, 435844546560000000, id="docs-pitr-example"),
    pytest.param("2018-05-10 17:42:23.5Z", True, EXPECT_0142 + (500 << 18), id="fraction"),
    pytest.param("2018-05-10 17:42:23", False, EXPECT_0142, id="no-zone-local-utc"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "require_tz", "expected"), TS_CASES)
def test_parse_ts(text: str, require_tz: bool, expected: int) -> None:
    assert parse_ts(text, require_tz, local_tz=UTC) == expected


def test_parse_ts_without_zone_uses_the_local_zone_given() -> None:
    assert parse_ts("2018-05-11 01:42:23", False, local_tz=TZ8) == EXPECT_0142


def test_parse_ts_needs_a_zone_with_brs_exact_text() -> None:
    with pytest.raises(InvalidTimestampError) as info:
        parse_ts("2018-05-11 01:42:23", True)
    assert (
        str(info.value)
        == BR_TZ_REQUIRED
        == ("must set timezone when using datetime format ts, e.g. '2018-05-11 01:42:23+0800'")
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("", "empty time", id="empty"),
        pytest.param("yesterday", "neither a TSO nor a datetime", id="word"),
        pytest.param("18446744073709551616", "larger than 2\\^64-1", id="tso-overflow"),
        pytest.param("9" * 5000, "larger than 2\\^64-1", id="huge-digits"),
        pytest.param("2018-13-11 01:42:23+0800", "not a valid datetime", id="month-13"),
        pytest.param("2018-05-11 01:42:23+2500", "not a valid datetime", id="offset-25h"),
        pytest.param("2018-05-11 01:42:23+0800 trailing", "neither", id="trailing-junk"),
        pytest.param("1969-12-31 23:59:59Z", "not a valid datetime", id="before-epoch"),
        pytest.param("-5", "neither", id="negative"),
    ],
)
def test_parse_ts_refuses(text: str, match: str) -> None:
    with pytest.raises(InvalidTimestampError, match=match):
        parse_ts(text, True)
