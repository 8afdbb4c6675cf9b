"""Fuzzing the slow-log readers with entries shaped like TiDB's (``SlowLogFormat``: the reference's line
order, optional lines, Go's number formats), then bent: hostile digests, numbers TiDB never writes,
impossible times, control characters in the text, cut, spliced and garbled lines, broken gzip.

Whatever comes in: both row scanners give the same rows and entries, the readers give a result or their
typed error (never another exception), every entry and aggregate row holds only 64-hex digests and sane
numbers, no guardrail statement carries anything but a 64-hex digest, text output holds no raw control
character, and everything ends within the deadline. Bounded (``FUZZ``: examples, deadline, no example
database written), deterministic (``derandomize``) so CI never flakes; raise ``TIDBOPS_SLOWLOG_FUZZ`` (examples
per test) to search longer.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidbops.slowlog import parser as P
from tidbops.slowlog.aggregate import DailyAggregates, aggregate_entries
from tidbops.slowlog.errors import SlowLogFileError, SlowLogFormatError, SlowLogParseError
from tidbops.slowlog.harvest import guardrail_statements
from tidbops.slowlog.parser import MAX_DURATION, MAX_INTEGER, ParseStats, SlowQueryEntry, is_digest, iter_entries
from tidbops.slowlog.report import build_report, is_appliable_statement, render_text
from tidbops.slowlog.sql_source import row_to_entry

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("TIDBOPS_SLOWLOG_FUZZ", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=3),
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
HOSTILE_DIGESTS = [
    "x' RESOURCE GROUP `default", "'; DROP TABLE mysql.user; --", "A" * 64, "a" * 63, "a" * 65, "", " ",
    "a" * 63 + "\u0660", "a" * 64 + "\r", "\x1b[2J" + "a" * 60,
]  # fmt: skip
NASTY_TEXT = ["\x1b[2J", "\x1b]0;title\x07", "\r", "\x07", "\x00", "\x9b", "\u202e", "\u2066", "\u200b", "\u2028",
              "\ufeff", "\U000e0041", "\udcff", "(len:4096)", "[arguments: (1, 'x')]", "# Time: ", "use x;", "';",
              "\\", "\t"]  # fmt: skip
CONTROL_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")


# ------------------------------------------------------------------------------------------- values
def seconds_text(ns: int) -> str:
    """Go's ``strconv.FormatFloat(d.Seconds(), 'f', -1, 64)`` for a duration of whole nanoseconds."""
    whole, frac = divmod(ns, 10**9)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") if frac else str(whole)


NOT_SECONDS = ["-1", "-0.5", "1e308", "nan", "inf", "-inf", "1_000", "0x10", "31622400.5", "", " 1", "1.5 ", "١",
               "9" * 400]  # fmt: skip


def odd(draw: st.DrawFn, bent: bool) -> bool:
    """Whether this value of an entry is one TiDB never writes (a third of the values of a bent entry)."""
    return bent and draw(st.integers(0, 2)) == 0


@st.composite
def seconds(draw: st.DrawFn, bent: bool = False) -> str:
    if not odd(draw, bent):
        return seconds_text(draw(st.one_of(st.integers(0, 10**9), st.integers(0, 999_999 * 10**9 + 999_999_999))))
    return draw(st.one_of(st.sampled_from(NOT_SECONDS), st.floats(allow_nan=True, allow_infinity=True).map(repr)))


@st.composite
def count(draw: st.DrawFn, bent: bool = False) -> str:
    if not odd(draw, bent):
        return str(draw(st.one_of(st.integers(0, 10**6), st.integers(0, MAX_INTEGER))))
    return draw(st.sampled_from(["-1", "+3", "1.5", "lots", "1_000", str(MAX_INTEGER + 1), "9" * 40, ""]))


@st.composite
def digest(draw: st.DrawFn, bent: bool = False) -> str:
    if not odd(draw, bent):
        return draw(HEX)
    return draw(st.one_of(st.sampled_from(HOSTILE_DIGESTS), st.text(max_size=70)))


