"""The slow-log parser: every line kind of the reference, framing edge cases, both code paths agreeing."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tidbops.slowlog import parser as P
from tidbops.slowlog.errors import SlowLogFileError, SlowLogParseError
from tidbops.slowlog.parser import (
    ROW_FIELDS,
    ParseStats,
    SlowQueryEntry,
    find_slow_log_files,
    iter_entries,
    iter_raw_entries,
    iter_row_batches,
    parse_entry,
    parse_raw_entry,
    parse_slow_log_time,
    split_byte_ranges,
    split_pairs,
    split_user_host,
)
from tidbops_playground.slowlog_gen import GenerationResult

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("scanner")]  # both row scanners

DIGEST_SELECT = "50a2e32d2abbd6c1764b1b7f2058d428ef2712b029282b776beb9506a365c0f1"
DIGEST_COMMIT = "0611cc2fe792f8c146cc97d39b31d9562014cf15f8d41f23a4938ca341f54182"
PLAN_SELECT = "6afbbd21f60ca6c6fdf3d3cd94f7c7a49dd93c00fcf8774646da492e50e204ee"
DIGEST_V3 = "3635413fe0c8e1aa8307f4f018fe1a9325ea0b97452500106d3f6783fcb65e33"
D1 = hashlib.sha256(b"d1").hexdigest()  # what TiDB writes: 64 lower-case hex characters
P1 = hashlib.sha256(b"p1").hexdigest()


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def entries_of(data: str | bytes, **kwargs: object) -> tuple[list[SlowQueryEntry], ParseStats]:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    stats = ParseStats()
    return list(iter_entries(io.BytesIO(raw), stats=stats, **kwargs)), stats  # type: ignore[arg-type]


def general(text: str | bytes) -> SlowQueryEntry:
    """The general (line-by-line) parser's answer for one entry."""
    raw = parse_raw_entry(text)
    assert raw is not None and raw.complete
    return P.typed_entry(raw)


