"""The C row scanner (``tidbops.slowlog._scan``) against the expression it stands for: identical rows.

``find_rows`` must return exactly ``ENTRY_RE.findall(buf, start, end)`` whichever scanner is in use, on
canonical entries (which the C program captures itself) and on everything else (which it hands back to
the expression). The cases below aim at every piece of the canonical shape: each line kind, each value
shape, the execution-details items, the ``use``/SQL tail and the framing (offsets, cut entries, junk).
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from datetime import UTC, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tidbops.slowlog import parser as P
from tidbops.slowlog.aggregate import DailyAggregates, aggregate_files
from tidbops.slowlog.histogram import bucket_index
from tidbops.slowlog.parser import ENTRY_RE, ROW_FIELDS, ParseStats, iter_entries
from tidbops_playground.slowlog_gen import GenerationResult

pytestmark = pytest.mark.unit

needs_c = pytest.mark.skipif(P._scan is None, reason="the C scanner tidbops.slowlog._scan is not built")


SHARED = tuple(ROW_FIELDS[name] for name in P._SHARED_FIELDS)


@pytest.fixture(scope="module")
def c_findall() -> object:
    """The scanner as the parser builds it (repeated values shared)."""
    return P._c_findall()


def same(findall: object, data: bytes, start: int = 0, end: int = sys.maxsize) -> list[P.Row]:
    """Rows of the C scanner, checked equal to the expression's."""
    rows = findall(data, start, end)  # type: ignore[operator]
    assert rows == ENTRY_RE.findall(data, start, end), (data[start:end][:3000], start, end)
    return list(rows)


def canonical(rows: list[P.Row]) -> int:
    return sum(1 for r in rows if r[ROW_FIELDS["date"]])


D1 = hashlib.sha256(b"d1").hexdigest()  # digests as TiDB writes them: 64 lower-case hex characters
P1 = hashlib.sha256(b"p1").hexdigest()
EXEC = (
    "# Cop_time: 0.1 Process_time: 0.2 Wait_time: 0.3 Backoff_time: 0.05 Request_count: 1 Process_keys: 4 "
    "Total_keys: 5 Rocksdb_key_skipped_count: 5 Rocksdb_block_cache_hit_count: 1\n"
)
BASE_LINES = [
    "# Time: 2026-11-01T10:00:00.5Z",
    "# Txn_start_ts: 1",
    "# User@Host: u[u] @ 10.0.0.1 [10.0.0.1]",
    "# Conn_ID: 7",
    "# Query_time: 1.25",
    "# Parse_time: 0",
    EXEC.rstrip("\n"),
    "# DB: shop",
    "# Is_internal: false",
    f"# Digest: {D1}",
    "# Num_cop_tasks: 1",
    "# Mem_max: 100",
    "# Result_rows: 3",
    "# Succ: true",
    "# Plan: tidb_decode_plan('abc')",
    f"# Plan_digest: {P1}",
    "# Binary_plan: tidb_decode_binary_plan('xyz')",
    "# Resource_group: default",
    "use shop;",
    "SELECT 1;",
]
BASE = "\n".join(BASE_LINES) + "\n"


def replace_line(prefix: str, new: str | None) -> str:
    """BASE with the line starting with ``prefix`` replaced (``None``: removed)."""
    lines = [(new if line.startswith(prefix) else line) for line in BASE_LINES]
    return "\n".join(line for line in lines if line is not None) + "\n"


def exec_line(text: str) -> str:
    return replace_line("# Cop_time", text)