@st.composite
def time_text(draw: st.DrawFn, bent: bool = False) -> str:
    """``time.RFC3339Nano`` in the server's zone (trailing zeros of the fraction dropped), sometimes the old
    format; in a bent entry sometimes an impossible time."""
    if odd(draw, bent):
        return draw(st.sampled_from(["2026-02-29T10:00:00Z", "2026-04-31T00:00:00Z", "2026-11-01T24:00:00Z",
                                     "2026-11-01T10:00:00+24:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
                                     "2026-11-01 10:00:00", "", "yesterday", "2026-11-01T10:00:00.1234567891Z"]))  # fmt: skip
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)))
    minutes = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    nanos = draw(st.integers(0, 999))
    if draw(st.integers(0, 19)) == 0:  # the old 2006-01-02-15:04:05.999999999 -0700
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        return moment.strftime("%Y-%m-%d-%H:%M:%S") + f".{moment.microsecond:06d} {zone}"
    frac = f"{moment.microsecond:06d}{nanos:03d}".rstrip("0")
    offset = "Z" if minutes == 0 else moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()[-6:]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + offset


ONE_LINE = st.characters(blacklist_characters="\n")


def text_piece(draw: st.DrawFn, bent: bool = False, *, max_size: int = 30) -> str:
    """Text on one line, as TiDB writes it (any character but the newline, which it replaces by a space);
    in a bent entry sometimes with pieces that matter to the format or to a terminal."""
    pieces = st.text(ONE_LINE, max_size=max_size)
    if bent:
        pieces = st.one_of(pieces, st.sampled_from(NASTY_TEXT), st.text(max_size=max_size))
    return "".join(draw(st.lists(pieces, min_size=1, max_size=4)))


@st.composite
def entry_text(draw: st.DrawFn) -> str:
    """One entry in the line order of ``SlowLogFormat`` (v7.5-v8.x and master), each optional line optional;
    a quarter of them bent (some values TiDB never writes)."""
    bent = draw(st.integers(0, 3)) == 0
    maybe = lambda: draw(st.integers(0, 3)) > 0  # noqa: E731
    lines = [f"# Time: {draw(time_text(bent))}"]
    if maybe():
        lines.append(f"# Txn_start_ts: {draw(st.integers(0, 2**64 - 1))}")
    if maybe():
        user = (
            draw(st.text(st.characters(blacklist_characters="[] \n"), max_size=8))
            if not bent
            else text_piece(draw, True)
        )
        host = draw(st.sampled_from(["10.0.1.15", "::1", "h", ""]))
        lines.append(f"# User@Host: {user}[{user}] @ {host} [{host}]")
    if maybe():
        lines.append(f"# Conn_ID: {draw(st.integers(1, 2**63))}")
    if not odd(draw, bent):
        lines.append(f"# Query_time: {draw(seconds(bent))}")
    lines += [f"# Parse_time: {draw(seconds(bent))}", f"# Compile_time: {draw(seconds(bent))}"]
    if maybe():
        keys = ["Cop_time", "Process_time", "Wait_time", "Backoff_time", "Request_count", "Prewrite_time",
                "Commit_time", "Prewrite_Backoff_types", "Write_keys", "Process_keys", "Total_keys",
                "Rocksdb_key_skipped_count"]  # fmt: skip
        items = []
        for key in keys:
            if draw(st.booleans()):
                value = (
                    "[tikvRPC regionMiss]" if key.endswith("_types")
                    else draw(count(bent)) if key.endswith(("keys", "count")) or key == "Request_count"
                    else draw(seconds(bent))
                )  # fmt: skip
                items.append(f"{key}: {value}")
        if items:
            lines.append("# " + " ".join(items))
    if maybe():
        lines.append(f"# DB: {text_piece(draw, bent, max_size=10)}")
    if maybe():
        lines.append("# Index_names: [orders:idx_created_at]")
    lines.append(f"# Is_internal: {draw(st.sampled_from(['false', 'false', 'true']))}")
    if not odd(draw, bent):
        lines.append(f"# Digest: {draw(digest(bent))}")
    if maybe():
        lines.append("# Stats: orders:449863100000000000[12000000;30000]")
    if maybe():
        lines.append(f"# Mem_max: {draw(count(bent))}")
    lines += ["# Prepared: false", "# Plan_from_cache: false", "# Plan_from_binding: false"]
    lines.append(f"# KV_total: {draw(seconds(bent))}")
    if maybe():
        lines.append(f"# Result_rows: {draw(count(bent))}")
    if not maybe():
        lines.append('# Warnings: [{"Level":"Warning","Message":"x: y"}]')
    lines.append(f"# Succ: {draw(st.sampled_from(['true', 'false']))}")
    if maybe():
        lines.append("# Plan: tidb_decode_plan('ZJAwCTMyXzcJMAkyMAlkYXRh')")
    if maybe():
        lines.append(f"# Plan_digest: {draw(digest(bent))}")
    if maybe():
        lines.append("# Resource_group: default")
    if not maybe():
        lines.append(f"# Prev_stmt: {text_piece(draw, bent)};")
    if not maybe():
        lines.append(f"use {draw(st.text(ONE_LINE, min_size=1, max_size=10))};")
    sql = "SELECT " + text_piece(draw, bent)
    lines.append(sql if sql.endswith(";") else sql + ";")
    return "\n".join(lines) + "\n"


