"""Pure-function tests of the br emulator: TSO and time formatting, the table filter, pflag/cobra parsing,
pingcap/log line formatting, the summary collector, the crypter, the data container and the fault API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tidbops_playground import faults
from tidbops_playground.br import codec, crypter, filter, flags, output, tso
from tidbops_playground.br.errors import BRError, CobraError

pytestmark = [pytest.mark.playground, pytest.mark.unit]


# --------------------------------------------------------------------------- TSO


def test_tso_compose_and_reference_examples() -> None:
    assert tso.physical(435844546560000000) == 1662615000000
    assert tso.logical(435844546560000000) == 0
    assert tso.compose(1662615000000, 7) == 435844546560000007
    os.environ["TZ"] = "Asia/Shanghai"
    import time

    time.tzset()
    try:
        assert tso.format_date(999999999999999999) == "2090-11-18 22:07:45.624 +0800"
        assert tso.format_date(435844546560000000) == "2022-09-08 13:30:00 +0800"
        assert tso.go_time_string(999999999999999999) == "2090-11-18 22:07:45.624 +0800 CST"
        assert tso.parse_ts_string("2022-09-08 13:30:00", tz_check=False) == 435844546560000000
    finally:
        os.environ["TZ"] = "UTC"
        time.tzset()


def test_commit_ts_and_read_point_are_consistent() -> None:
    us = 1_700_000_000_123_456
    commit = tso.us_to_commit_ts(us)
    assert tso.ts_to_read_us(commit) == us
    assert tso.ts_to_read_us(commit - 1) < us  # a read just before does not see the version
    assert tso.ts_to_read_us(tso.compose(us // 1000, 5000)) == (us // 1000) * 1000 + 999
    assert tso.us_to_sql(us) == "2023-11-14 22:13:20.123456"
    assert tso.sql_to_us("2023-11-14 22:13:20.123456") == us


def test_parse_ts_string() -> None:
    assert tso.parse_ts_string("", tz_check=True) == 0
    assert tso.parse_ts_string("400036290571534337", tz_check=True) == 400036290571534337
    assert tso.parse_ts_string("2018-05-11 01:42:23+0800", tz_check=True) == tso.compose(1525974143000, 0)
    assert tso.parse_ts_string("2018-05-11 01:42:23 +08:00", tz_check=True) == tso.compose(1525974143000, 0)
    assert tso.parse_ts_string("2018-05-10 17:42:23Z", tz_check=True) == tso.compose(1525974143000, 0)
    with pytest.raises(tso.TSParseError, match=r"^must set timezone when using datetime format ts, e\.g\. "):
        tso.parse_ts_string("2018-05-11 01:42:23", tz_check=True)
    with pytest.raises(tso.TSParseError, match="Incorrect timestamp value"):
        tso.parse_ts_string("yesterday", tz_check=False)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (4_715_509_333, "4.715509333s"),
        (3_597_416, "3.597416ms"),
        (93_980_000_000, "1m33.98s"),
        (3600 * 10**9, "1h0m0s"),
        (11 * 3600 * 10**9 + 31 * 60 * 10**9 + 29 * 10**9, "11h31m29s"),
        (950_000, "950µs"),
        (12, "12ns"),
        (-5 * 10**9, "-5s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert tso.go_duration(ns) == text


def test_parse_go_duration() -> None:
    assert tso.parse_go_duration("10m0s") == 600 * 10**9
    assert tso.parse_go_duration("1h30m") == 5400 * 10**9
    assert tso.parse_go_duration("1.5s") == 1_500_000_000
    with pytest.raises(ValueError, match='time: invalid duration "abc"'):
        tso.parse_go_duration("abc")
    with pytest.raises(ValueError, match='time: missing unit in duration "10"'):
        tso.parse_go_duration("10")


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (327, "327B"), (71330, "71.33kB"), (250000, "250kB"), (5056, "5.056kB"), (108_700_000, "108.7MB")],
)
def test_human_size(size: int, text: str) -> None:
    assert tso.human_size(size) == text


def test_mysql_tidb_time_format() -> None:
    assert tso.tidb_gc_time(435844546560000000).startswith("20220908-05:30:00.000 ")
    import re

    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}(Z|[+-]\d{4})", tso.log_file_timestamp())


# --------------------------------------------------------------------------- table filter


def test_filter_semantics() -> None:
    f = filter.parse(["*.*", "!mysql.*", "db1.t?", "!db1.t2"])
    assert f.match_table("db1", "t1")
    assert not f.match_table("db1", "t2")
    assert not f.match_table("mysql", "user")
    assert f.match_table("DB1", "T1")  # case-insensitive by default
    assert not filter.parse(["db1.t1"], case_sensitive=True).match_table("DB1", "t1")
    assert filter.parse(["db[0-9].x", "!db[!0-9].*"]).match_table("db7", "x")
    assert not filter.parse(["!a.*"]).match_table("a", "b")  # no positive rule: nothing selected
    assert filter.parse(["`db.with.dots`.`t*`"]).match_table("db.with.dots", "t*")
    assert not filter.parse(["`db.with.dots`.`t*`"]).match_table("db.with.dots", "tx")
    assert filter.parse([r"db\.x.*"]).match_table("db.x", "anything")
    assert filter.parse(["/^log_\\d+$/.*"]).match_table("log_12", "t")
    assert f.match_schema("db1")
    assert not f.match_schema("mysql")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("db1", "at <cmdline>:1: wrong table pattern"),
        ("db1,t1", "at <cmdline>:1: unexpected special character ','"),
        ("db1.t1.x", "at <cmdline>:1: syntax error: stray characters after table pattern"),
        ("`db1.t1", "at <cmdline>:1: syntax error: incomplete quoted identifier"),
        (r"d\b.t", r"at <cmdline>:1: cannot escape a letter or number (\b), it is reserved for future extension"),
    ],
)
def test_filter_errors(rule: str, message: str) -> None:
    with pytest.raises(filter.FilterError) as exc:
        filter.parse([rule])
    assert str(exc.value) == message


# --------------------------------------------------------------------------- flags


def _parse(argv: list[str]) -> tuple[flags.Command, list[str]]:
    root = flags.build_tree()
    cmd, rest = flags.traverse(root, argv)
    return cmd, flags.parse_flags(cmd, rest)


def test_flags_forms_and_traversal() -> None:
    cmd, pos = _parse(
        [
            "--pd",
            "a:1,b:2",
            "backup",
            "-s",
            "local:///x",
            "full",
            "-f",
            "db.*",
            "-f=!db.t",
            "--checksum=false",
            "--ratelimit=10",
            "-Lwarn",
        ]
    )
    assert cmd.path == "br backup full"
    assert pos == []
    fs = cmd.flagset()
    assert fs["pd"].value == ["a:1", "b:2"]
    assert fs["storage"].value == "local:///x"
    assert fs["filter"].value == ["db.*", "!db.t"]
    assert fs["checksum"].value is False
    assert fs["ratelimit"].value == 10
    assert fs["log-level"].value == "warn"


def test_bool_flag_does_not_take_a_separate_value() -> None:
    cmd, pos = _parse(["backup", "full", "--checksum", "false"])
    assert pos == ["false"]  # cobra then fails with: unknown command "false" for "br backup full"
    assert cmd.flagset()["checksum"].value is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backup", "full", "--nope"], "unknown flag: --nope"),
        (["backup", "full", "-z"], "unknown shorthand flag: 'z' in -z"),
        (["backup", "full", "-s"], "flag needs an argument: 's' in -s"),
        (["backup", "full", "--storage"], "flag needs an argument: --storage"),
        (
            ["backup", "full", "--lastbackupts", "abc"],
            'invalid argument "abc" for "--lastbackupts" flag: strconv.ParseUint: parsing "abc": invalid syntax',
        ),
        (
            ["backup", "full", "--checksum=maybe"],
            'invalid argument "maybe" for "--checksum" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (
            ["backup", "full", "-c=x"],
            'invalid argument "x" for "-c, --send-credentials-to-tikv" flag: strconv.ParseBool: parsing "x": invalid syntax',
        ),
        (
            ["backup", "full", "--timeago", "5"],
            'invalid argument "5" for "--timeago" flag: time: missing unit in duration "5"',
        ),
    ],
)
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(CobraError) as exc:
        _parse(argv)
    assert str(exc.value) == message


def test_required_flags() -> None:
    cmd, _ = _parse(["restore", "table"])
    with pytest.raises(CobraError) as exc:
        flags.validate_required(cmd)
    assert str(exc.value) == 'required flag(s) "db", "table" not set'


# --------------------------------------------------------------------------- log lines and summary


def test_log_line_quoting() -> None:
    line = output.format_text_line(
        "info",
        "collector.go:77",
        "Full Backup success summary",
        [
            ("total-ranges", 3),
            ("backup-data-size(after-compressed)", "71.33kB"),
            ("d", output.Duration(3_597_416)),
            ("date", "2022-07-14 20:08:03.268 +0800"),
            ("err", 'a "q" [x]\n'),
            ("ok", True),
        ],
        ts="2022/09/08 13:31:02.120 +08:00",
    )
    assert line == (
        '[2022/09/08 13:31:02.120 +08:00] [INFO] [collector.go:77] ["Full Backup success summary"] [total-ranges=3] '
        '[backup-data-size(after-compressed)=71.33kB] [d=3.597416ms] [date="2022-07-14 20:08:03.268 +0800"] '
        '[err="a \\"q\\" [x]\\n"] [ok=true]'
    )
    assert output.format_text_line("warn", "x.go:1", "progress", [], ts="t") == "[t] [WARN] [x.go:1] [progress]"


def test_summary_fixed_prefix_and_fields() -> None:
    s = output.Summary()
    s.collect_success_unit("", 2, 0.1)
    s.collect_duration("backup checksum", 0.003)
    s.collect_int("backup total ranges", 2)
    s.record("BackupTS", 42)
    s.record(s.TOTAL_BYTES, 250000)
    s.record(s.BACKUP_DATA_SIZE, 71330)
    s.success = True
    msg, fields = s.fields("Full Backup")
    assert msg == "Full Backup success summary"
    assert [k for k, _ in fields[:3]] == ["total-ranges", "ranges-succeed", "ranges-failed"]
    keys = [k for k, _ in fields]
    assert keys.index("total-take") > keys.index("backup-checksum")
    values = dict(fields)
    assert values["backup-data-size(after-compressed)"] == "71.33kB"
    assert values["total-kv-size"] == "250kB"
    assert str(values["average-speed"]).endswith("/s")
    s2 = output.Summary()
    s2.collect_failure_unit("log pause", "boom")
    msg2, fields2 = s2.fields("log pause")
    assert msg2 == "log pause failed summary"
    assert dict(fields2)["unit-name"] == "log pause"
    empty = output.Summary()
    empty.record(empty.BACKUP_DATA_SIZE, 0)
    empty.success = True
    assert dict(empty.fields("Full Backup")[1])["Result"] == "Nothing to bakcup"


# --------------------------------------------------------------------------- crypter and container


def test_crypter_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(BRError) as e1:
        crypter.parse_cipher("aes512-ctr", "00", "")
    assert str(e1.value) == "invalid crypter method 'aes512-ctr': [BR:Common:ErrInvalidArgument]invalid argument"
    with pytest.raises(BRError) as e2:
        crypter.parse_cipher("aes128-ctr", "", "")
    assert str(e2.value) == (
        "exactly one of --crypter.key or --crypter.key-file should be provided: "
        "[BR:Common:ErrInvalidArgument]invalid argument"
    )
    with pytest.raises(BRError) as e3:
        crypter.parse_cipher("AES256-CTR", "00" * 16, "")
    assert str(e3.value) == "crypter method and key length not match: [BR:Common:ErrInvalidArgument]invalid argument"
    with pytest.raises(BRError, match=r"encoding/hex: invalid byte: U\+0067 'g'"):
        crypter.parse_cipher("aes128-ctr", "g" * 32, "")
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    c = crypter.parse_cipher("aes128-ctr", "", str(key_file))
    assert "0123" not in repr(c)
    blob = c.encrypt(b"hello world")
    assert blob[16:] != b"hello world" and len(blob) == 16 + 11
    assert c.decrypt(blob) == b"hello world"
    assert crypter.parse_cipher("plaintext", "", "") is crypter.PLAINTEXT


@pytest.mark.parametrize("method", ["zstd", "lz4", "snappy"])
def test_container_roundtrip(method: str) -> None:
    kinds = ["text", "binary", "bit", "float"]
    rows = [("😀 'q'\n", b"\x00\xff\x1a", "4095", "3.1415927410125732"), (None, None, None, None)]
    payload = {"columns": ["a", "b", "c", "d"], "kinds": kinds, "rows": codec.encode_rows(kinds, rows)}
    data = codec.encode_container(payload, method)
    assert data.startswith(codec.MAGIC)
    back = codec.decode_container(data)
    assert [tuple(r) for r in codec.decode_rows(kinds, back["rows"])] == rows
    with pytest.raises(BRError, match="invalid compression type 'gzip'"):
        codec.parse_compression("gzip")


# --------------------------------------------------------------------------- faults API


def test_faults_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    faults.set_fault(tmp_path, "src", "backup_slow", seconds=2)
    faults.set_fault(tmp_path, "dst", "gc_safepoint", ts=123)
    assert faults.load_faults(tmp_path) == {
        "src": {"backup_slow": {"seconds": 2}},
        "dst": {"gc_safepoint": {"ts": 123}},
    }
    monkeypatch.setenv(faults.ENV_VAR, json.dumps({"src": {"backup_slow": {"seconds": 9}, "backup_hang": {}}}))
    assert faults.faults_for(tmp_path, "src") == {"backup_slow": {"seconds": 9}, "backup_hang": {}}
    monkeypatch.delenv(faults.ENV_VAR)
    faults.clear_faults(tmp_path, "src")
    assert faults.load_faults(tmp_path) == {"dst": {"gc_safepoint": {"ts": 123}}}
    faults.clear_faults(tmp_path)
    assert faults.load_faults(tmp_path) == {}
    with pytest.raises(faults.FaultError, match="unknown fault"):
        faults.set_fault(tmp_path, "src", "disk_on_fire")
    with pytest.raises(faults.FaultError, match="ts="):
        faults.set_fault(tmp_path, "src", "gc_safepoint")