TRICKY: dict[str, str] = {
    "base": BASE,
    "no-final-newline": BASE.rstrip("\n"),
    "no-use-line": replace_line("use ", None),
    "use-is-the-statement": replace_line("SELECT 1;", None),
    "use-without-semicolon": replace_line("use ", "use shop"),
    "use-empty": replace_line("use ", "use ;"),
    "use-with-spaces": replace_line("use ", "use  my db ;"),
    "two-use-lines": replace_line("use ", "use a;\nuse b;"),
    "multi-line-sql": replace_line("SELECT 1;", "SELECT a,\n  b\nFROM t;"),
    "sql-not-terminated": replace_line("SELECT 1;", "SELECT 1"),
    "sql-semicolon-inside": replace_line("SELECT 1;", "SELECT ';' FROM t"),
    "sql-starts-with-hash": replace_line("SELECT 1;", "# SELECT 1;"),
    "sql-is-hash": replace_line("SELECT 1;", "#;"),
    "sql-just-semicolon": replace_line("SELECT 1;", ";"),
    "sql-with-time-inside": replace_line("SELECT 1;", "SELECT '# Time: 2026-11-01T10:00:00Z';"),
    "sql-then-blank-line": BASE + "\n",
    "sql-then-text": BASE + "trailing text\n",
    "truncated-marker": replace_line("SELECT 1;", "INSERT INTO t VALUES (1),(2(len:9000);"),
    "non-utf8-sql": replace_line("SELECT 1;", "SELECT 'caf\udce9' /* \udcff */;"),
    "non-utf8-db": replace_line("# DB:", "# DB: sh\udcffp"),
    "non-utf8-user": replace_line("# User@Host", "# User@Host: \udcffu[u] @ h\udcfe [h]"),
    "non-utf8-digest": replace_line("# Digest", "# Digest: d\udcff"),
    "crlf": BASE.replace("\n", "\r\n"),
    "cr-in-sql": replace_line("SELECT 1;", "SELECT 1;\r"),
    "only-the-time-line": "# Time: 2026-11-01T10:00:00Z\n",
    "time-only-no-newline": "# Time: 2026-11-01T10:00:00Z",
    "cut-in-header": BASE[:150],
    "cut-in-time": "# Time: 2026-11-01T10:0",
    # the time line
    "time-no-fraction": replace_line("# Time", "# Time: 2026-11-01T10:00:00Z"),
    "time-nine-digits": replace_line("# Time", "# Time: 2026-11-01T10:00:00.123456789+08:00"),
    "time-ten-digits": replace_line("# Time", "# Time: 2026-11-01T10:00:00.1234567891Z"),
    "time-dot-no-digits": replace_line("# Time", "# Time: 2026-11-01T10:00:00.Z"),
    "time-negative-offset": replace_line("# Time", "# Time: 2026-11-01T10:00:00-05:30"),
    "time-bad-offset": replace_line("# Time", "# Time: 2026-11-01T10:00:00+0530"),
    "time-lowercase-z": replace_line("# Time", "# Time: 2026-11-01T10:00:00z"),
    "time-hour-29": replace_line("# Time", "# Time: 2026-11-01T29:00:00Z"),
    "time-hour-30": replace_line("# Time", "# Time: 2026-11-01T30:00:00Z"),
    "time-minute-60": replace_line("# Time", "# Time: 2026-11-01T10:60:00Z"),
    "time-impossible-date": replace_line("# Time", "# Time: 2026-02-30T10:00:00Z"),
    "time-feb-29-leap-year": replace_line("# Time", "# Time: 2028-02-29T10:00:00Z"),
    "time-feb-29-not-leap": replace_line("# Time", "# Time: 2026-02-29T10:00:00Z"),
    "time-feb-29-2000": replace_line("# Time", "# Time: 2000-02-29T10:00:00Z"),
    "time-feb-29-2100": replace_line("# Time", "# Time: 2100-02-29T10:00:00Z"),
    "time-feb-29-1600": replace_line("# Time", "# Time: 1600-02-29T10:00:00Z"),
    "time-feb-28": replace_line("# Time", "# Time: 2026-02-28T10:00:00Z"),
    "time-april-30": replace_line("# Time", "# Time: 2026-04-30T10:00:00Z"),
    "time-april-31": replace_line("# Time", "# Time: 2026-04-31T10:00:00Z"),
    "time-december-31": replace_line("# Time", "# Time: 2026-12-31T23:59:59.999999999Z"),
    "time-month-00": replace_line("# Time", "# Time: 2026-00-10T10:00:00Z"),
    "time-month-13": replace_line("# Time", "# Time: 2026-13-10T10:00:00Z"),
    "time-day-00": replace_line("# Time", "# Time: 2026-01-00T10:00:00Z"),
    "time-day-32": replace_line("# Time", "# Time: 2026-01-32T10:00:00Z"),
    "time-year-0999": replace_line("# Time", "# Time: 0999-01-10T10:00:00Z"),
    "time-year-1000": replace_line("# Time", "# Time: 1000-01-10T10:00:00Z"),
    "time-year-2999": replace_line("# Time", "# Time: 2999-12-31T10:00:00Z"),
    "time-year-3000": replace_line("# Time", "# Time: 3000-01-10T10:00:00Z"),
    "time-hour-23": replace_line("# Time", "# Time: 2026-11-01T23:00:00Z"),
    "time-hour-24": replace_line("# Time", "# Time: 2026-11-01T24:00:00Z"),
    "time-offset-23-59": replace_line("# Time", "# Time: 2026-11-01T10:00:00-23:59"),
    "time-offset-24": replace_line("# Time", "# Time: 2026-11-01T10:00:00+24:00"),
    "time-offset-minute-60": replace_line("# Time", "# Time: 2026-11-01T10:00:00+05:60"),
    "time-old-format": replace_line("# Time", "# Time: 2019-03-18-12:10:19.513961 +0800"),
    "time-trailing-space": replace_line("# Time", "# Time: 2026-11-01T10:00:00Z "),
    "time-words": replace_line("# Time", "# Time: not a time"),
    # user and host
    "no-user-host": replace_line("# User@Host", None),
    "user-host-empty-user": replace_line("# User@Host", "# User@Host: [] @  []"),
    "user-host-v3": replace_line("# User@Host", "# User: root@127.0.0.1"),
    "user-host-no-brackets": replace_line("# User@Host", "# User@Host: u @ h"),
    "user-host-trailing": replace_line("# User@Host", "# User@Host: u[u] @ h [h] x"),
    "user-host-space-in-user": replace_line("# User@Host", "# User@Host: a b[u] @ h [h]"),
    "user-host-bracket-in-host": replace_line("# User@Host", "# User@Host: u[u] @ h[x] [h]"),
    "user-host-nested-bracket": replace_line("# User@Host", "# User@Host: u[[u] @ h [[h]"),
    "user-host-two-closing": replace_line("# User@Host", "# User@Host: u[u]] @ h [h]"),
    "user-host-end-two-closing": replace_line("# User@Host", "# User@Host: u[u] @ h [h]]"),
    "user-host-ipv6": replace_line("# User@Host", "# User@Host: u[u] @ ::1 [::1]"),
    # the query time
    "query-time-missing": replace_line("# Query_time", None),
    "query-time-integer": replace_line("# Query_time", "# Query_time: 3"),
    "query-time-seven-digits": replace_line("# Query_time", "# Query_time: 1234567.1"),
    "query-time-six-digits": replace_line("# Query_time", "# Query_time: 123456.123456789"),
    "query-time-ten-decimals": replace_line("# Query_time", "# Query_time: 1.2500000001"),
    "query-time-leading-dot": replace_line("# Query_time", "# Query_time: .5"),
    "query-time-trailing-dot": replace_line("# Query_time", "# Query_time: 1."),
    "query-time-exponent": replace_line("# Query_time", "# Query_time: 1e-3"),
    "query-time-space": replace_line("# Query_time", "# Query_time: 1.5 "),
    "query-time-twice": replace_line("# Parse_time", "# Query_time: 9"),
    # the execution-details line
    "exec-missing": exec_line(None),  # type: ignore[arg-type]
    "exec-trailing-space": exec_line(EXEC.rstrip("\n") + " "),
    "exec-older-order": exec_line("# Process_time: 5.6 Wait_time: 0.002 Request_count: 2 Total_keys: 20002 "
                                  "Process_keys: 20000"),
    "exec-only-rocksdb": exec_line("# Rocksdb_key_skipped_count: 5"),
    "exec-rocksdb-uppercase": exec_line("# Process_time: 1 Rocksdb_Key: 5"),
    "exec-rocksdb-empty-name": exec_line("# Process_time: 1 Rocksdb_: 5"),
    "exec-rocksdb-no-value": exec_line("# Process_time: 1 Rocksdb_x: "),
    "exec-unknown-item": exec_line("# Process_time: 1 Mystery: 2"),
    "exec-unknown-first": exec_line("# Mystery: 2 Process_time: 1"),
    "exec-number-too-long": exec_line("# Process_time: 1234567 Wait_time: 1"),
    "exec-ten-decimals": exec_line("# Process_time: 0.1234567891 Wait_time: 1"),
    "exec-words": exec_line("# Process_time: fast Wait_time: 1"),
    "exec-double-space": exec_line("# Process_time: 1  Wait_time: 2"),
    "exec-no-space": exec_line("# Process_time: 1Wait_time: 2"),
    "exec-repeated-item": exec_line("# Process_time: 1 Process_time: 2"),
    "exec-empty-value": exec_line("# Process_time:  Wait_time: 2"),
    "exec-keys-not-int": exec_line("# Process_keys: 1.5 Total_keys: 2"),
    "exec-every-item": exec_line(
        "# Cop_time: 1.5 Process_time: 2.5 Wait_time: 0.5 Backoff_time: 0.25 LockKeys_time: 0.1 Request_count: 3 "
        "Prewrite_time: 0.2 Wait_prewrite_binlog_time: 0.01 Commit_time: 0.1 Get_commit_ts_time: 0.001 "
        "Get_latest_ts_time: 0.002 Commit_backoff_time: 0.01 Prewrite_Backoff_types: [tikvRPC regionMiss] "
        "Commit_Backoff_types: [txnLock] Slowest_prewrite_rpc_detail: {total:0.012s, region_id: 2, "
        "scan_detail: {get_snapshot_time: 1ms}} Commit_primary_rpc_detail: {total:0.001s} Resolve_lock_time: 0.003 "
        "Local_latch_wait_time: 0.004 Write_keys: 5 Write_size: 300 Prewrite_region: 2 Txn_retry: 1 "
        "Process_keys: 77 Total_keys: 88 Get_snapshot_time: 0.001 Rocksdb_delete_skipped_count: 1 "
        "Rocksdb_key_skipped_count: 2 Rocksdb_block_read_time: 0.006"
    ),
    "exec-txn-only": exec_line("# Prewrite_time: 0.6 Commit_time: 0.1 Write_keys: 2 Write_size: 120"),
    "exec-list-unclosed": exec_line("# Prewrite_time: 0.6 Prewrite_Backoff_types: [a b Write_keys: 2"),
    "exec-list-empty": exec_line("# Prewrite_time: 0.6 Prewrite_Backoff_types: [] Write_keys: 2"),
    "exec-object-deep": exec_line("# Prewrite_time: 0.6 Slowest_prewrite_rpc_detail: {a: {b: {c}}} Write_keys: 2"),
    "exec-object-unclosed": exec_line("# Prewrite_time: 0.6 Slowest_prewrite_rpc_detail: {a: {b} Write_keys: 2"),
    "exec-object-stray-close": exec_line("# Prewrite_time: 0.6 Slowest_prewrite_rpc_detail: {a}} Write_keys: 2"),
    "exec-object-empty": exec_line("# Prewrite_time: 0.6 Commit_primary_rpc_detail: {} Process_keys: 2"),
    "exec-object-nested-empty": exec_line("# Commit_primary_rpc_detail: {{}} Process_keys: 2"),
    "exec-backoff-only": exec_line("# Backoff_time: 0.25"),
    # fields
    "db-empty": replace_line("# DB:", "# DB: "),
    "db-with-space": replace_line("# DB:", "# DB: my db"),
    "db-missing": replace_line("# DB:", None),
    "internal-true": replace_line("# Is_internal", "# Is_internal: true"),
    "internal-empty": replace_line("# Is_internal", "# Is_internal: "),
    "digest-missing": replace_line("# Digest", None),
    "digest-empty": replace_line("# Digest", "# Digest: "),
    "digest-before-query-time": replace_line("# Query_time", "# Digest: d0\n# Query_time: 1.25"),
    "digest-hostile": replace_line("# Digest", "# Digest: x' RESOURCE GROUP `default"),
    "digest-upper-case": replace_line("# Digest", f"# Digest: {D1.upper()}"),
    "digest-63-chars": replace_line("# Digest", f"# Digest: {D1[:-1]}"),
    "digest-65-chars": replace_line("# Digest", f"# Digest: {D1}a"),
    "digest-not-hex": replace_line("# Digest", f"# Digest: {D1[:-1]}g"),
    "plan-digest-hostile": replace_line("# Plan_digest", "# Plan_digest: ' OR 1=1; --"),
    "plan-digest-upper-case": replace_line("# Plan_digest", f"# Plan_digest: {P1.upper()}"),
    "plan-digest-missing": replace_line("# Plan_digest", None),
    "mem-max-words": replace_line("# Mem_max", "# Mem_max: lots"),
    "mem-max-empty": replace_line("# Mem_max", "# Mem_max: "),
    "mem-max-negative": replace_line("# Mem_max", "# Mem_max: -1"),
    "mem-max-18-digits": replace_line("# Mem_max", "# Mem_max: 999999999999999999"),
    "mem-max-19-digits": replace_line("# Mem_max", "# Mem_max: 1000000000000000000"),
    "result-rows-19-digits": replace_line("# Result_rows", "# Result_rows: 1000000000000000000"),
    "exec-keys-18-digits": exec_line("# Process_keys: 999999999999999999 Total_keys: 999999999999999999"),
    "exec-keys-19-digits": exec_line("# Process_keys: 1000000000000000000 Total_keys: 5"),
    "exec-request-count-19-digits": exec_line("# Process_time: 1 Request_count: 1000000000000000000"),
    "query-time-negative": replace_line("# Query_time", "# Query_time: -1"),
    "query-time-huge": replace_line("# Query_time", "# Query_time: 1e308"),
    "exec-negative-time": exec_line("# Process_time: -0.5 Wait_time: 1"),
    "mem-max-twice": replace_line("# Mem_max", "# Mem_max: 100\n# Mem_max: 200"),
    "result-rows-float": replace_line("# Result_rows", "# Result_rows: 1.5"),
    "succ-false": replace_line("# Succ", "# Succ: false"),
    "succ-with-space": replace_line("# Succ", "# Succ: false "),
    "plan-digest-empty": replace_line("# Plan_digest", "# Plan_digest: "),
    "plan-multi-line": replace_line("# Plan:", "# Plan: tidb_decode_plan('abc\ndef')"),
    "plan-multi-line-last": replace_line("# Plan:", None).replace(
        "# Binary_plan: tidb_decode_binary_plan('xyz')", "# Binary_plan: tidb_decode_binary_plan('xy\nz')"
    ),
    "plan-unclosed": replace_line("# Plan:", "# Plan: tidb_decode_plan('abc"),
    "plan-empty-closed": replace_line("# Plan:", "# Plan: ')"),
    "plan-just-paren": replace_line("# Plan:", "# Plan: )"),
    # skipped lines and newer ones
    "cop-backoff-lines": replace_line(
        "# Num_cop_tasks",
        "# Num_cop_tasks: 1\n# Cop_backoff_regionMiss_total_times: 2 Cop_backoff_regionMiss_total_time: 0.002\n"
        "# Cop_backoff_rpcTiKV_total_times: 1",
    ),
    "unpacked-bytes-lines": replace_line(
        "# Result_rows", "# Unpacked_bytes_sent_tikv_total: 1\n# Unpacked_bytes_received_tikv_total: 2\n# Result_rows: 3"
    ),
    "warnings-json": replace_line("# Succ", '# Warnings: [{"Level":"Warning","Message":"x: y"}]\n# Succ: true'),
    "warnings-out-of-place": replace_line("# Parse_time", '# Warnings: [{"Level":"Warning"}]'),
    "unknown-lines-at-the-end": replace_line(
        "# Resource_group", "# Resource_group: default\n# Newer_field: 1\n# Foo: a b Bar: 2"
    ),
    "unknown-line-in-the-middle": replace_line("# Parse_time", "# Newer_field: 1"),
    "needed-key-at-the-end": replace_line("# Resource_group", "# Resource_group: default\n# Succ: false"),
    "rocksdb-line-at-the-end": replace_line("# Resource_group", "# Resource_group: x\n# Rocksdb_thing: 1"),
    "time-underscore-line": replace_line("# Resource_group", "# Time_queued_by_rc: 0.1"),
    "stray-text-line": replace_line("# Parse_time", "just text"),
    "hash-without-space": replace_line("# Parse_time", "#Parse_time: 1"),
    "empty-header-line": replace_line("# Parse_time", "# "),
    "blank-line-in-header": replace_line("# Parse_time", ""),
    "prev-stmt": replace_line("# Resource_group", "# Prev_stmt: UPDATE t SET a=? [arguments: (3)];"),
    "keyspace-lines": replace_line("# Txn_start_ts", "# Txn_start_ts: 1\n# Keyspace_name: ks\n# Keyspace_ID: 1"),
}  # fmt: skip