@st.composite
def slow_log(draw: st.DrawFn) -> bytes:
    """A few entries, then bent: lines dropped, repeated or swapped, pieces spliced in, cut anywhere."""
    text = "".join(draw(st.lists(entry_text(), min_size=1, max_size=6)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        lines = text.split("\n")
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "swap", "splice", "cut", "crlf"]))
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[draw(st.integers(0, len(lines) - 1))])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif action == "splice":
            pos = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:pos] + draw(st.sampled_from(NASTY_TEXT)) + lines[at][pos:]
        elif action == "cut":
            lines = lines[: at + 1]
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        else:
            lines[at] += "\r"
        text = "\n".join(lines)
    junk = draw(st.sampled_from(["", "", "1;\n# Succ: true\nSELECT 1;\n", "\xff\xfe\n"]))
    return junk.encode("latin-1") + text.encode("utf-8", "surrogatepass")


# ------------------------------------------------------------------------------------------ checks
def check_entry(entry: SlowQueryEntry) -> None:
    assert is_digest(entry.digest), entry.digest
    assert entry.plan_digest == "" or is_digest(entry.plan_digest), entry.plan_digest
    for value in (entry.query_time, entry.process_time, entry.wait_time, entry.backoff_time):
        assert 0.0 <= value <= MAX_DURATION
    for number in (entry.process_keys, entry.total_keys, entry.result_rows, entry.mem_max):
        assert 0 <= number <= MAX_INTEGER
    assert math.isfinite(entry.time) and datetime.fromtimestamp(entry.time, UTC).year > 0


def entries_with(kind: str, data: bytes, **kwargs: Any) -> tuple[list[SlowQueryEntry], ParseStats]:
    if kind == "c" and P._scan is None:
        pytest.skip("the C scanner is not built")
    previous = P.set_scanner(kind)
    try:
        stats = ParseStats()
        return list(iter_entries(io.BytesIO(data), stats=stats, **kwargs)), stats
    finally:
        P.set_scanner(previous)


def no_raw_controls(text: str) -> bool:
    return not any(ch != "\n" and unicodedata.category(ch) in CONTROL_CATEGORIES for ch in text)


# ------------------------------------------------------------------------------------------- tests
@FUZZ
@given(data=slow_log(), chunk=st.sampled_from([64, 333, 4096, P.DEFAULT_CHUNK_SIZE]))
def test_parser_both_scanners_agree_and_keep_only_sane_entries(data: bytes, chunk: int) -> None:
    if P._scan is not None:
        assert P._c_findall()(data, 0, len(data)) == P.ENTRY_RE.findall(data)
    with_c, stats_c = entries_with("c", data, chunk_size=chunk) if P._scan is not None else (None, None)
    with_regex, stats_regex = entries_with("regex", data, chunk_size=chunk)
    if with_c is not None:
        assert with_c == with_regex and stats_c == stats_regex
    for entry in with_regex:
        check_entry(entry)
    assert stats_regex.entries == len(with_regex)
    assert len(stats_regex.problems) == min(stats_regex.malformed, P.MAX_PROBLEMS)
    try:
        strict = list(iter_entries(io.BytesIO(data), strict=True))
    except SlowLogParseError as exc:
        assert exc.line >= 0 and stats_regex.malformed
    else:
        assert strict == with_regex