def fast(text: str | bytes) -> SlowQueryEntry | None:
    """The compiled expression's answer, or None when it leaves the entry to the general parser."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    rows = P.ENTRY_RE.findall(data)
    assert len(rows) == 1
    return P.entry_from_row(rows[0]) if rows[0][ROW_FIELDS["date"]] else None


# ------------------------------------------------------------------------------------ reference entries
def test_reference_select_every_field(reference_select: str) -> None:
    entry = parse_entry(reference_select)
    assert entry == SlowQueryEntry(
        time=pytest.approx(epoch("2024-05-20T02:00:01.123456789+08:00"), abs=1e-6),  # type: ignore[arg-type]
        day="2024-05-20",
        utc_offset=8 * 3600,
        query_time=1.527627037,
        digest=DIGEST_SELECT,
        plan_digest=PLAN_SELECT,
        db="shop",
        user="app",
        host="10.0.1.15",
        sql="SELECT id, status FROM orders WHERE created_at > '2024-05-19 00:00:00' ORDER BY created_at LIMIT 250;",
        process_time=2.07,
        wait_time=0.003,
        backoff_time=0.0,
        process_keys=1310720,
        total_keys=1310733,
        result_rows=250,
        mem_max=525211,
        is_internal=False,
        succ=True,
        use_db="shop",
        sql_truncated_from=None,
    )
    assert entry is not None and entry.start_time == pytest.approx(entry.time - 1.527627037)


def test_reference_commit_takes_its_sql_not_prev_stmt(reference_commit: str) -> None:
    entry = parse_entry(reference_commit)
    assert entry is not None
    assert (entry.sql, entry.digest, entry.plan_digest, entry.query_time) == ("COMMIT;", DIGEST_COMMIT, "", 0.812)
    assert (entry.process_time, entry.process_keys, entry.mem_max, entry.use_db) == (0.0, 0, 0, "")
    raw = parse_raw_entry(reference_commit)
    assert raw is not None
    assert raw.fields["Prev_stmt"] == "UPDATE orders SET status=? WHERE id=? [arguments: (3, 1001)];"
    assert raw.fields["Prewrite_time"] == "0.6" and raw.fields["Write_size"] == "120"
    assert raw.fields["Resource_group"] == "rg_oltp"


def test_v3_entry_old_time_old_user_and_older_key_order(v3_select: str) -> None:
    entry = parse_entry(v3_select)
    assert entry is not None
    assert entry.time == pytest.approx(epoch("2019-03-18T12:10:19.513961+08:00"), abs=1e-6)
    assert (entry.day, entry.utc_offset) == ("2019-03-18", 8 * 3600)
    assert (entry.user, entry.host) == ("root", "127.0.0.1")
    assert (entry.process_keys, entry.total_keys, entry.process_time) == (20000, 20002, 5.634)
    assert fast(v3_select) is None  # not TiDB's current shape: the general parser decides


@pytest.mark.parametrize("fixture", ["reference_select", "reference_commit"], ids=["select", "commit"])
def test_reference_entries_both_paths_agree(request: pytest.FixtureRequest, fixture: str) -> None:
    text = request.getfixturevalue(fixture)
    assert fast(text) is not None
    assert fast(text) == general(text)


def test_reference_entries_as_one_file(reference_select: str, reference_commit: str, v3_select: str) -> None:
    entries, stats = entries_of(reference_select + reference_commit + v3_select)
    assert [e.digest for e in entries] == [DIGEST_SELECT, DIGEST_COMMIT, DIGEST_V3]
    assert (stats.entries, stats.fast_path, stats.incomplete, stats.malformed) == (3, 2, 0, 0)


# ------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-20T02:00:01.123456789+08:00", "2024-05-20T02:00:01.123457+08:00"),
        ("2024-05-20T02:00:01.5+08:00", "2024-05-20T02:00:01.500000+08:00"),
        ("2024-05-20T02:00:01+08:00", "2024-05-20T02:00:01+08:00"),
        ("2024-05-20T02:00:01.000001Z", "2024-05-20T02:00:01.000001+00:00"),
        ("2024-05-19T18:00:01.25-05:30", "2024-05-19T18:00:01.250000-05:30"),
        ("2019-03-18-12:10:19.513961 +0800", "2019-03-18T12:10:19.513961+08:00"),
        ("2019-03-18-12:10:19 -0130", "2019-03-18T12:10:19-01:30"),
    ],
    ids=["nano", "one-digit-fraction", "no-fraction", "utc-z", "negative-offset", "old-format", "old-no-fraction"],
)
def test_parse_time(text: str, expected: str) -> None:
    assert parse_slow_log_time(text) == pytest.approx(epoch(expected), abs=1e-6)
    assert parse_slow_log_time(text.encode()) == parse_slow_log_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-20 02:00:01Z",
        "2024-13-20T02:00:01Z",
        "2024-02-30T02:00:01Z",
        "2024-05-20T24:00:01Z",
        "2024-05-20T02:60:01Z",
        "2024-05-20T02:00:61Z",
        "2024-05-20T02:00:01+0800",
        "2024-05-20T02:00:01.x+08:00",
        "yesterday at noon, roughly",
        "",
    ],
    ids=["space", "month-13", "feb-30", "hour-24", "minute-60", "second-61", "offset-no-colon", "bad-fraction",
         "words", "empty"],
)  # fmt: skip
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_slow_log_time(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("app[app] @ 10.0.1.15 [10.0.1.15]", ("app", "10.0.1.15")),
        ("root[root] @ localhost [127.0.0.1]", ("root", "localhost")),
        ("[] @  []", ("", "")),
        ("root@127.0.0.1", ("root", "127.0.0.1")),
        ("a@b@c", ("a@b", "c")),
        ("bob", ("bob", "")),
    ],
    ids=["user-at-host", "hostname", "empty", "v3-user", "at-in-user", "bare"],
)
def test_split_user_host(value: str, expected: tuple[str, str]) -> None:
    assert split_user_host(value) == expected


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("Cop_time: 1.4 Process_time: 2.07", [("Cop_time", "1.4"), ("Process_time", "2.07")]),
        (
            "Prewrite_time: 0.6 Prewrite_Backoff_types: [tikvRPC regionMiss] Write_keys: 2",
            [("Prewrite_time", "0.6"), ("Prewrite_Backoff_types", "[tikvRPC regionMiss]"), ("Write_keys", "2")],
        ),
        (
            "Slowest_prewrite_rpc_detail: {total:0.012s, region_id: 2, scan_detail: {a: 1}} Write_keys: 3",
            [("Slowest_prewrite_rpc_detail", "{total:0.012s, region_id: 2, scan_detail: {a: 1}}"), ("Write_keys", "3")],
        ),
        ("Cop_proc_addr: 10.0.2.21:20160", [("Cop_proc_addr", "10.0.2.21:20160")]),
        ("Session_alias: my alias", [("Session_alias", "my alias")]),
        ("Foo: x: Bar: 1", [("Foo", "x:"), ("Bar", "1")]),
        ("no pairs here", []),
    ],
    ids=["simple", "list-with-spaces", "nested-object", "colon-in-value", "space-in-value", "value-like-key",
         "none"],
)  # fmt: skip
def test_split_pairs(text: str, pairs: list[tuple[str, str]]) -> None:
    assert split_pairs(text) == pairs


@pytest.mark.parametrize(
    ("line", "pairs"),
    [
        (
            'Warnings: [{"Level":"Warning","Message":"Truncated incorrect DOUBLE value: \'abc\'"}]',
            [("Warnings", '[{"Level":"Warning","Message":"Truncated incorrect DOUBLE value: \'abc\'"}]')],
        ),
        ("Prev_stmt: UPDATE t SET a=? [arguments: (1)];", [("Prev_stmt", "UPDATE t SET a=? [arguments: (1)];")]),
        ("User@Host: app[app] @ h [h]", [("User@Host", "app[app] @ h [h]")]),
        ("DB: my db", [("DB", "my db")]),
        ("Rewrite_time: 0.1 Preproc_subqueries: 1 Preproc_subqueries_time: 0.2",
         [("Rewrite_time", "0.1"), ("Preproc_subqueries", "1"), ("Preproc_subqueries_time", "0.2")]),
        ("Newer_field: 12", [("Newer_field", "12")]),
        ("Empty:", [("Empty", "")]),
        ("just a comment", []),
    ],
    ids=["warnings-json", "prev-stmt", "user-at-host", "db-with-space", "rewrite-multi-pair", "unknown-key",
         "empty-value", "comment"],
)  # fmt: skip
def test_parse_header_line(line: str, pairs: list[tuple[str, str]]) -> None:
    assert P.parse_header_line(line) == pairs


# ---------------------------------------------------------------------------------- edge-case entries
def _entry(
    *,
    time: str = "2026-11-01T10:00:00.5Z",
    header: str = "",
    body: str = "use shop;\nSELECT 1;\n",
    exec_line: str = "# Cop_time: 0.1 Process_time: 0.2 Wait_time: 0.3 Request_count: 1 Process_keys: 4 Total_keys: 5\n",
) -> str:
    return (
        f"# Time: {time}\n# Txn_start_ts: 1\n# User@Host: u[u] @ h [h]\n# Conn_ID: 7\n# Query_time: 1.25\n"
        f"# Parse_time: 0\n{exec_line}# DB: shop\n# Is_internal: false\n# Digest: {D1}\n{header}"
        f"# Mem_max: 100\n# Result_rows: 3\n# Succ: true\n# Plan: tidb_decode_plan('abc')\n# Plan_digest: {P1}\n"
        f"{body}"
    )


EDGE_CASES: list[tuple[str, str, dict[str, object]]] = [
    ("plain", _entry(), {"sql": "SELECT 1;", "use_db": "shop", "process_time": 0.2, "total_keys": 5}),
    ("no-use-line", _entry(body="SELECT 1;\n"), {"use_db": "", "sql": "SELECT 1;"}),
    ("use-is-the-statement", _entry(body="use shop;\n"), {"use_db": "", "sql": "use shop;"}),
    ("no-final-newline", _entry(body="SELECT 1;"), {"sql": "SELECT 1;"}),
    ("multi-line-sql", _entry(body="SELECT a,\n  b\nFROM t\nWHERE c = 1;\n"),
     {"sql": "SELECT a,\n  b\nFROM t\nWHERE c = 1;", "use_db": ""}),
    ("use-then-multi-line", _entry(body="use crm;\nSELECT a\nFROM t;\n"), {"sql": "SELECT a\nFROM t;", "use_db": "crm"}),
    ("truncated-marker", _entry(body="INSERT INTO t VALUES (1),(2(len:9000);\n"),
     {"sql_truncated_from": 9000, "sql": "INSERT INTO t VALUES (1),(2(len:9000);"}),
    ("parenthesis-is-not-marker", _entry(body="SELECT f(1);\n"), {"sql_truncated_from": None}),
    ("prepared-arguments", _entry(body="SELECT * FROM t WHERE id = ? [arguments: (42)];\n"),
     {"sql": "SELECT * FROM t WHERE id = ? [arguments: (42)];"}),
    ("unknown-lines", _entry(header="# Newer_field: 1\n# Foo: a b Bar: 2\n# just text\n"), {"mem_max": 100}),
    ("warnings-json",
     _entry().replace("# Result_rows: 3\n", '# Result_rows: 3\n# Warnings: [{"Level":"Warning","Message":"x: y"}]\n'),
     {"result_rows": 3, "succ": True}),
    ("warnings-json-out-of-place", _entry(header='# Warnings: [{"Level":"Warning","Message":"x: y"}]\n'),
     {"result_rows": 3}),
    ("backoff-types-with-spaces",
     _entry(exec_line="# Prewrite_time: 0.6 Commit_backoff_time: 0.1 Prewrite_Backoff_types: [tikvRPC regionMiss] "
                      "Commit_Backoff_types: [regionMiss] Write_keys: 2 Write_size: 120 Prewrite_region: 1\n"),
     {"process_time": 0.0, "process_keys": 0}),
    ("rpc-detail-object",
     _entry(exec_line="# Prewrite_time: 0.6 Slowest_prewrite_rpc_detail: {total:0.012s, region_id: 2, "
                      "scan_detail: {get_snapshot_time: 1ms}} Write_keys: 2 Process_keys: 9\n"),
     {"process_keys": 9}),
    ("older-key-order", _entry(exec_line="# Process_time: 5.6 Wait_time: 0.002 Request_count: 2 Total_keys: 20002 "
                                         "Process_keys: 20000\n"),
     {"process_keys": 20000, "total_keys": 20002, "process_time": 5.6}),
    ("backoff-time", _entry(exec_line="# Cop_time: 1 Process_time: 2 Wait_time: 0.5 Backoff_time: 0.25 Request_count: 3\n"),
     {"backoff_time": 0.25, "wait_time": 0.5, "process_keys": 0}),
    ("no-exec-line", _entry(exec_line=""), {"process_time": 0.0, "total_keys": 0}),
    ("every-exec-item",
     _entry(exec_line="# Cop_time: 1.5 Process_time: 2.5 Wait_time: 0.5 Backoff_time: 0.25 LockKeys_time: 0.1 "
                      "Request_count: 3 Prewrite_time: 0.2 Wait_prewrite_binlog_time: 0.01 Commit_time: 0.1 "
                      "Get_commit_ts_time: 0.001 Get_latest_ts_time: 0.002 Commit_backoff_time: 0.01 "
                      "Prewrite_Backoff_types: [tikvRPC regionMiss] Commit_Backoff_types: [txnLock] "
                      "Slowest_prewrite_rpc_detail: {total:0.012s, region_id: 2} Commit_primary_rpc_detail: "
                      "{total:0.001s} Resolve_lock_time: 0.003 Local_latch_wait_time: 0.004 Write_keys: 5 "
                      "Write_size: 300 Prewrite_region: 2 Txn_retry: 1 Process_keys: 77 Total_keys: 88 "
                      "Get_snapshot_time: 0.001 Rocksdb_delete_skipped_count: 1 Rocksdb_key_skipped_count: 2 "
                      "Rocksdb_block_cache_hit_count: 3 Rocksdb_block_read_count: 4 Rocksdb_block_read_byte: 5 "
                      "Rocksdb_block_read_time: 0.006\n"),
     {"process_time": 2.5, "wait_time": 0.5, "backoff_time": 0.25, "process_keys": 77, "total_keys": 88}),
    ("multi-line-plan-last",
     _entry(body="use shop;\nSELECT 1;\n").replace(f"# Plan_digest: {P1}\n", "").replace(
         "# Plan: tidb_decode_plan('abc')\n", "# Plan: tidb_decode_plan('abc\ndef')\n"),
     {"plan_digest": "", "sql": "SELECT 1;", "use_db": "shop"}),
    ("multi-line-plan-middle",
     _entry().replace("# Plan: tidb_decode_plan('abc')\n", "# Plan: tidb_decode_plan('abc\ndef\n')\n"),
     {"plan_digest": P1, "sql": "SELECT 1;"}),
    ("zulu-and-no-fraction", _entry(time="2026-11-01T10:00:00Z"), {"day": "2026-11-01", "utc_offset": 0}),
    ("leap-day", _entry(time="2028-02-29T10:00:00Z"), {"day": "2028-02-29"}),
    ("leap-day-2000", _entry(time="2000-02-29T23:59:59.999999999-23:59"), {"day": "2000-02-29", "utc_offset": -86340}),
    ("a-year-is-the-longest", _entry().replace("# Query_time: 1.25", "# Query_time: 31622400"),
     {"query_time": 31622400.0}),
    ("exponent-query-time", _entry().replace("# Query_time: 1.25", "# Query_time: 1.5e-3"), {"query_time": 0.0015}),
    ("biggest-integers", _entry(exec_line="# Process_keys: 999999999999999999 Total_keys: 5\n").replace(
        "# Mem_max: 100", "# Mem_max: 999999999999999999"),
     {"process_keys": 999999999999999999, "mem_max": 999999999999999999}),
    ("offset-crosses-midnight", _entry(time="2026-11-02T01:00:00+08:00"), {"day": "2026-11-02", "utc_offset": 28800}),
    ("failed-statement", _entry().replace("# Succ: true", "# Succ: false"), {"succ": False}),
    ("internal-without-user",
     _entry().replace("# User@Host: u[u] @ h [h]\n", "").replace("# Is_internal: false", "# Is_internal: true"),
     {"user": "", "host": "", "is_internal": True}),
    ("out-of-order-header",
     _entry().replace(f"# Digest: {D1}\n", "").replace("# Query_time: 1.25\n", f"# Digest: {D1}\n# Query_time: 1.25\n"),
     {"digest": D1, "query_time": 1.25}),
    ("duplicate-key-first-wins", _entry(header="# Mem_max: 999\n"), {"mem_max": 999}),
    ("db-with-space", _entry().replace("# DB: shop", "# DB: my db"), {"db": "my db"}),
    ("non-utf8-sql", _entry(body="SELECT 'caf\udce9' /* \udcff */;\n"), {"sql": "SELECT 'caf\ufffd' /* \ufffd */;"}),
    ("non-utf8-db", _entry().replace("# DB: shop", "# DB: sh\udcffp"), {"db": "sh\ufffdp"}),
    ("many-fraction-digits-query-time", _entry().replace("# Query_time: 1.25", "# Query_time: 1.2500000001"),
     {"query_time": 1.2500000001}),
]  # fmt: skip


# Entries in TiDB's current shape are captured by the compiled expression; the others go to the general
# parser (which the expression must never disagree with).
GENERAL_ONLY = {
    "multi-line-sql", "use-then-multi-line", "unknown-lines", "older-key-order", "multi-line-plan-last",
    "multi-line-plan-middle", "out-of-order-header", "duplicate-key-first-wins", "many-fraction-digits-query-time",
    "warnings-json-out-of-place", "a-year-is-the-longest", "exponent-query-time",
}  # fmt: skip


@pytest.mark.parametrize(("case", "text", "expected"), EDGE_CASES, ids=[i for i, _, _ in EDGE_CASES])
def test_edge_cases(case: str, text: str, expected: dict[str, object]) -> None:
    entries, stats = entries_of(text)
    assert len(entries) == 1, stats
    entry = entries[0]
    for name, value in expected.items():
        assert getattr(entry, name) == value, name
    assert entry == general(text)  # the general parser is the reference
    quick = fast(text)
    assert (quick is None) == (case in GENERAL_ONLY)
    if quick is not None:
        assert quick == entry


def test_unknown_fields_are_kept_in_raw_entries() -> None:
    raw = parse_raw_entry(_entry(header="# Newer_field: 1\n# Foo: a b Bar: 2\n"))
    assert raw is not None
    assert (raw.fields["Newer_field"], raw.fields["Foo"], raw.fields["Bar"]) == ("1", "a b", "2")


# Times TiDB never writes: negative, not finite, over a year (MAX_DURATION), or not a plain decimal.
IMPLAUSIBLE_SECONDS = ("-1", "-0.5", "1e308", "nan", "-inf", "Infinity", "31622400.5", "1_000", " 1", "0x10")


@pytest.mark.parametrize(
    ("text", "incomplete", "malformed"),
    [
        (_entry(body="use shop;\nSELECT 1"), 1, 0),
        (_entry(body=""), 1, 0),
        (_entry()[:200], 1, 0),
        ("# Time: 2026-11-01T10:00", 1, 0),
        (_entry().replace("# Query_time: 1.25\n", ""), 0, 1),
        (_entry().replace("# Query_time: 1.25", "# Query_time: fast"), 0, 1),
        (_entry().replace("# Query_time: 1.25", "# Query_time: inf"), 0, 1),
        (_entry().replace("# Mem_max: 100", "# Mem_max: lots"), 0, 1),
        (_entry(time="2026-02-30T10:00:00Z"), 0, 1),
        (_entry(time="not a time"), 0, 1),
        *[(_entry().replace("# Query_time: 1.25", f"# Query_time: {v}"), 0, 1) for v in IMPLAUSIBLE_SECONDS],
        *[(_entry(exec_line=f"# {k}: {v}\n"), 0, 1) for k in ("Process_time", "Wait_time", "Backoff_time")
          for v in ("-0.5", "1e308", "nan")],
        (_entry().replace("# Mem_max: 100", "# Mem_max: -1"), 0, 1),
        (_entry().replace("# Mem_max: 100", "# Mem_max: 1000000000000000000"), 0, 1),
        (_entry().replace("# Result_rows: 3", "# Result_rows: +3"), 0, 1),
        (_entry(exec_line="# Process_keys: 1_000 Total_keys: 5\n"), 0, 1),
        (_entry(exec_line="# Process_keys: 1000000000000000000 Total_keys: 5\n"), 0, 1),
        (_entry(time="2026-02-29T10:00:00Z"), 0, 1),
        (_entry(time="2026-04-31T10:00:00Z"), 0, 1),
        (_entry(time="2100-02-29T10:00:00Z"), 0, 1),
        (_entry(time="2026-11-01T24:00:00Z"), 0, 1),
        (_entry(time="2026-11-01T10:00:00+99:99"), 0, 1),
        (_entry(time="2026-11-01T10:00:00+24:00"), 0, 1),
        (_entry(time="9999-12-31T23:00:00-23:00"), 0, 1),
        (_entry(time="0001-01-01T00:00:00+23:00"), 0, 1),
        (_entry(time="2019-03-18-12:10:19.5 +9999"), 0, 1),
    ],
    ids=["sql-without-semicolon", "no-sql", "cut-in-header", "cut-in-time", "no-query-time", "query-time-words",
         "query-time-inf", "mem-max-words", "impossible-date", "time-words",
         *[f"query-time-{v}" for v in IMPLAUSIBLE_SECONDS],
         *[f"{k}-{v}" for k in ("process-time", "wait-time", "backoff-time") for v in ("negative", "huge", "nan")],
         "mem-max-negative", "mem-max-10e18", "result-rows-plus", "keys-underscore", "keys-10e18",
         "feb-29-not-leap", "april-31", "feb-29-2100", "hour-24", "offset-99", "offset-24", "year-9999", "year-1",
         "old-format-offset-99"],
)  # fmt: skip
def test_incomplete_and_malformed_entries_are_counted_not_yielded(
    reference_select: str, reference_commit: str, text: str, incomplete: int, malformed: int
) -> None:
    data = reference_select + text + reference_commit if incomplete == 0 else reference_select + text
    entries, stats = entries_of(data)
    assert [e.digest for e in entries] == ([DIGEST_SELECT, DIGEST_COMMIT] if incomplete == 0 else [DIGEST_SELECT])
    assert (stats.incomplete, stats.malformed) == (incomplete, malformed)
    if malformed:
        assert stats.problems and "entry at" in stats.problems[0]


HOSTILE_DIGEST = "x' RESOURCE GROUP `default"  # what a forged entry put into a guardrail statement


@pytest.mark.parametrize(
    ("old", "new", "accepted", "plan"),
    [
        (None, None, True, P1),
        (f"# Digest: {D1}", f"# Digest: {HOSTILE_DIGEST}", False, None),
        (f"# Digest: {D1}", f"# Digest: {D1.upper()}", False, None),
        (f"# Digest: {D1}", f"# Digest: {D1[:-1]}", False, None),
        (f"# Digest: {D1}", f"# Digest: {D1}0", False, None),
        (f"# Digest: {D1}", f"# Digest: {D1} ", False, None),
        (f"# Digest: {D1}", f"# Digest: {D1[:-1]}g", False, None),
        (f"# Digest: {D1}\n", "", False, None),
        (f"# Digest: {D1}", "# Digest: ", False, None),
        (f"# Plan_digest: {P1}", f"# Plan_digest: {HOSTILE_DIGEST}", False, None),
        (f"# Plan_digest: {P1}", f"# Plan_digest: {P1.upper()}", False, None),
        (f"# Plan_digest: {P1}", f"# Plan_digest: {P1[:32]}", False, None),
        (f"# Plan_digest: {P1}", "# Plan_digest: ", True, ""),
        (f"# Plan_digest: {P1}\n", "", True, ""),
    ],
    ids=["hex", "hostile", "upper-case", "63-chars", "65-chars", "trailing-space", "not-hex", "no-digest",
         "empty-digest", "hostile-plan", "upper-case-plan", "short-plan", "empty-plan", "no-plan"],
)  # fmt: skip
def test_digests_are_64_lower_case_hex_or_the_entry_is_rejected(
    reference_select: str, reference_commit: str, old: str | None, new: str | None, accepted: bool, plan: str | None
) -> None:
    """TiDB writes ``hex.EncodeToString(sha256)`` (``pkg/parser/digester.go``) for both, and omits
    ``Plan_digest`` when a statement has no plan (COMMIT, INSERT … VALUES): an absent or empty plan digest
    is no plan, anything else that is not 64 lower-case hex characters rejects the entry."""
    text = _entry() if old is None else _entry().replace(old, new or "", 1)
    entries, stats = entries_of(reference_select + text + reference_commit)
    assert [e.digest for e in entries] == [DIGEST_SELECT, *([D1] if accepted else []), DIGEST_COMMIT]
    assert stats.malformed == (0 if accepted else 1)
    if accepted:
        assert entries[1].plan_digest == plan
    else:
        assert "igest" in stats.problems[0], stats.problems


def test_strict_mode_raises_on_malformed(reference_select: str) -> None:
    bad = _entry().replace("# Query_time: 1.25", "# Query_time: fast")
    with pytest.raises(SlowLogParseError, match="Query_time: not a number"):
        entries_of(reference_select + bad, strict=True)
    _, stats = entries_of(reference_select + _entry(body="SELECT 1"), strict=True)  # a cut tail is not an error
    assert stats.incomplete == 1


def test_bytes_before_the_first_entry_are_skipped(reference_select: str) -> None:
    junk = "1;\n# Result_rows: 3\n# Succ: true\nSELECT 1;\n"  # a file that starts mid-entry (rotation)
    entries, stats = entries_of(junk + reference_select)
    assert [e.digest for e in entries] == [DIGEST_SELECT]
    assert stats.skipped_bytes == len(junk)
    entries, stats = entries_of("no entries in here at all\n")
    assert entries == [] and stats.skipped_bytes == len("no entries in here at all\n")


# ---------------------------------------------------------------------------------- files and chunks
def test_fast_path_agrees_with_the_general_parser_on_a_generated_log(generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    data = path.read_bytes()
    canonical = other = 0
    for m in P.ENTRY_RE.finditer(data):
        row = m.groups(default=b"")
        text = m.group(0)
        if row[ROW_FIELDS["date"]]:
            canonical += 1
            assert P.entry_from_row(row) == general(text), text[:200]
        else:
            other += 1
    assert canonical > 0.98 * (canonical + other)  # the generator writes a few multi-line/old-order entries
    assert other > 0


def test_generated_log_matches_the_generator_truth(generated: tuple[Path, GenerationResult]) -> None:
    path, result = generated
    stats = ParseStats()
    counts: dict[str, list[int]] = {}
    for entry in iter_entries(path, stats=stats):
        item = counts.setdefault(entry.digest, [0, 0])
        item[0] += 1
        item[1] += round(entry.query_time * 1e9)
    assert stats.entries == result.entries and stats.incomplete == 0 and stats.malformed == 0
    truth = {d: [t.count, t.query_time_ns] for d, t in result.digests.items() if t.count}
    assert counts == truth


@pytest.mark.parametrize("chunk_size", [97, 4096, 1 << 16], ids=["97B", "4KiB", "64KiB"])
def test_chunk_size_does_not_change_the_result(generated: tuple[Path, GenerationResult], chunk_size: int) -> None:
    path, _ = generated
    whole = list(iter_entries(path))
    mapped = list(iter_entries(path, chunk_size=chunk_size))
    streamed = list(iter_entries(io.BytesIO(path.read_bytes()), chunk_size=chunk_size))
    assert mapped == whole and streamed == whole


@pytest.mark.parametrize("parts", [2, 3, 7], ids=["2", "3", "7"])
def test_byte_ranges_cover_every_entry_once(
    tmp_path: Path, generated: tuple[Path, GenerationResult], parts: int
) -> None:
    path, _ = generated
    big = tmp_path / "tidb-slow.log"
    big.write_bytes(path.read_bytes() * 2)  # > 1 MiB so that it is split
    ranges = split_byte_ranges(big, parts)
    assert len(ranges) == parts
    assert ranges[0][0] == 0 and ranges[-1][1] == big.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    pieces = [e for r in ranges for e in iter_entries(big, byte_range=r)]
    assert pieces == list(iter_entries(big))


def test_small_and_gzip_files_are_one_range(tmp_path: Path, reference_select: str) -> None:
    small = tmp_path / "a.log"
    small.write_text(reference_select)
    packed = tmp_path / "b.log.gz"
    packed.write_bytes(gzip.compress(reference_select.encode() * 1000))
    assert split_byte_ranges(small, 4) == [(0, small.stat().st_size)]
    assert split_byte_ranges(packed, 4) == [(0, packed.stat().st_size)]


def test_gzip_and_rotated_siblings(generated_rotated: tuple[Path, GenerationResult]) -> None:
    directory, result = generated_rotated
    files = find_slow_log_files(directory)
    assert [f.name for f in files] == [
        "tidb-slow-2026-11-02T00-00-00.000.log.gz",
        "tidb-slow-2026-11-03T00-00-00.000.log.gz",
        "tidb-slow.log",
    ]
    stats = ParseStats()
    entries = list(iter_entries(files, stats=stats))
    assert len(entries) == result.entries == stats.entries
    assert stats.incomplete == 1  # the cut tail of the current file
    assert stats.files == 3
    assert {e.day for e in entries} == {"2026-11-01", "2026-11-02", "2026-11-03"}
    assert all(e.utc_offset == 8 * 3600 for e in entries)


def test_find_slow_log_files_ignores_other_files(tmp_path: Path) -> None:
    for name in ("tidb-slow.log", "tidb-slow-2026-11-20T00-00-00.000.log", "tidb-slow-2026-11-19T00-00-00.000.log.gz",
                 "tidb.log", "tidb-slow.log.manifest.json", "notes.txt"):  # fmt: skip
        (tmp_path / name).write_text("")
    assert [p.name for p in find_slow_log_files(tmp_path)] == [
        "tidb-slow-2026-11-19T00-00-00.000.log.gz",
        "tidb-slow-2026-11-20T00-00-00.000.log",
        "tidb-slow.log",
    ]
    assert find_slow_log_files(tmp_path / "tidb.log") == [tmp_path / "tidb.log"]
    with pytest.raises(FileNotFoundError):
        find_slow_log_files(tmp_path / "missing")


def test_an_entry_longer_than_the_chunk(tmp_path: Path, reference_select: str, reference_commit: str) -> None:
    long_sql = "SELECT '" + "x" * 50_000 + "';\n"
    text = reference_select + _entry(body=long_sql) + reference_commit
    path = tmp_path / "long.log"
    path.write_text(text)
    for source in (path, io.BytesIO(text.encode())):
        entries = list(iter_entries(source, chunk_size=1024))  # type: ignore[arg-type]
        assert [e.sql[:8] for e in entries] == ["SELECT i", "SELECT '", "COMMIT;"]
        assert len(entries[1].sql) == len(long_sql) - 1


def test_streamed_entry_over_the_cap_is_skipped(reference_select: str, reference_commit: str) -> None:
    text = reference_select + _entry(body="SELECT '" + "x" * 20_000 + "';\n") + reference_commit
    stats = ParseStats()
    entries = list(iter_entries(io.BytesIO(text.encode()), stats=stats, chunk_size=1024, max_entry_bytes=8192))
    assert [e.digest for e in entries] == [DIGEST_SELECT, DIGEST_COMMIT]
    assert stats.malformed == 1 and "larger than 8192 bytes" in stats.problems[0]


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "tidb-slow.log"
    empty.write_bytes(b"")
    assert list(iter_entries(empty)) == []
    assert list(iter_row_batches(empty)) == []


def test_raw_entries_include_incomplete_ones(reference_select: str) -> None:
    data = (reference_select + _entry(body="SELECT 1")).encode()
    raws = list(iter_raw_entries(io.BytesIO(data)))
    assert [r.complete for r in raws] == [True, False]
    assert raws[0].fields["Cop_proc_addr"] == "10.0.2.21:20160"
    assert raws[0].fields["Stats"] == "orders:449863100000000000[12000000;30000]"
    assert raws[0].time == "2024-05-20T02:00:01.123456789+08:00"


def test_parse_entry_needs_a_time_line() -> None:
    assert parse_entry("SELECT 1;") is None
    assert parse_raw_entry("SELECT 1;") is None
    assert parse_entry(_entry(body="SELECT 1")) is None  # incomplete


def test_entry_times_are_utc_epochs() -> None:
    entry = parse_entry(_entry(time="2026-11-01T10:00:00.5Z"))
    assert entry is not None
    assert datetime.fromtimestamp(entry.time, UTC).isoformat() == "2026-11-01T10:00:00.500000+00:00"


# ------------------------------------------------------------------------------------------ generator
def test_generator_is_deterministic_and_writes_every_line_kind(tmp_path: Path) -> None:
    from tidbops_playground.slowlog_gen import main

    a, b = tmp_path / "a" / "tidb-slow.log", tmp_path / "b" / "tidb-slow.log"
    for out in (a, b):
        argv = ["--out", str(out), "--entries", "2000", "--days", "2", "--start", "2026-11-01", "--seed", "5",
                "--regress-digest-on-day", "1", "--truncated-tail", "yes", "--manifest", str(out) + ".json"]  # fmt: skip
        assert main(argv) == 0
    assert a.read_bytes() == b.read_bytes()
    data = a.read_bytes()
    for marker in (b"# User@Host: ", b"\nuse ", b"(len:", b"[arguments: (", b"# Prev_stmt: ", b"Is_internal: true",
                   b"Prewrite_Backoff_types: [", b"# Warnings: [{", b"# Binary_plan: tidb_decode_binary_plan('",
                   b"# Cop_backoff_", b"# Tidb_cpu_time: "):  # fmt: skip
        assert marker in data, marker
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert not data.endswith(b";\n")  # the cut-off tail
    manifest = json.loads((tmp_path / "a" / "tidb-slow.log.json").read_text())
    assert manifest["entries"] == 2000 and manifest["regress_day"] == "2026-11-02"
    assert len(manifest["regressed_digests"]) == 3 and len(manifest["plan_changes"]) == 2


def test_generator_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tidbops_playground.slowlog_gen import main

    assert main(["--out", str(tmp_path / "x.log"), "--days", "2", "--regress-digest-on-day", "2"]) == 2
    assert "outside 0..1" in capsys.readouterr().err


# ------------------------------------------------------------------------------- where problems are
def _lines_of(text: str) -> int:
    return text.count("\n")


@pytest.mark.parametrize("chunk_size", [256, 1 << 20], ids=["small-chunks", "one-chunk"])
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_rejected_entries_are_reported_by_file_and_line(
    tmp_path: Path, reference_select: str, reference_commit: str, chunk_size: int, packed: bool
) -> None:
    bad_digest = _entry().replace(f"# Digest: {D1}", f"# Digest: {HOSTILE_DIGEST}")
    bad_time = _entry().replace("# Query_time: 1.25", "# Query_time: -1")
    parts = [reference_select, bad_digest, reference_commit * 3, bad_time, bad_digest, reference_select]
    text = "".join(parts)
    starts = [1 + _lines_of("".join(parts[:i])) for i in range(len(parts))]  # the line of each part's "# Time:"
    path = tmp_path / ("tidb-slow.log.gz" if packed else "tidb-slow.log")
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    stats = ParseStats()
    entries = list(iter_entries(path, stats=stats, chunk_size=chunk_size))
    assert len(entries) == 5 and stats.malformed == 3
    assert [p.split(": ", 1)[0] for p in stats.problems] == [f"{path}:{starts[i]}" for i in (1, 3, 4)]
    assert "Digest is not 64 lower-case hex characters" in stats.problems[0]
    assert "Query_time: not a number of seconds" in stats.problems[1]
    with pytest.raises(SlowLogParseError, match=rf"{path}:{starts[1]}: .*Digest") as raised:
        list(iter_entries(path, strict=True, chunk_size=chunk_size))
    assert (raised.value.source, raised.value.line) == (str(path), starts[1])


# ------------------------------------------------------------------------------------- broken files
@pytest.mark.parametrize(
    ("kind", "cause"),
    [("truncated", "truncated"), ("header-only", "truncated"), ("flipped", "corrupt"), ("bad-crc", "corrupt"),
     ("not-gzip", "corrupt")],
)  # fmt: skip
def test_a_broken_gzip_file_is_a_bad_file_not_an_abort(
    tmp_path: Path,
    reference_select: str,
    reference_commit: str,
    broken_gzip: Callable[[str, bytes], bytes],
    kind: str,
    cause: str,
) -> None:
    """A truncated or corrupt ``.gz`` used to end the whole parse (``Aborted.`` in the CLI, no file name):
    now it is one bad file, named with its cause, and the next file is read."""
    data = ((reference_select + reference_commit) * 200).encode()
    broken = tmp_path / "tidb-slow-2026-11-19T00-00-00.000.log.gz"
    broken.write_bytes(broken_gzip(kind, data))
    good = tmp_path / "tidb-slow.log"
    good.write_text(reference_select)
    stats = ParseStats()
    entries = list(iter_entries([broken, good], stats=stats))
    assert stats.files == 2 and stats.bad_files == 1
    assert entries[-1].digest == DIGEST_SELECT
    problem = stats.problems[-1]
    assert problem.startswith(f"{broken}: {cause} gzip file") and "\n" not in problem, problem
    if kind == "truncated":  # what was decompressed before the cut is read; the cut entry is incomplete
        assert 0 < len(entries) - 1 < 400 and stats.incomplete == 1
    with pytest.raises(SlowLogFileError, match=f"{cause} gzip file") as raised:
        list(iter_entries([broken, good], strict=True))
    assert raised.value.source == str(broken) and raised.value.keeps_prefix == (cause == "truncated")


def test_an_unreadable_file_is_a_bad_file(tmp_path: Path, reference_select: str) -> None:
    good = tmp_path / "tidb-slow.log"
    good.write_text(reference_select)
    stats = ParseStats()
    entries = list(iter_entries([tmp_path / "gone.log", tmp_path, good], stats=stats))
    assert [e.digest for e in entries] == [DIGEST_SELECT]
    assert stats.bad_files == 2 and [p.split(": ", 1)[0] for p in stats.problems] == [
        str(tmp_path / "gone.log"),
        str(tmp_path),
    ]


def test_find_slow_log_files_takes_the_names_deployments_write(tmp_path: Path) -> None:
    """TiDB's default ``tidb-slow.log``, TiUP's ``tidb_slow_query.log`` (``run_tidb.sh``:
    ``--log-slow-query=…/tidb_slow_query.log``) and TiDB Operator's ``slowlog`` (``/var/log/tidb/slowlog``),
    with lumberjack's rotated names (``<name>-<local time>.<ext>``, ``.gz`` when compressed)."""
    wanted = [
        "tidb-slow-2026-11-18T00-00-00.000.log.gz", "tidb-slow-2026-11-19T00-00-00.000.log", "tidb-slow.log",
        "tidb_slow_query-2026-11-18T10-00-00.000.log.gz", "tidb_slow_query-2026-11-19T10-00-00.123.log",
        "tidb_slow_query.log",
        "slowlog-2026-11-18T00-00-00.000.gz", "slowlog-2026-11-19T00-00-00.000", "slowlog",
    ]  # fmt: skip
    ignored = ["tidb.log", "tidb-2026-11-19T00-00-00.000.log", "tidb_stderr.log", "tidb-slow.log.manifest.json",
               "slowlog.txt", "notes.txt", "tidb-slow-foo.log", "tidb_slow_query.log.swp", "slowlog-old",
               "tidb_slow_query-2026-11-19T10-00-00.000", "slowlog-2026-11-19T00-00-00.000.log"]  # fmt: skip
    for name in wanted + ignored:
        (tmp_path / name).write_text("")
    (tmp_path / "tidb-slow-2026-11-20T00-00-00.000.log").mkdir()  # not a file
    assert [p.name for p in find_slow_log_files(tmp_path)] == wanted
    for name in ("tidb_slow_query.log", "slowlog", "notes.txt"):
        assert find_slow_log_files(tmp_path / name) == [tmp_path / name]  # a file is taken as it is


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_log_saved_with_a_bom_or_crlf_line_ends_is_read(
    tmp_path: Path, reference_select: str, reference_commit: str, packed: bool
) -> None:
    """TiDB writes neither, but a log copied through an editor or a Windows share may carry both."""
    text = ("\ufeff" + reference_select + reference_commit).replace("\n", "\r\n").encode()
    path = tmp_path / ("tidb-slow.log.gz" if packed else "tidb-slow.log")
    path.write_bytes(gzip.compress(text) if packed else text)
    stats = ParseStats()
    entries = list(iter_entries(path, stats=stats))
    assert [e.digest for e in entries] == [DIGEST_SELECT, DIGEST_COMMIT], stats
    assert entries[0] == parse_entry(reference_select) and entries[1].sql == "COMMIT;"
    assert (stats.skipped_bytes, stats.malformed, stats.incomplete) == (3, 0, 0)