# ------------------------------------------------------------------------------------------ the build
def test_the_extension_is_built_where_a_compiler_exists() -> None:
    """``optional=True`` in setup.py hides a failed build: make it visible here."""
    compiler = str(sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the pure-Python scanner is used")
    assert P._scan is not None, "tidbops.slowlog._scan is not built: run `pip install -e .`"
    assert P.SCANNER == ("regex" if os.environ.get("TIDBOPS_SLOWLOG_PURE_PYTHON") else "c")


def test_the_environment_can_force_the_expression() -> None:
    code = "from tidbops.slowlog import parser; print(parser.SCANNER)"
    env = {**os.environ, "TIDBOPS_SLOWLOG_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "regex"


def test_set_scanner_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="scanner is"):
        P.set_scanner("fortran")


def test_the_row_fields_are_the_groups_of_the_expression() -> None:
    """ROW_FIELDS is read from the expression's text (compiling it costs more than a small log's digest)."""
    assert P.ROW_FIELDS == {name: index - 1 for name, index in ENTRY_RE.groupindex.items()}
    assert len(P.ROW_FIELDS) == ENTRY_RE.groups


def test_importing_the_parser_compiles_no_expression_for_canonical_entries(reference_select: str) -> None:
    code = (
        "import io, sys\n"
        "from tidbops.slowlog import parser as P\n"
        "assert P._entry_re_compiled is None\n"
        "entries = list(P.iter_entries(io.BytesIO(sys.stdin.buffer.read())))\n"
        "assert len(entries) == 1\n"
        "print(P.SCANNER, P._entry_re_compiled is None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=reference_select.encode(), capture_output=True, check=True, timeout=60
    )
    scanner = P.SCANNER if not os.environ.get("TIDBOPS_SLOWLOG_PURE_PYTHON") else "regex"
    assert result.stdout.decode().split() == [scanner, str(scanner == "c")]


def test_the_program_has_one_step_per_piece_of_the_shape() -> None:
    assert len(P.SCAN_PROGRAM) == len(P._SHAPE) + 2  # plus the time line and the use/SQL tail


# ------------------------------------------------------------------------------------------ the rows
@needs_c
@pytest.mark.parametrize("case", list(TRICKY))
def test_tricky_entries(c_findall: object, case: str, reference_select: str, reference_commit: str) -> None:
    text = TRICKY[case].encode("utf-8", "surrogateescape")
    ref, commit = reference_select.encode(), reference_commit.encode()
    for data in (text, ref + text, text + commit, ref + text + commit, b"junk\n" + text + commit):
        rows = same(c_findall, data)
        assert rows, case
    # typed entries (and the parse counters) are the same through both scanners
    results = []
    for kind in ("c", "regex"):
        previous = P.set_scanner(kind)
        try:
            stats = ParseStats()
            results.append((list(iter_entries(io.BytesIO(ref + text + commit), stats=stats)), stats))
        finally:
            P.set_scanner(previous)
    assert results[0] == results[1]


class Counting:
    """A fallback that records where the C program handed an entry back to the expression."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, buf: P.Buffer, pos: int, end: int) -> tuple[P.Row, int]:
        self.calls.append(pos)
        return P._regex_row(buf, pos, end)


def fallback_positions(data: bytes, start: int = 0, end: int = sys.maxsize) -> list[int]:
    """Where the expression's rows are not canonical: exactly where the program must fall back."""
    return [m.start() for m in ENTRY_RE.finditer(data, start, end) if not m.group("date")]


@needs_c
def test_the_program_takes_exactly_the_canonical_entries() -> None:
    """Not only sound (same rows) but complete: the program reads every entry the expression captures."""
    assert P._scan is not None
    counting = Counting()
    findall = P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, counting).findall
    taken = 0
    for text in TRICKY.values():
        data = text.encode("utf-8", "surrogateescape")
        counting.calls.clear()
        rows = findall(data)
        assert rows == ENTRY_RE.findall(data)
        assert counting.calls == fallback_positions(data), text
        taken += canonical(rows)
    assert taken > 45
    row = findall(BASE.encode())[0]
    fields = {name: row[i] for name, i in ROW_FIELDS.items()}
    assert fields == {
        "date": b"2026-11-01", "tod": b"10:00:00.5", "zone": b"Z", "user": b"u", "host": b"10.0.0.1",
        "query_time": b"1.25", "process_time": b"0.2", "wait_time": b"0.3", "backoff_time": b"0.05",
        "process_keys": b"4", "total_keys": b"5", "db": b"shop", "is_internal": b"false", "digest": D1.encode(),
        "mem_max": b"100", "result_rows": b"3", "succ": b"true", "plan_digest": P1.encode(), "use_db": b"shop",
        "sql": b"SELECT 1;", "other": b"",
    }  # fmt: skip


