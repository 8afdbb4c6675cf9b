"""Daily aggregates: every metric, exact merges, and the column-wise path equal to the entry-by-entry one."""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tidbops.slowlog.aggregate import (
    DailyAggregates,
    DigestKey,
    DigestStats,
    aggregate_entries,
    aggregate_entries_of_files,
    aggregate_files,
    default_instance,
    iso_time,
)
from tidbops.slowlog.errors import SlowLogFormatError
from tidbops.slowlog.parser import SlowQueryEntry, iter_entries, parse_slow_log_time
from tidbops_playground.slowlog_gen import GenerationResult, generate

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("reader")]  # each way of reading files

T0 = parse_slow_log_time("2026-11-01T10:00:00Z")


def entry(**changes: object) -> SlowQueryEntry:
    base = SlowQueryEntry(
        time=T0,
        day="2026-11-01",
        utc_offset=0,
        query_time=1.5,
        digest="d1",
        plan_digest="p1",
        db="shop",
        user="app",
        host="10.0.0.1",
        sql="SELECT * FROM t WHERE id = 1;",
        process_time=0.5,
        wait_time=0.25,
        backoff_time=0.125,
        process_keys=10,
        total_keys=12,
        result_rows=3,
        mem_max=1000,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ one key
def test_every_metric_of_one_key() -> None:
    table = aggregate_entries(
        [
            entry(),
            entry(time=T0 + 60, query_time=2.25, mem_max=5000, succ=False, sql="SELECT * FROM t WHERE id = 2;"),
            entry(time=T0 - 60, query_time=0.75, process_keys=1, total_keys=1, result_rows=0, mem_max=0),
        ],
        instance="tidb-1",
    )
    ((key, stats),) = table.rows()
    assert key == DigestKey("2026-11-01", "d1", "p1", "shop", "app")
    assert stats.count == 3
    assert stats.query_time_ns == 4_500_000_000 and stats.total_query_time == 4.5
    assert stats.avg_query_time == 1.5 and stats.max_query_time == 2.25
    assert stats.process_time_ns == 1_500_000_000 and stats.wait_time_ns == 750_000_000
    assert stats.backoff_time_ns == 375_000_000
    assert (stats.process_keys, stats.total_keys, stats.result_rows, stats.max_mem) == (21, 25, 6, 5000)
    assert stats.errors == 1
    assert (stats.first_seen, stats.last_seen) == (T0 - 60, T0 + 60)
    assert (stats.sample_sql, stats.sample_query_time_ns, stats.sample_time) == (
        "SELECT * FROM t WHERE id = 2;",
        2_250_000_000,
        T0 + 60,
    )
    assert stats.instances == {"tidb-1"}
    assert stats.p95_query_time == pytest.approx(2.25, rel=0.01)
    assert stats.p95_query_time <= stats.max_query_time


@pytest.mark.parametrize(
    ("entries", "sample"),
    [
        ([entry(sql="b;"), entry(sql="a;", query_time=1.6)], "a;"),
        ([entry(sql="b;", time=T0 + 1), entry(sql="a;", time=T0 + 2)], "b;"),
        ([entry(sql="b;"), entry(sql="a;")], "a;"),
        ([entry(sql="a;"), entry(sql="b;")], "a;"),
    ],
    ids=["slowest-wins", "tie-earliest-wins", "tie-smaller-text-wins", "order-does-not-matter"],
)
def test_sample_is_the_slowest_with_a_total_order(entries: list[SlowQueryEntry], sample: str) -> None:
    ((_, forward),) = aggregate_entries(entries).rows()
    ((_, backward),) = aggregate_entries(list(reversed(entries))).rows()
    assert forward.sample_sql == backward.sample_sql == sample


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("day", "2026-11-02"), ("digest", "d2"), ("plan_digest", "p2"), ("db", "crm"), ("user", "report")],
    ids=["day", "digest", "plan", "db", "user"],
)
def test_each_key_part_separates_rows(field_name: str, value: str) -> None:
    original = getattr(entry(), field_name)
    table = aggregate_entries([entry(), entry(**{field_name: value})])
    assert sorted(getattr(k, field_name) for k, _ in table.rows()) == sorted([original, value])