@FUZZ
@given(logs=st.lists(slow_log(), min_size=1, max_size=3), day_offset=st.integers(0, 2))
def test_aggregates_reports_and_guardrails_hold_only_hex_digests(
    tmp_path_factory: pytest.TempPathFactory, logs: list[bytes], day_offset: int
) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    paths = []
    for i, data in enumerate(logs):
        path = directory / f"tidb-slow-2026-11-1{i}T00-00-00.000.log"
        path.write_bytes(data)
        paths.append(path)
    table = DailyAggregates(include_internal=True)
    for path in paths:
        table.add_file(path)
    rows = table.rows()
    assert sum(s.count for _, s in rows) == table.parse_stats.entries - table.skipped_by_time
    for key, stats in rows:
        assert is_digest(key.digest) and (key.plan_digest == "" or is_digest(key.plan_digest))
        assert math.isfinite(stats.total_query_time) and stats.query_time_ns >= 0
    days = table.days() or ["2026-11-01"]
    report = build_report(table, days[min(day_offset, len(days) - 1)], tidb_version="v8.5.1")
    for guard in report.guardrails:
        assert is_digest(guard.digest)
        if guard.kind != "max_execution_time":
            assert is_appliable_statement(guard.sql), guard.sql
    assert all(is_appliable_statement(sql) for sql in guardrail_statements(report.to_json()))
    assert no_raw_controls(render_text(report))


ANY_DIGEST = st.one_of(HEX, st.sampled_from(HOSTILE_DIGESTS), st.text(max_size=70))


@FUZZ
@given(
    findings=st.lists(st.tuples(ANY_DIGEST, ANY_DIGEST, ANY_DIGEST), min_size=1, max_size=4),
    factor=st.floats(2.0, 50.0),
    version=st.sampled_from([None, "v8.5.1", "v7.1.0", "v6.5.0", "8.0.11-TiDB-v7.5.2"]),
)
def test_no_guardrail_statement_carries_a_digest_that_is_not_hex(
    findings: list[tuple[str, str, str]], factor: float, version: str | None
) -> None:
    """Digests of every kind (as rows reach a report from anywhere: entries, the history store) in findings
    that all call for guardrails: regressions (``factor`` x slower) with a new, slower plan."""
    day = date(2026, 11, 8)
    entries = []
    for number, (sql_digest, old_plan, new_plan) in enumerate(findings):
        for n in range(8):
            when = datetime(2026, 11, 1 + n, 12, tzinfo=UTC).timestamp() + number
            slow = n == 7
            for k in range(12):
                entries.append(
                    SlowQueryEntry(
                        time=when + k, day=(day - timedelta(days=7 - n)).isoformat(), utc_offset=0,
                        query_time=factor if slow else 1.0, digest=sql_digest, plan_digest=new_plan if slow else old_plan,
                        db="shop", user="app", host="h", sql=f"SELECT {number} FROM t;",
                    )
                )  # fmt: skip
    report = build_report(aggregate_entries(entries, "tidb-0"), day.isoformat(), tidb_version=version)
    hex_digests = {d for finding in findings for d in finding if is_digest(d)}
    for guard in report.guardrails:
        assert is_digest(guard.digest)
        if guard.kind != "max_execution_time":
            assert is_appliable_statement(guard.sql) and guard.sql.split("'")[1] in hex_digests, guard.sql
    for sql in guardrail_statements(report.to_json()):
        assert is_appliable_statement(sql)
    wanted = {d for d, _, _ in findings if is_digest(d)}
    if version in (None, "v8.5.1"):
        assert {g.digest for g in report.guardrails if g.kind == "query_watch"} == wanted


@FUZZ
@given(
    data=slow_log(),
    chunk=st.sampled_from([333, 4096, P.DEFAULT_CHUNK_SIZE]),
    internal=st.booleans(),
    redact=st.booleans(),
    window=st.sampled_from([(None, None), ("2026-11-01T12:00:00Z", None), (None, "2026-11-02T00:00:00.5+08:00")]),
)
def test_every_way_of_reading_a_file_gives_the_same_table(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    chunk: int,
    internal: bool,
    redact: bool,
    window: tuple[str | None, str | None],
) -> None:
    """The C group fold (the default), the C rows with the column folds, and the expression with the Python
    fold: the same rows, counters and problems, whatever the entries."""
    if P._scan is None:
        pytest.skip("the C scanner is not built")
    from tidbops.slowlog import aggregate as A

    path = tmp_path_factory.mktemp("ways") / "tidb-slow.log"
    path.write_bytes(data)
    since, until = (None if w is None else P.parse_slow_log_time(w) for w in window)
    tables = []
    for kind, group_fold in (("c", True), ("c", False), ("regex", False)):
        previous, folding = P.set_scanner(kind), A.GROUP_FOLD
        A.GROUP_FOLD = group_fold
        try:
            table = DailyAggregates(include_internal=internal, redact=redact, since=since, until=until)
            table.add_file(path, chunk_size=chunk)
        finally:
            P.set_scanner(previous)
            A.GROUP_FOLD = folding
        tables.append((table.to_json(), table.parse_stats, table.skipped_internal, table.skipped_by_time))
    assert tables[0] == tables[1] == tables[2]