@needs_c
def test_offsets_like_findall(c_findall: object, reference_select: str, reference_commit: str) -> None:
    data = (reference_select + TRICKY["exec-every-item"] + reference_commit + TRICKY["no-final-newline"]).encode()
    n = len(data)
    for start in [*range(0, n, 97), -5, n, n + 10]:
        for end in (n, n + 100, start + 8, start + 1500, n - 1, 0, -1):
            same(c_findall, data, start, end)
    same(c_findall, data, 0)
    assert c_findall(data) == ENTRY_RE.findall(data)  # type: ignore[operator]
    for other in (bytearray(data), memoryview(data)):
        assert c_findall(other) == ENTRY_RE.findall(data)  # type: ignore[operator]
    with pytest.raises(TypeError):
        c_findall("text, not bytes")  # type: ignore[operator]


@needs_c
def test_a_mapped_file(c_findall: object, tmp_path: Path, generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        rows = same(c_findall, mm, 0, len(mm))  # type: ignore[arg-type]
        assert canonical(rows) > 0.98 * len(rows)
        same(c_findall, mm, 12345, 67890)  # type: ignore[arg-type]


@needs_c
def test_fuzzed_entries(generated: tuple[Path, GenerationResult]) -> None:
    """Random edits of generated entries (lines dropped, repeated, swapped; characters that matter to the
    shape inserted, removed, replaced; cuts), each between two intact entries, with random offsets."""
    path, _ = generated
    entries = [b"# Time: " + e for e in path.read_bytes().split(b"\n# Time: ")[1:400]]
    entries = [e if e.endswith(b"\n") else e + b"\n" for e in entries]
    rng = random.Random(20261122)
    alphabet = [b" ", b";", b"#", b"\n", b"[", b"]", b"{", b"}", b"0", b"9", b".", b":", b"\xff", b"# ", b"use ",
                b"')", b"Z", b"+", b"-", b"a", b"_", b" Rocksdb_x: 1", b"# Time: ", b"\n# ", b"T", b"\r"]  # fmt: skip

    def edit(entry: bytes) -> bytes:
        lines = entry.split(b"\n")
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            kind = rng.randrange(8)
            if kind == 0 and len(lines) > 1:
                del lines[i]
            elif kind == 1:
                lines.insert(i, lines[rng.randrange(len(lines))])
            elif kind == 2:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            else:
                line, at = lines[i], rng.randint(0, len(lines[i]))
                how = rng.randrange(3)
                piece = rng.choice(alphabet)
                lines[i] = (
                    line[:at] + piece + line[at:] if how == 0
                    else line[:at] + line[at + 1 :] if how == 1
                    else line[:at] + piece + line[at + 1 :]
                )  # fmt: skip
        out = b"\n".join(lines)
        return out[: rng.randint(0, len(out))] if rng.random() < 0.1 else out

    assert P._scan is not None
    counting = Counting()
    findall = P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, counting, SHARED).findall
    kept = 0
    for _ in range(4000):
        data = rng.choice(entries) + edit(rng.choice(entries)) + rng.choice([b"", rng.choice(entries)])
        start = 0 if rng.random() < 0.8 else rng.randrange(len(data))
        end = len(data) if rng.random() < 0.8 else rng.randrange(len(data) + 1)
        counting.calls.clear()
        kept += canonical(same(findall, data, start, end))
        assert counting.calls == fallback_positions(data, start, end)
    assert kept > 4000  # most edited buffers still hold canonical entries the program reads