@pytest.mark.parametrize(
    ("options", "kept", "skipped"),
    [
        ({}, 1, (1, 0)),
        ({"include_internal": True}, 2, (0, 0)),
        ({"since": T0 + 1}, 0, (1, 1)),
        ({"until": T0}, 0, (1, 1)),
        ({"since": T0, "until": T0 + 1}, 1, (1, 0)),
    ],
    ids=["internal-skipped", "internal-kept", "before-since", "at-until", "inside-window"],
)
def test_options_leave_entries_out(options: dict[str, object], kept: int, skipped: tuple[int, int]) -> None:
    table = aggregate_entries([entry(), entry(is_internal=True)], **options)
    assert sum(s.count for _, s in table.rows()) == kept
    assert (table.skipped_internal, table.skipped_by_time) == skipped


@pytest.mark.parametrize(
    ("tz", "day"),
    [(None, "2026-11-02"), (UTC, "2026-11-01"), (ZoneInfo("Asia/Shanghai"), "2026-11-02")],
    ids=["as-written", "utc", "shanghai"],
)
def test_day_zone(tz: timezone | None, day: str) -> None:
    written = parse_slow_log_time("2026-11-02T01:00:00+08:00")
    table = aggregate_entries([entry(time=written, day="2026-11-02", utc_offset=28800)], day_tz=tz)
    assert [k.day for k, _ in table.rows()] == [day]


def test_redaction_of_samples() -> None:
    table = aggregate_entries(
        [entry(sql="SELECT * FROM t_1 WHERE a = 'secret' AND b = 42 [arguments: (1)];")], redact=True
    )
    ((_, stats),) = table.rows()
    assert stats.sample_sql == "SELECT * FROM t_1 WHERE a = ? AND b = ?;"


# ------------------------------------------------------------------------------------------- merges
def _split(entries: list[SlowQueryEntry], parts: int, seed: int) -> list[list[SlowQueryEntry]]:
    rng = random.Random(seed)
    pieces: list[list[SlowQueryEntry]] = [[] for _ in range(parts)]
    for e in entries:
        pieces[rng.randrange(parts)].append(e)
    return pieces


@pytest.mark.parametrize("parts", [2, 5], ids=["halves", "fifths"])
def test_merge_is_exact(generated: tuple[Path, GenerationResult], parts: int) -> None:
    path, _ = generated
    entries = list(iter_entries(path))
    whole = aggregate_entries(entries, "i1")
    merged = DailyAggregates()
    for piece in _split(entries, parts, seed=parts):
        merged.merge(aggregate_entries(piece, "i1"))
    assert merged == whole
    rev = DailyAggregates()
    for piece in reversed(_split(entries, parts, seed=parts)):
        rev.merge(aggregate_entries(piece, "i1"))
    assert rev == whole