@FUZZ
@given(
    data=slow_log(),
    how=st.sampled_from(["cut", "flip", "crc", "tail"]),
    at=st.floats(0.0, 1.0),
)
def test_broken_gzip_is_one_bad_file(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, how: str, at: float
) -> None:
    packed = gzip.compress(data * 3)
    k = int(at * (len(packed) - 1))
    broken = {
        "cut": packed[:k],
        "flip": packed[:k] + bytes([packed[k] ^ 0x55]) + packed[k + 1 :],
        "crc": packed[:-8] + bytes(b ^ 1 for b in packed[-8:-4]) + packed[-4:],
        "tail": packed + b"\x00junk",
    }[how]
    path = tmp_path_factory.mktemp("gz") / "tidb-slow-2026-11-10T00-00-00.000.log.gz"
    path.write_bytes(broken)
    table = DailyAggregates()
    table.add_file(path)
    assert table.parse_stats.files == 1 and table.parse_stats.bad_files <= 1
    stats = ParseStats()
    for entry in iter_entries(path, stats=stats):
        check_entry(entry)
    with pytest.raises((SlowLogFileError, SlowLogParseError)) if stats.bad_files else _nothing():
        list(iter_entries(path, strict=True))


class _nothing:  # a context manager that expects nothing
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


SQL_VALUES = st.one_of(
    st.none(), st.text(max_size=20), st.binary(max_size=20), st.integers(-(2**70), 2**70), st.floats(),
    st.decimals(allow_nan=True, allow_infinity=True), st.booleans(), HEX, HEX.map(str.encode),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.dates(min_value=date(1, 1, 1)).map(str),
)  # fmt: skip
SQL_COLUMNS = ["Time", "Digest", "Plan_digest", "DB", "User", "Host", "Query_time", "Process_time", "Wait_time",
               "Backoff_time", "Process_keys", "Total_keys", "Result_rows", "Mem_max", "Succ", "Query", "INSTANCE"]  # fmt: skip
SQL_GOOD = {
    "Time": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)), "Digest": HEX,
    "Plan_digest": st.one_of(HEX, st.just(""), st.none()), "Query_time": st.floats(0, 1e6),
    "Process_time": st.decimals(0, 1000, places=9), "Process_keys": st.integers(0, MAX_INTEGER),
    "Query": st.text(max_size=40),
}  # fmt: skip


@FUZZ
@given(
    good=st.fixed_dictionaries(SQL_GOOD),
    bent=st.dictionaries(st.sampled_from(SQL_COLUMNS), SQL_VALUES, max_size=3),
)
def test_sql_rows_give_an_entry_or_a_format_error(good: dict[str, Any], bent: dict[str, Any]) -> None:
    row = {**good, **bent}
    try:
        entry, _instance = row_to_entry(row)
    except SlowLogFormatError as exc:
        assert "\n" not in str(exc)
        return
    check_entry(entry)
    if not bent:
        assert entry.digest == good["Digest"]


@FUZZ
@given(data=slow_log(), output=st.sampled_from(["text", "json"]), redact=st.booleans())
def test_the_cli_gives_a_report_or_one_line_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, output: str, redact: bool
) -> None:
    from tidbops.cli import run

    path = tmp_path_factory.mktemp("cli") / "tidb-slow.log"
    path.write_bytes(data)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr = io.StringIO(), io.StringIO()
    try:
        args = ["slowlog", "digest", str(path), "--format", output, "--include-internal"]
        code = run(args + (["--redact"] if redact else []))
    finally:
        sys.stdout, sys.stderr = saved
    out, err = stdout.getvalue(), stderr.getvalue()
    assert code in (0, 1), err
    assert "Traceback" not in err and "TIDBOPS_DEBUG" not in err
    assert no_raw_controls(out) and no_raw_controls(err)
    assert all(line.startswith(("warning: ", "error: ")) for line in err.splitlines()), err
    if output == "json":
        assert out.isascii()