@needs_c
def test_repeated_values_are_one_object(c_findall: object, generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    rows = [r for r in c_findall(path.read_bytes()) if r[ROW_FIELDS["date"]]]  # type: ignore[operator]
    for name in P._SHARED_FIELDS:
        values = [r[ROW_FIELDS[name]] for r in rows]
        assert len({id(v) for v in values if v}) <= 2 * len({v for v in values if v}), name  # a few evictions
    sqls = [r[ROW_FIELDS["sql"]] for r in rows]
    assert len({id(v) for v in sqls}) == len(sqls)  # other fields are not shared
    unshared = P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, P._regex_row).findall  # type: ignore[union-attr]
    assert unshared(path.read_bytes()) == c_findall(path.read_bytes())  # type: ignore[operator]


@needs_c
def test_fallback_errors_propagate() -> None:
    assert P._scan is not None

    def broken(buf: P.Buffer, pos: int, end: int) -> tuple[P.Row, int]:
        raise RuntimeError("boom")

    def stuck(buf: P.Buffer, pos: int, end: int) -> tuple[P.Row, int]:
        return (), pos

    data = TRICKY["digest-missing"].encode()
    with pytest.raises(RuntimeError, match="boom"):
        P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, broken).findall(data)
    with pytest.raises(ValueError, match="past the start"):
        P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, stuck).findall(data)
    assert P._scan.Scanner(P.SCAN_PROGRAM, ENTRY_RE.groups, broken).findall(BASE.encode())  # not called