def test_days_roll_up_into_a_week_exactly(generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    entries = list(iter_entries(path))
    daily = aggregate_entries(entries, include_internal=True)
    week = daily.rollup(lambda k: k._replace(day="2026-W44"))
    as_one_day = aggregate_entries([replace(e, day="2026-W44") for e in entries], include_internal=True)
    assert week == as_one_day.stats
    per_digest = daily.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    assert sum(s.count for s in per_digest.values()) == len(entries)


def test_json_round_trip_is_exact(generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    table = aggregate_files([path], redact=True)
    text = json.dumps(table.to_json())
    again = DailyAggregates.from_json(json.loads(text))
    assert again == table
    stats = next(iter(again.stats.values()))
    assert DigestStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats


@pytest.mark.parametrize(
    "data",
    [{}, {"version": 2, "rows": []}, {"version": 1, "rows": [{"key": {"day": "x"}, "stats": {}}]},
     {"version": 1, "rows": [{"key": {"day": "d", "digest": "", "plan_digest": "", "db": "", "user": ""},
                              "stats": {"count": "many"}}]}],
    ids=["empty", "other-version", "bad-key", "bad-stats"],
)  # fmt: skip
def test_from_json_refuses(data: dict[str, object]) -> None:
    with pytest.raises(SlowLogFormatError):
        DailyAggregates.from_json(data)


# ------------------------------------------------------------------------ the column-wise file path
OPTION_SETS = [
    {},
    {"include_internal": True},
    {"redact": True},
    {"day_tz": UTC},
    {"day_tz": timezone(timedelta(hours=-5))},
    {"day_tz": ZoneInfo("Europe/Berlin")},
    {"since": parse_slow_log_time("2026-11-01T13:30:00Z"), "until": parse_slow_log_time("2026-11-03T00:00:00Z")},
    {"until": parse_slow_log_time("2026-11-02T00:00:00Z")},
]
OPTION_IDS = ["default", "internal", "redact", "utc", "utc-5", "berlin", "window", "until-midnight"]


@pytest.mark.parametrize("options", OPTION_SETS, ids=OPTION_IDS)
def test_file_path_equals_entry_path(generated: tuple[Path, GenerationResult], options: dict[str, object]) -> None:
    path, _ = generated
    columnar = aggregate_files([path], **options)
    by_entry = aggregate_entries_of_files([path], **options)
    assert columnar == by_entry
    assert columnar.parse_stats.entries == by_entry.parse_stats.entries
    assert (columnar.skipped_internal, columnar.skipped_by_time) == (
        by_entry.skipped_internal,
        by_entry.skipped_by_time,
    )


@pytest.mark.parametrize("options", [{}, {"day_tz": UTC}], ids=["as-written", "utc"])
def test_file_path_equals_entry_path_on_rotated_gzip(
    generated_rotated: tuple[Path, GenerationResult], options: dict[str, object]
) -> None:
    directory, _ = generated_rotated
    files = sorted(directory.iterdir())
    columnar = aggregate_files(files, **options)
    assert columnar == aggregate_entries_of_files(files, **options)
    assert columnar.parse_stats.incomplete == 1
    assert {s for _, st in columnar.rows() for s in st.instances} == {"tidb-2"}


@pytest.fixture(scope="module")
def generated_v85_east(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    """A TiDB v8.5 server's log (the generator's v8.5 profile) written in +08:00: its days are not UTC's."""
    out = tmp_path_factory.mktemp("v85") / "tidb-3" / "tidb-slow.log"
    result = generate(
        out, entries=3000, days=3, start=date(2026, 11, 1), seed=21, utc_offset="+08:00", truncated_tail=False,
        profile="v8.5",
    )  # fmt: skip
    return out, result


def test_the_nightly_harvests_utc_days_of_a_v85_log_take_the_fast_path(
    generated_v85_east: tuple[Path, GenerationResult], reader: str
) -> None:
    """The harvest's options (UTC days, a window) on v8.5 entries written in +08:00: with the C extension
    the group fold reads every entry (fast path), and every way of reading gives the entry-by-entry table."""
    path, result = generated_v85_east
    since = parse_slow_log_time("2026-11-01T00:00:00Z")
    options: dict[str, object] = {"day_tz": UTC, "since": since, "until": since + 86400 * 2, "include_internal": True}
    table = aggregate_files([path], **options)  # type: ignore[arg-type]
    assert table == aggregate_entries_of_files([path], **options)  # type: ignore[arg-type]
    st = table.parse_stats
    assert st.entries == result.entries == 3000 and table.skipped_by_time > 0
    if reader != "regex":
        assert st.fast_path == st.entries
    if reader == "c":
        assert DailyAggregates(**options)._groups() is not None  # type: ignore[arg-type]
    assert {k.day for k in table.stats} == {"2026-11-01", "2026-11-02"}


def test_totals_equal_the_generator_truth(generated: tuple[Path, GenerationResult]) -> None:
    path, result = generated
    table = aggregate_files([path], include_internal=True)
    per_digest = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    got = {k.digest: (s.count, s.query_time_ns, s.max_query_time_ns) for k, s in per_digest.items()}
    truth = {d: (t.count, t.query_time_ns, t.max_query_time_ns) for d, t in result.digests.items() if t.count}
    assert got == truth
    per_day = table.rollup(lambda k: DigestKey(k.day, k.digest, "", "", ""))
    for digest, t in result.digests.items():
        for day, (count, ns) in t.per_day.items():
            stats = per_day[DigestKey(day, digest, "", "", "")]
            assert (stats.count, stats.query_time_ns) == (count, ns)


def test_p95_is_within_one_percent_of_the_exact_value(generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    times: dict[DigestKey, list[float]] = {}
    for e in iter_entries(path):
        times.setdefault(DigestKey(e.day, e.digest, e.plan_digest, e.db, e.user), []).append(e.query_time)
    table = aggregate_files([path], include_internal=True)
    checked = 0
    for key, stats in table.stats.items():
        values = sorted(times[key])
        exact = values[max(1, math.ceil(0.95 * len(values) - 1e-9)) - 1]
        assert abs(stats.p95_query_time - exact) <= 0.01 * exact, key
        checked += 1
    assert checked == len(times)


def test_parallel_jobs_give_the_same_table(tmp_path: Path, generated: tuple[Path, GenerationResult]) -> None:
    path, _ = generated
    big = tmp_path / "tidb-x" / "tidb-slow.log"
    big.parent.mkdir()
    big.write_bytes(path.read_bytes() * 2)
    serial = aggregate_files([big], jobs=1, include_internal=True)
    parallel = aggregate_files([big], jobs=3, include_internal=True)
    assert parallel == serial
    assert parallel.parse_stats.entries == serial.parse_stats.entries == 6000


@pytest.mark.parametrize("jobs", [1, 3])
def test_each_file_is_told_once_it_is_read(
    tmp_path: Path, generated: tuple[Path, GenerationResult], reference_select: str, jobs: int
) -> None:
    path, _ = generated
    big = tmp_path / "tidb-x" / "tidb-slow.log"  # cut into ranges with jobs > 1: told once, after its last range
    big.parent.mkdir()
    big.write_bytes(path.read_bytes() * 2)
    small = tmp_path / "tidb-y" / "tidb-slow.log"
    small.parent.mkdir()
    small.write_text(reference_select)
    told: list[Path] = []
    table = aggregate_files([big, tmp_path / "missing.log", small], jobs=jobs, on_file=told.append)
    assert sorted(told) == sorted([big, tmp_path / "missing.log", small])
    assert table.parse_stats.bad_files == 1


def test_instances(tmp_path: Path, reference_select: str) -> None:
    a = tmp_path / "tidb-a" / "tidb-slow.log"
    b = tmp_path / "tidb-b" / "tidb-slow.log"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text(reference_select)
    assert default_instance(a) == "tidb-a"
    ((_, stats),) = aggregate_files([a, b]).rows()
    assert stats.instances == {"tidb-a", "tidb-b"} and stats.count == 2
    ((_, named),) = aggregate_files([a, b], instance=lambda p: p.parent.name.upper()).rows()
    assert named.instances == {"TIDB-A", "TIDB-B"}
    ((_, fixed),) = aggregate_files([a, b], instance="tidb").rows()
    assert fixed.instances == {"tidb"}


def test_add_rows_across_instances_keeps_them_apart(reference_select: str) -> None:
    table = DailyAggregates()
    from tidbops.slowlog.parser import iter_row_batches

    for name in ("x", "y"):
        for rows in iter_row_batches(io.BytesIO(reference_select.encode())):
            table.add_rows(rows, name)
    ((_, stats),) = table.rows()
    assert stats.instances == {"x", "y"} and stats.count == 2


def test_helpers() -> None:
    assert iso_time(parse_slow_log_time("2026-11-01T10:00:00.5Z")) == "2026-11-01T10:00:00.500Z"
    assert iso_time(math.inf) == "-"
    empty = DigestStats()
    assert (empty.avg_query_time, empty.p95_query_time, empty.to_json()["first_seen"]) == (0.0, 0.0, None)
    table = aggregate_entries([entry(), entry(day="2026-11-02")])
    assert table.days() == ["2026-11-01", "2026-11-02"] and len(table) == 2
    assert list(table.for_day("2026-11-02")) == [DigestKey("2026-11-02", "d1", "p1", "shop", "app")]
    assert [k for k, _ in table] == [k for k, _ in table.rows()]
    assert date.fromisoformat(table.days()[0])


@pytest.mark.parametrize(
    ("sql", "redacted"),
    [
        ("SELECT * FROM t_1 WHERE a = 'x' AND b IN (1, 2.5);", "SELECT * FROM t_1 WHERE a = ? AND b IN (?, ?);"),
        ("SELECT a FROM t WHERE s = 'o''hara' OR s = \"q\\\"x\";", "SELECT a FROM t WHERE s = ? OR s = ?;"),
        ("UPDATE t SET a=? WHERE id=? [arguments: (3, 1001)];", "UPDATE t SET a=? WHERE id=?;"),
        ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ `c1` FROM db1.t2;", "SELECT /*+ MAX_EXECUTION_TIME(1000) */ `c1` FROM db1.t2;"),
        ("SELECT 1 /* trace:42 */ FROM t;", "SELECT ?   FROM t;"),
        ("SELECT x FROM t WHERE h = 0x1F AND b = X'ab' AND c = b'01' AND e = 1e3;",
         "SELECT x FROM t WHERE h = ? AND b = ? AND c = ? AND e = ?;"),
        ("SELECT x FROM t WHERE v = -5;", "SELECT x FROM t WHERE v = -?;"),
        ("SELECT x FROM t WHERE m = ‹secret›;", "SELECT x FROM t WHERE m = ?;"),
        ("INSERT INTO t VALUES (1, 'abc(len:5000);", "INSERT INTO t VALUES (?, ?(len:5000);"),
        ("SELECT _utf8mb4'caf\ufffd', N'x' FROM dual;", "SELECT ?, ? FROM dual;"),
    ],
    ids=["strings-and-numbers", "escaped-quotes", "prepared-arguments", "hint-and-identifiers", "comment",
         "hex-bit-exponent", "negative", "marker-mode", "truncated-string", "charset-introducer"],
)  # fmt: skip
def test_redact_sql(sql: str, redacted: str) -> None:
    from tidbops.slowlog.redact import redact_sql

    assert redact_sql(sql) == redacted


def test_implausible_times_are_rejected_not_summed(tmp_path: Path, reference_select: str) -> None:
    """``Query_time: -1`` was subtracted from the totals and ``1e308`` lost the whole table to an
    OverflowError: both are rejected entries now, counted, and the other entries are summed."""
    path = tmp_path / "tidb-1" / "tidb-slow.log"
    path.parent.mkdir()
    bad = [reference_select.replace("# Query_time: 1.527627037", f"# Query_time: {v}") for v in ("-1", "1e308")]
    bad.append(reference_select.replace("Process_time: 2.07", "Process_time: -2.07"))
    path.write_text(reference_select + "".join(bad) + reference_select)
    table = aggregate_files([path])
    ((_, stats),) = table.rows()
    assert stats.count == 2 and stats.query_time_ns == 2 * 1_527_627_037
    assert stats.process_time_ns == 2 * 2_070_000_000
    assert (table.parse_stats.entries, table.parse_stats.malformed) == (2, 3)


def test_sums_of_the_largest_values_stay_exact(tmp_path: Path, reference_select: str) -> None:
    """The largest values a canonical entry may hold, many times over: the C fold's 64-bit sums overflow
    and leave the group to Python's integers; nothing becomes inf and nothing raises."""
    biggest = (
        reference_select.replace("# Query_time: 1.527627037", "# Query_time: 999999.999999999")
        .replace("Process_time: 2.07", "Process_time: 999999.999999999")
        .replace("Process_keys: 1310720", "Process_keys: 999999999999999999")
    )
    path = tmp_path / "tidb-1" / "tidb-slow.log"
    path.parent.mkdir()
    path.write_text(biggest * 20_000)
    table = aggregate_files([path])
    ((_, stats),) = table.rows()
    assert stats.count == 20_000 and table.parse_stats.fast_path == 20_000
    assert stats.query_time_ns == stats.process_time_ns == 20_000 * 999_999_999_999_999
    assert stats.process_keys == 20_000 * 999_999_999_999_999_999
    assert math.isfinite(stats.total_query_time) and math.isfinite(stats.avg_query_time)


@pytest.mark.parametrize("jobs", [1, 2], ids=["serial", "parallel"])
def test_rejected_entries_are_reported_by_file_and_line(tmp_path: Path, reference_select: str, jobs: int) -> None:
    hostile = reference_select.replace("# Digest: 50a2e3", "# Digest: x' RESOURCE GROUP `default 50a2e3")
    lines = reference_select.count("\n")
    path = tmp_path / "tidb-1" / "tidb-slow.log"
    path.parent.mkdir()
    path.write_text(reference_select * 400 + hostile + reference_select * 400 + hostile)  # > 1 MiB: ranges
    table = aggregate_files([path], jobs=jobs)
    assert table.parse_stats.malformed == 2 and table.parse_stats.entries == 800
    for problem in table.parse_stats.problems:
        assert problem.startswith(f"{path}:") and "Digest is not 64 lower-case hex characters" in problem
    assert sorted(int(p.split(":")[1]) for p in table.parse_stats.problems) == [400 * lines + 1, 801 * lines + 1]


def test_a_broken_gzip_file_keeps_the_other_files(
    tmp_path: Path, reference_select: str, reference_commit: str, broken_gzip: Callable[[str, bytes], bytes]
) -> None:
    """A truncated ``.gz`` keeps what was decompressed before the cut (the prefix of what TiDB wrote, as
    for a plain file cut mid-write); a corrupt one (bad data, bad CRC, not gzip) is dropped whole, since
    nothing decompressed from it can be trusted. Either is one bad file; the other files count."""
    data = ((reference_select + reference_commit) * 200).encode()
    directory = tmp_path / "tidb-1"
    directory.mkdir()
    truncated = directory / "tidb-slow-2026-11-18T00-00-00.000.log.gz"
    truncated.write_bytes(broken_gzip("truncated", data))
    corrupt = directory / "tidb-slow-2026-11-19T00-00-00.000.log.gz"
    corrupt.write_bytes(broken_gzip("bad-crc", data))
    good = directory / "tidb-slow.log"
    good.write_bytes(data)
    table = aggregate_files([truncated, corrupt, good])
    st = table.parse_stats
    assert (st.files, st.bad_files) == (3, 2)
    assert 400 < st.entries < 800 and st.discarded == 400 and st.incomplete == 1
    assert sum(s.count for _, s in table.rows()) == st.entries
    assert [p.split(": ", 2)[:2] for p in st.problems] == [
        [str(truncated), "truncated gzip file"],
        [str(corrupt), "corrupt gzip file"],
    ]
    alone = aggregate_files([corrupt])
    assert alone.rows() == [] and alone.parse_stats.bad_files == 1


@pytest.mark.parametrize("jobs", [1, 3], ids=["serial", "parallel"])
def test_an_unreadable_file_is_a_bad_file(tmp_path: Path, reference_select: str, jobs: int) -> None:
    good = tmp_path / "tidb-1" / "tidb-slow.log"
    good.parent.mkdir()
    good.write_text(reference_select * 1000)
    table = aggregate_files([tmp_path / "missing.log", good, tmp_path], jobs=jobs)
    st = table.parse_stats
    assert (st.entries, st.files, st.bad_files) == (1000, 3, 2)
    assert [p.split(": ", 2)[:2] for p in st.problems] == [
        [str(tmp_path / "missing.log"), "cannot read"],
        [str(tmp_path), "cannot read"],
    ]


@pytest.mark.parametrize(
    ("sql", "without"),
    [
        ("SELECT ? [arguments: (1)];", "SELECT ?;"), ("SELECT ? [arguments: (1)]", "SELECT ?"),
        ("SELECT ?  \t[arguments: ([x], 2)] ; ", "SELECT ?  \t[arguments: ([x], 2)] ; "),
        ("SELECT ? [arguments: (1)];;", "SELECT ? [arguments: (1)];;"), ("SELECT ? [arguments: (1)]\n", "SELECT ?\n"),
        ("SELECT '[arguments: x' [arguments: (1)];", "SELECT ';"), ("SELECT ?;", "SELECT ?;"),
        ("[arguments: ]", ""), ("SELECT ] [arguments: (1)", "SELECT ] [arguments: (1)"),
    ],
)  # fmt: skip
def test_drop_arguments_as_the_expression_did(sql: str, without: str) -> None:
    import re

    from tidbops.slowlog.redact import drop_arguments

    assert drop_arguments(sql) == without == re.compile(r"\s*\[arguments: .*\](?=;?\s*\Z)", re.DOTALL).sub("", sql)


@pytest.mark.parametrize(
    "sql",
    [
        "[arguments: (" * 60_000,
        "SELECT ? " + "[arguments: (1)] " * 40_000 + "x;",
        "/*+" * 100_000,
        "'" + "''" * 100_000,
    ],
    ids=["many-markers", "markers-then-text", "unclosed-hints", "quotes"],
)
def test_redaction_takes_linear_time_on_hostile_text(sql: str) -> None:
    """A forged entry's SQL must not stall a harvest or a digest (the old expression took minutes)."""
    import time

    from tidbops.slowlog.redact import redact_sql

    started = time.perf_counter()
    redact_sql(sql)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("field", ["first_seen", "last_seen", "sample_time"])
@pytest.mark.parametrize("value", [1e300, -1e300, 4e10, float("nan")], ids=["huge", "negative", "year-3237", "nan"])
def test_stored_times_outside_the_years_of_slow_logs_are_refused(field: str, value: float) -> None:
    """A stored aggregate (the catalog's JSON) with a time no datetime can show would break the report."""
    data = aggregate_entries([entry()]).rows()[0][1].to_json()
    with pytest.raises(SlowLogFormatError):
        DigestStats.from_json({**data, field: value})
    assert iso_time(value) == "-"