@needs_c
@pytest.mark.parametrize(
    "program",
    [
        ((99,),),
        ((1, "text"),),
        ((1, b""),),
        ((3, b"# DB: ", 9, 0),),
        ((3, b"# DB: ", 5, 0),),
        ((0, 1, 2, 99),),
        (("x",),),
        ((),),
    ],
    ids=["op", "literal", "empty-prefix", "kind", "item-kind-in-a-line", "group", "type", "empty"],
)
def test_bad_programs_are_refused(program: tuple[tuple[object, ...], ...]) -> None:
    assert P._scan is not None
    with pytest.raises((TypeError, ValueError)):
        P._scan.Scanner(program, ENTRY_RE.groups, P._regex_row)


# ------------------------------------------------------------------------------------------ end to end
@needs_c
@pytest.mark.parametrize("fixture", ["generated", "generated_rotated"])
def test_both_scanners_give_the_same_aggregates(request: pytest.FixtureRequest, fixture: str) -> None:
    location, _ = request.getfixturevalue(fixture)
    paths = P.find_slow_log_files(location)
    tables = []
    for kind in ("c", "regex"):
        previous = P.set_scanner(kind)
        try:
            for chunk_size in (P.DEFAULT_CHUNK_SIZE, 4096):
                table = DailyAggregates(include_internal=True)
                for path in paths:
                    table.add_file(path, chunk_size=chunk_size)
                tables.append((table.to_json(), table.parse_stats))
            table = aggregate_files(paths, include_internal=False)
            tables.append((table.to_json(), table.parse_stats))
        finally:
            P.set_scanner(previous)
    assert tables[0:3] == tables[3:6]
    assert tables[0] == tables[1]
    assert tables[0][1].fast_path > 0.98 * tables[0][1].entries


# ------------------------------------------------------------------------------------------ the column fold
def numeric_entry(rng: random.Random, second: int, digest: str) -> str:
    """A canonical entry with random numbers of every shape the expression captures (for the digest ``long``
    the largest integers, whose sums overflow the C fold's 64 bits)."""
    longest = ["9" * 18, "1" + "0" * 17] if digest == "long" else []  # sums overflow 64 bits

    def seconds() -> str:
        whole = rng.choice(["0", "1", "12", "999999", str(rng.randrange(1_000_000))])
        if rng.random() < 0.3:
            return whole
        return whole + "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))

    def integer() -> str:
        if longest:
            return rng.choice(longest)
        return rng.choice(["0", "1", str(rng.randrange(10**6)), str(rng.randrange(10**15))])

    items = []
    for key, value in (("Process_time", seconds), ("Wait_time", seconds), ("Backoff_time", seconds),
                       ("Process_keys", integer), ("Total_keys", integer)):  # fmt: skip
        if rng.random() < 0.8:
            items.append(f"{key}: {value()}")
    exec_line = ("# " + " ".join(items)) if items else None
    text = replace_line("# Cop_time", exec_line)  # type: ignore[arg-type]
    query_time = rng.choice(["0", "0.5", "999999.999999999", "1.000000001", seconds(), seconds()])
    text = text.replace("# Query_time: 1.25", f"# Query_time: {query_time}")
    text = text.replace(f"# Digest: {D1}", f"# Digest: {hashlib.sha256(digest.encode()).hexdigest()}")
    text = text.replace(
        "# Time: 2026-11-01T10:00:00.5Z", f"# Time: 2026-11-01T10:{second // 60:02d}:{second % 60:02d}Z"
    )
    mem_max = f"# Mem_max: {integer()}\n" if rng.random() < 0.8 else ""  # or none
    text = text.replace("# Mem_max: 100\n", mem_max)
    text = text.replace("# Result_rows: 3", f"# Result_rows: {integer()}")
    return text.replace("SELECT 1;", f"SELECT {rng.randrange(5)};")


@needs_c
def test_the_c_fold_equals_the_python_fold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group fold, the C column fold and the Python fold of the same entries give the same table,
    whatever the numbers (zeros, ties, the largest values, sums beyond 64 bits, integers too long for the
    C folds, whose entries go to the general parser)."""
    from tidbops.slowlog import aggregate as A

    rng = random.Random(8)
    path = tmp_path / "tidb-1" / "tidb-slow.log"
    path.parent.mkdir()
    digests = ["d0", "d1", "d2", "d3", "long", "long", "long", "long"]
    path.write_text("".join(numeric_entry(rng, i % 3600, rng.choice(digests)) for i in range(3000)), encoding="utf-8")
    folds: list[bool] = []

    def counting(rows: list[P.Row]) -> object:
        folded = c_fold(rows)
        folds.append(folded is not None)
        return folded

    c_fold = A._c_fold
    monkeypatch.setattr(A, "_c_fold", counting)
    monkeypatch.setattr(A, "_PENDING_ROWS", 64)  # many small folds
    tables = {}
    for kind, group_fold in (("c", True), ("c", False), ("regex", False)):
        monkeypatch.setattr(A, "GROUP_FOLD", group_fold)
        previous = P.set_scanner(kind)
        try:
            table = DailyAggregates(include_internal=True)
            table.add_file(path, chunk_size=8192)
        finally:
            P.set_scanner(previous)
        assert table.parse_stats.fast_path == table.parse_stats.entries == 3000
        tables[kind, group_fold] = table.to_json()
    assert tables["c", True] == tables["c", False] == tables["regex", False]
    assert folds.count(True) > 100 and folds.count(False) > 20, (folds.count(True), folds.count(False))  # both ran
    longest = max(s["total_keys"] for s in (row["stats"] for row in tables["c", True]["rows"]))
    assert longest >= 2**64  # the group fold's sums went past 64 bits, exactly


# ------------------------------------------------------------------------------------------ the group fold
def group_fold(data: bytes, start: int = 0, end: int = sys.maxsize, **options: object) -> tuple[object, list[P.Row]]:
    """(the C group fold of ``data[start:end]``, the rows it hands to the general parser)."""
    from tidbops.slowlog.aggregate import _GROUP_FIELDS
    from tidbops.slowlog.histogram import INV_LOG_GAMMA

    assert P._scan is not None
    groups = P._scan.Groups(_GROUP_FIELDS, INV_LOG_GAMMA, **options)  # type: ignore[arg-type]
    return groups, groups.scan(P._scan.Scanner(P.SCAN_PROGRAM, len(ROW_FIELDS), P._regex_row), data, start, end)


@needs_c
def test_the_group_fold_hands_over_exactly_the_other_rows(reference_select: str, reference_commit: str) -> None:
    """Every entry the program does not take is handed to the general parser as the expression's row, and
    every one it takes is counted: on each tricky entry between intact ones, at any offsets."""
    ref, commit = reference_select.encode(), reference_commit.encode()
    for case, text in TRICKY.items():
        data = ref + text.encode("utf-8", "surrogateescape") + commit
        for start, end in ((0, len(data)), (0, sys.maxsize), (len(ref) // 2, len(data) - 7), (5, len(ref) + 9)):
            expected = ENTRY_RE.findall(data, start, end)
            groups, others = group_fold(data, start, end, include_internal=True)
            assert others == [r for r in expected if not r[ROW_FIELDS["date"]]], case
            assert groups.counts() == (canonical(expected), 0, 0), case  # type: ignore[attr-defined]


@needs_c
def test_the_group_fold_refuses_what_it_cannot_use() -> None:
    from tidbops.slowlog.aggregate import _GROUP_FIELDS

    assert P._scan is not None
    with pytest.raises(ValueError, match="field indexes"):
        P._scan.Groups(_GROUP_FIELDS[:-1], 1.0)
    with pytest.raises(TypeError, match="callable"):
        P._scan.Groups(_GROUP_FIELDS, 1.0, sample_text="not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        P._scan.Groups((90, *_GROUP_FIELDS[1:]), 1.0)
    groups = P._scan.Groups(_GROUP_FIELDS, 1.0)
    with pytest.raises(TypeError):
        groups.scan("not a scanner", BASE.encode())  # type: ignore[arg-type]
    few = P._scan.Scanner(P.SCAN_PROGRAM[:1], 3, P._regex_row)
    with pytest.raises(ValueError, match="not a group of the scanner"):
        groups.scan(few, BASE.encode())
    failing = P._scan.Groups(_GROUP_FIELDS, 1.0, sample_text=lambda text: 1 / 0)
    tie = BASE.encode() + BASE.replace("SELECT 1;", "SELECT 2;").encode()
    with pytest.raises(ZeroDivisionError):  # a tie is decided by sample_text, and its error is not swallowed
        failing.scan(P._scan.Scanner(P.SCAN_PROGRAM, len(ROW_FIELDS), P._regex_row), tie)


def timed_entry(when: str, sql: str, query_time: str = "1.25", digest: str = D1) -> str:
    return (
        replace_line("# Time:", f"# Time: {when}")
        .replace("# Query_time: 1.25", f"# Query_time: {query_time}")
        .replace("SELECT 1;", sql)
        .replace(f"# Digest: {D1}", f"# Digest: {digest}")
    )


# Entries whose samples are decided by the later rules of the order: equal query times at equal moments
# (also moments 1 ns apart, one double as epoch seconds), then the smaller text (the redacted one, with
# redaction: 'zz' is smaller than 'aa' once both are '?', and then the digits decide).
TIES = [
    timed_entry("2026-11-01T10:00:00.000000002Z", "SELECT 'zz', 9;"),
    timed_entry("2026-11-01T10:00:00.000000001Z", "SELECT 'aa', 8;"),
    timed_entry("2026-11-01T18:00:00.000000001+08:00", "SELECT 'mm', 7;"),  # the same moment, written in +08:00
    timed_entry("2026-11-01T10:00:00.5Z", "SELECT 'ab', 1;"),  # later: never the sample
    timed_entry("2026-11-01T09:59:59.999999999Z", "SELECT 'x', 5;", "1.2"),  # faster: never the sample
    timed_entry("2026-11-01T10:00:00.000000001Z", "SELECT 'aa', 8;"),  # the same entry again
    timed_entry("2026-11-01T10:00:00.000000001Z", "SELECT 'caf\udce9', 2;"),  # not UTF-8
]


@needs_c
@pytest.mark.parametrize(
    "options",
    [
        {"include_internal": True},
        {"redact": True},
        {"since": P.parse_slow_log_time("2026-11-01T10:00:00.000000001Z")},
        {"until": P.parse_slow_log_time("2026-11-01T10:00:00.5Z")},
        {
            "since": P.parse_slow_log_time("2026-11-01T09:59:59.999999999Z"),
            "until": P.parse_slow_log_time("2026-11-01T10:00:00.000000002Z"),
        },
    ],
    ids=["all", "redact", "since", "until", "window"],
)
def test_the_group_fold_equals_the_entries_on_ties_and_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    from tidbops.slowlog import aggregate as A

    rng = random.Random(3)
    path = tmp_path / "tidb-1" / "tidb-slow.log"
    path.parent.mkdir()
    for order in range(6):
        entries = TIES[:]
        rng.shuffle(entries)
        path.write_bytes("".join(entries).encode("utf-8", "surrogateescape"))
        grouped = aggregate_files([path], **options)  # type: ignore[arg-type]
        reference = A.aggregate_entries_of_files([path], **options)  # type: ignore[arg-type]
        assert grouped == reference and grouped.to_json() == reference.to_json(), order
        assert (grouped.skipped_by_time, grouped.parse_stats.entries) == (reference.skipped_by_time, 7)
    ((_, stats),) = grouped.rows() if "since" not in options and "until" not in options else [(None, None)]
    if stats is not None:
        assert stats.sample_sql == ("SELECT ?, ?;" if options.get("redact") else "SELECT 'aa', 8;")


# Entries at the edges of days, whose date in another zone CPython decides after rounding the epoch seconds
# half-even to the microsecond (…59.9999996 is the next day's first microsecond; …59.9999994 is not).
EDGES = [
    timed_entry("2026-11-01T23:59:59.9999995Z", "SELECT 1;", digest=hashlib.sha256(b"1").hexdigest()),
    timed_entry("2026-11-01T23:59:59.9999996Z", "SELECT 2;", digest=hashlib.sha256(b"2").hexdigest()),
    timed_entry("2026-11-01T23:59:59.9999994Z", "SELECT 3;", digest=hashlib.sha256(b"3").hexdigest()),
    timed_entry("2026-11-02T00:00:00Z", "SELECT 4;", digest=hashlib.sha256(b"4").hexdigest()),
    timed_entry("2026-11-02T04:59:59.999999999-05:00", "SELECT 5;", digest=hashlib.sha256(b"5").hexdigest()),
    timed_entry("2026-11-02T05:44:59.9999999+05:45", "SELECT 6;", digest=hashlib.sha256(b"6").hexdigest()),
    timed_entry("2026-11-01T13:59:59.999999+14:00", "SELECT 7;", digest=hashlib.sha256(b"7").hexdigest()),
    timed_entry("1969-12-31T23:59:59.9999996Z", "SELECT 8;", digest=hashlib.sha256(b"8").hexdigest()),
    timed_entry("1969-12-31T23:59:59.5Z", "SELECT 9;", digest=hashlib.sha256(b"9").hexdigest()),
    timed_entry("2024-02-29T23:30:00-01:00", "SELECT 10;", digest=hashlib.sha256(b"10").hexdigest()),
    timed_entry(
        "1000-01-01T02:00:00Z", "SELECT 11;", digest=hashlib.sha256(b"11").hexdigest()
    ),  # 0999-12-31 west of UTC-2
    timed_entry(
        "2999-12-31T23:00:00Z", "SELECT 12;", digest=hashlib.sha256(b"12").hexdigest()
    ),  # 3000-01-01 east of UTC+1
]
FIXED_ZONES = [
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=45)),
    timezone(timedelta(hours=14)),
]


@needs_c
@pytest.mark.parametrize("day_tz", FIXED_ZONES, ids=["utc", "utc-5", "utc+5:45", "utc+14"])
def test_the_group_fold_keys_days_of_a_fixed_zone_as_python_does(
    tmp_path: Path, day_tz: timezone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With day_tz (the nightly harvest's UTC, or any fixed offset) the C group fold reads the file and
    keys each entry by its date in that zone exactly as datetime.fromtimestamp does, at every day's edge."""
    from tidbops.slowlog import aggregate as A

    monkeypatch.setattr(A, "GROUP_FOLD", True)
    previous = P.set_scanner("c")
    try:
        assert A.DailyAggregates(day_tz=day_tz)._groups() is not None  # the C group fold, not the Python path
        assert A.DailyAggregates(day_tz=ZoneInfo("Europe/Berlin"))._groups() is None  # daylight saving: Python
        path = tmp_path / "tidb-1" / "tidb-slow.log"
        path.parent.mkdir()
        path.write_text("".join(EDGES), encoding="utf-8")
        grouped = aggregate_files([path], day_tz=day_tz, include_internal=True)
        reference = A.aggregate_entries_of_files([path], day_tz=day_tz, include_internal=True)
    finally:
        P.set_scanner(previous)
    assert grouped == reference and grouped.to_json() == reference.to_json()
    assert grouped.parse_stats.fast_path == grouped.parse_stats.entries == len(EDGES)
    days = sorted({k.day for k in grouped.stats})
    assert len(days) >= 4 and all(len(d) == 10 for d in days), days
    if day_tz is UTC:
        by_sql = {s.sample_sql: k.day for k, s in grouped.stats.items()}
        assert by_sql["SELECT 2;"] == "2026-11-02" and by_sql["SELECT 3;"] == "2026-11-01"
        assert by_sql["SELECT 8;"] == "1970-01-01" and by_sql["SELECT 9;"] == "1969-12-31"
    if day_tz.utcoffset(None) == timedelta(hours=-5):
        assert any(k.day == "0999-12-31" for k in grouped.stats)


@needs_c
def test_the_group_fold_takes_only_offsets_of_less_than_a_day() -> None:
    data = timed_entry("2026-11-01T23:00:00Z", "SELECT 1;").encode()
    groups, others = group_fold(data, day_offset=3 * 3600)
    assert not others and groups.results()[0][0] == b"2026-11-02"  # type: ignore[attr-defined]
    for bad in (86400, -86400):
        with pytest.raises(ValueError, match="day_offset"):
            group_fold(data, day_offset=bad)
    with pytest.raises(TypeError):
        group_fold(data, day_offset="UTC")


@needs_c
def test_the_c_fold_leaves_odd_values_to_python() -> None:
    from tidbops.slowlog.aggregate import _c_fold

    rows = [row for row in ENTRY_RE.findall(BASE.encode()) if row[ROW_FIELDS["date"]]]
    assert _c_fold(rows) is not None
    assert _c_fold([]) is None
    too_long = [tuple(b"9" * 19 if i == ROW_FIELDS["total_keys"] else v for i, v in enumerate(rows[0]))]
    assert _c_fold(too_long) is None  # type: ignore[arg-type]
    not_a_number = [tuple(b"1e3" if i == ROW_FIELDS["query_time"] else v for i, v in enumerate(rows[0]))]
    assert _c_fold(not_a_number) is None  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _c_fold("not rows")  # type: ignore[arg-type]
    total_ns, top, tops, buckets, zeros, ns_sums, int_sums, mem = _c_fold(rows * 3)  # type: ignore[misc]
    assert (total_ns, top, tops, zeros) == (3_750_000_000, 1_250_000_000, [0, 1, 2], 0)
    assert ns_sums == (600_000_000, 900_000_000, 150_000_000) and int_sums == (12, 15, 9) and mem == 100
    assert buckets == {bucket_index(1.25): 3}
