"""Slow-query history in the catalog (SQLite) and the SQL source's queries and row mapping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tidbops.catalog.store import Catalog
from tidbops.slowlog.aggregate import DailyAggregates
from tidbops.slowlog.errors import SlowLogFormatError
from tidbops.slowlog.harvest import aggregate_sql, harvest_window, primary_day, rotated_time
from tidbops.slowlog.parser import SlowQueryEntry
from tidbops.slowlog.sql_source import columns_for, quote_table, row_to_entry, window_queries
from tidbops.slowlog.store import (
    SlowQueryWatermarkError,
    forget_cluster,
    get_watermark,
    key_part,
    load_report,
    load_with_baseline,
    save_harvest,
    save_report,
    set_watermark,
)

pytestmark = pytest.mark.unit

D0 = datetime(2026, 11, 10, tzinfo=UTC)


def entry(when: datetime, qt: float, digest: str = "d1" * 32, plan: str = "a1" * 32) -> SlowQueryEntry:
    return SlowQueryEntry(
        time=when.timestamp(), day=when.date().isoformat(), utc_offset=0, query_time=qt, digest=digest,
        plan_digest=plan, db="shop", user="app", host="10.0.0.1", sql=f"SELECT {qt};",
    )  # fmt: skip


def aggs(entries: list[SlowQueryEntry], start: datetime, end: datetime) -> DailyAggregates:
    table = DailyAggregates(since=start.timestamp(), until=end.timestamp(), day_tz=UTC)
    for e in entries:
        table.add_entry(e, "tidb-0")
    return table


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.migrate()
    return cat


def count_on(catalog: Catalog, day: str, digest: str = "d1" * 32) -> int:
    rows = load_with_baseline(catalog, "dev", day, 0)
    return sum(s.count for k, s in rows.stats.items() if k.digest == digest)


# ------------------------------------------------------------------------------------------ store


def test_whole_day_reharvest_replaces_instead_of_doubling(catalog: Catalog) -> None:
    start, end = D0, D0 + timedelta(days=2)
    batch = [entry(D0 + timedelta(hours=h), 1.0) for h in range(30)]
    first = save_harvest(catalog, "dev", "sql:t", aggs(batch, start, end), start=start, end=end)
    assert first.days_replaced == ("2026-11-10", "2026-11-11") and first.entries == 30
    again = save_harvest(catalog, "dev", "sql:t", aggs(batch, start, end), start=start, end=end)
    assert again.previous_watermark == end
    assert count_on(catalog, "2026-11-10") == 24 and count_on(catalog, "2026-11-11") == 6
    assert get_watermark(catalog, "dev", "sql:t") == end


def test_partial_days_merge_only_new_entries(catalog: Catalog) -> None:
    mid = D0 + timedelta(hours=12)
    save_harvest(catalog, "dev", "s", aggs([entry(D0 + timedelta(hours=1), 1.0)], D0, mid), start=D0, end=mid)
    later = mid + timedelta(hours=6)
    saved = save_harvest(
        catalog, "dev", "s", aggs([entry(mid + timedelta(hours=1), 3.0)], mid, later), start=mid, end=later
    )
    assert saved.days_merged == ("2026-11-10",) and saved.previous_watermark == mid
    rows = load_with_baseline(catalog, "dev", "2026-11-10", 0)
    (stats,) = rows.stats.values()
    assert stats.count == 2 and stats.max_query_time == 3.0 and stats.sample_sql == "SELECT 3.0;"
    # the same partial window again would count its entries twice: refused, nothing written
    with pytest.raises(SlowQueryWatermarkError, match="before the watermark"):
        save_harvest(
            catalog, "dev", "s", aggs([entry(mid + timedelta(hours=1), 3.0)], mid, later), start=mid, end=later
        )
    assert count_on(catalog, "2026-11-10") == 2 and get_watermark(catalog, "dev", "s") == later


def test_empty_whole_day_window_clears_the_day(catalog: Catalog) -> None:
    end = D0 + timedelta(days=1)
    save_harvest(catalog, "dev", "s", aggs([entry(D0 + timedelta(hours=2), 1.0)], D0, end), start=D0, end=end)
    save_harvest(catalog, "dev", "s", aggs([], D0, end), start=D0, end=end)
    assert count_on(catalog, "2026-11-10") == 0


def test_aggregates_outside_the_window_are_refused(catalog: Catalog) -> None:
    table = aggs([entry(D0 + timedelta(days=3), 1.0)], D0, D0 + timedelta(days=5))
    with pytest.raises(ValueError, match="outside the window"):
        save_harvest(catalog, "dev", "s", table, start=D0, end=D0 + timedelta(days=1))


def test_baseline_loads_the_day_and_seven_before(catalog: Catalog) -> None:
    end = D0 + timedelta(days=10)
    batch = [entry(D0 + timedelta(days=d, hours=1), 1.0 + d) for d in range(10)]
    save_harvest(catalog, "dev", "s", aggs(batch, D0, end), start=D0, end=end)
    rows = load_with_baseline(catalog, "dev", "2026-11-19")
    assert sorted({k.day for k in rows.stats}) == [f"2026-11-{d}" for d in range(12, 20)]
    assert load_with_baseline(catalog, "other", "2026-11-19").stats == {}


def test_watermarks_are_per_cluster_and_source(catalog: Catalog) -> None:
    assert get_watermark(catalog, "dev", "a") is None
    set_watermark(catalog, "dev", "a", D0)
    set_watermark(catalog, "dev", "a", D0 + timedelta(hours=1))
    set_watermark(catalog, "uat", "a", D0)
    assert get_watermark(catalog, "dev", "a") == D0 + timedelta(hours=1)
    assert get_watermark(catalog, "dev", "b") is None and get_watermark(catalog, "uat", "a") == D0
    with pytest.raises(ValueError, match="has no time zone"):
        set_watermark(catalog, "dev", "a", datetime(2026, 1, 1))


def test_reports_save_replace_load_and_forget(catalog: Catalog) -> None:
    save_report(catalog, "dev", "2026-11-10", {"day": "2026-11-10", "top": [1]})
    save_report(catalog, "dev", "2026-11-10", {"day": "2026-11-10", "top": [2]})
    assert load_report(catalog, "dev", "2026-11-10") == {"day": "2026-11-10", "top": [2]}
    assert load_report(catalog, "dev", "2026-11-11") is None
    set_watermark(catalog, "dev", "a", D0)
    assert forget_cluster(catalog, "dev") == 2
    assert load_report(catalog, "dev", "2026-11-10") is None and get_watermark(catalog, "dev", "a") is None


def test_harvest_window_first_time_and_after() -> None:
    until = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    assert harvest_window(None, until) == (datetime(2026, 11, 12, tzinfo=UTC), until)
    wm = datetime(2026, 11, 19, 2, 30, tzinfo=UTC)
    assert harvest_window(wm, until) == (wm, until)
    assert harvest_window(until, wm) == (until, until)  # nothing new: an empty window
    assert primary_day(["2026-11-19", "2026-11-20"], until) == "2026-11-19"
    assert rotated_time("tidb-slow-2026-11-20T00-00-00.000.log.gz") == datetime(2026, 11, 20, tzinfo=UTC)
    assert rotated_time("tidb-slow.log") is None


# ------------------------------------------------------------------------------------------ SQL source


@pytest.mark.parametrize(
    ("table", "has_instance"),
    [
        pytest.param("INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY", True, id="cluster-table"),
        pytest.param("INFORMATION_SCHEMA.SLOW_QUERY", False, id="one-node"),
        pytest.param("tidbops_slowlog.cluster_slow_query", True, id="playground"),
    ],
)
def test_columns_for(table: str, has_instance: bool) -> None:
    cols = columns_for(table)
    assert ("INSTANCE" in cols) is has_instance
    assert {"Time", "Digest", "Plan_digest", "Query_time", "Query"} <= set(cols) and "Plan" not in cols


@pytest.mark.parametrize("bad", ["slow_query", "a.b.c", "a.`b`", "x; DROP TABLE y.z", "a.b c"])
def test_quote_table_refuses_anything_but_schema_dot_table(bad: str) -> None:
    with pytest.raises(ValueError, match=r"schema\.table"):
        quote_table(bad)


def test_window_queries_are_hourly_aligned_bounded_and_parameterised() -> None:
    start = datetime(2026, 11, 10, 22, 30, tzinfo=UTC)
    qs = window_queries("INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY", start, datetime(2026, 11, 11, 1, 0, tzinfo=UTC))
    assert [q.params for q in qs] == [
        ("2026-11-10 22:30:00.000000", "2026-11-10 23:00:00.000000"),
        ("2026-11-10 23:00:00.000000", "2026-11-11 00:00:00.000000"),
        ("2026-11-11 00:00:00.000000", "2026-11-11 01:00:00.000000"),
    ]
    sql = qs[0].sql
    assert sql.startswith("SELECT `Time`, `Digest`") and "`INSTANCE`" in sql
    assert "FROM `INFORMATION_SCHEMA`.`CLUSTER_SLOW_QUERY`" in sql
    assert "WHERE `Time` >= %s AND `Time` < %s AND `Is_internal` = 0" in sql
    assert window_queries("a.b", start, start) == []
    # bounds in another zone are converted to UTC (the session's zone)
    other = datetime(2026, 11, 11, 7, 30, tzinfo=__import__("datetime").timezone(timedelta(hours=8)))
    assert window_queries("a.b", other, other + timedelta(minutes=10))[0].params[0] == "2026-11-10 23:30:00.000000"


def test_row_to_entry_maps_tidb_columns() -> None:
    row: dict[str, Any] = {
        "Time": datetime(2026, 11, 10, 23, 59, 59, 500000), "Digest": "ab" * 32, "Plan_digest": "0f" * 32, "DB": "shop",
        "User": "app", "Host": "10.0.1.15", "Query_time": Decimal("1.527627037"), "Process_time": 2.07,
        "Wait_time": None, "Backoff_time": 0, "Process_keys": 1310720, "Total_keys": "1310733", "Result_rows": 250,
        "Mem_max": 525211, "Succ": 0, "Query": "SELECT 1", "INSTANCE": "10.0.2.1:10080",
    }  # fmt: skip
    e, instance = row_to_entry(row)
    assert instance == "10.0.2.1:10080"
    assert e.time == datetime(2026, 11, 10, 23, 59, 59, 500000, tzinfo=UTC).timestamp()
    assert (e.day, e.utc_offset, e.query_time, e.wait_time) == ("2026-11-10", 0, 1.527627037, 0.0)
    assert (e.digest, e.plan_digest, e.db, e.user, e.host) == ("ab" * 32, "0f" * 32, "shop", "app", "10.0.1.15")
    assert (e.process_keys, e.total_keys, e.result_rows, e.mem_max) == (1310720, 1310733, 250, 525211)
    assert e.succ is False and e.is_internal is False and e.sql == "SELECT 1;"


class FakeCursor:
    def __init__(self, rows_by_start: dict[str, list[tuple[Any, ...]]]) -> None:
        self.rows_by_start = rows_by_start
        self.executed: list[tuple[str, Any]] = []
        self.pending: list[tuple[Any, ...]] = []

    def execute(self, query: str, args: Any = None) -> None:
        self.executed.append((query, args))
        self.pending = list(self.rows_by_start.get(args[0], [])) if args else []

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


def test_aggregate_sql_pins_utc_and_reads_every_window() -> None:
    start = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)
    cols = columns_for("a.cluster_x")

    def row(when: datetime, qt: float) -> tuple[Any, ...]:
        values = {"Time": when.replace(tzinfo=None), "Digest": "d" * 64, "Plan_digest": "e" * 64, "Query_time": qt,
                  "Query": "SELECT 1;", "INSTANCE": "i1"}  # fmt: skip
        return tuple(values.get(c) for c in cols)

    cursor = FakeCursor({
        "2026-11-10 23:00:00.000000": [row(start + timedelta(minutes=5), 1.0)],
        "2026-11-11 00:00:00.000000": [row(start + timedelta(minutes=70), 2.0), row(start + timedelta(minutes=80), 4.0)],
    })  # fmt: skip
    table = aggregate_sql(cursor, "a.cluster_x", start, start + timedelta(hours=2), window=timedelta(hours=1))
    assert cursor.executed[0] == ("SET time_zone = '+00:00'", None)
    assert len(cursor.executed) == 3
    by_day = {k.day: s for k, s in table.rows()}
    assert by_day["2026-11-10"].count == 1 and by_day["2026-11-11"].count == 2
    assert by_day["2026-11-11"].max_query_time == 4.0 and by_day["2026-11-11"].instances == {"i1"}


@pytest.mark.parametrize(
    ("name", "when"),
    [
        ("tidb-slow-2026-11-20T00-00-00.000.log.gz", datetime(2026, 11, 20, tzinfo=UTC)),
        ("tidb_slow_query-2026-11-20T08-30-00.000.log", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("slowlog-2026-11-20T00-00-01.000.gz", datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC)),
        ("tidb_slow_query.log", None),
        ("slowlog", None),
        ("tidb-2026-11-20T00-00-00.000.log", None),
    ],
)
def test_rotated_time_of_every_deployment_name(name: str, when: datetime | None) -> None:
    assert rotated_time(name) == when


def test_download_takes_the_slow_logs_of_every_deployment_name(tmp_path: Path) -> None:
    from tidbops.slowlog.harvest import download_slow_logs
    from tidbops.storage import LocalStorage

    bucket = tmp_path / "bucket"
    names = {
        "tidb-0/tidb-slow.log": True, "tidb-1/tidb_slow_query.log": True,
        "tidb-1/tidb_slow_query-2026-11-19T00-00-00.000.log.gz": True,
        "tidb-1/tidb_slow_query-2026-11-01T00-00-00.000.log.gz": False,  # rotated long before the window
        "tidb-2/slowlog": True, "tidb-2/slowlog-2026-11-19T00-00-00.000": True, "tidb-2/tidb.log": False,
        "tidb-2/tidb_stderr.log": False,
    }  # fmt: skip
    for rel in names:
        (bucket / rel).parent.mkdir(parents=True, exist_ok=True)
        (bucket / rel).write_text("x")
    got = download_slow_logs(LocalStorage(bucket), tmp_path / "dest", datetime(2026, 11, 19, 12, tzinfo=UTC))
    assert [instance for _, instance in got] == ["tidb-0", "tidb-1", "tidb-2"]
    copied = sorted(str(p.relative_to(tmp_path / "dest")) for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert copied == sorted(rel for rel, wanted in names.items() if wanted)


# ------------------------------------------------------------------------------ SQL rows checked like files
HEX = "c" * 64
GOOD_ROW: dict[str, Any] = {
    "Time": datetime(2026, 11, 10, 1, 2, 3), "Digest": HEX, "Plan_digest": "", "Query_time": 1.5,
    "Query": "SELECT 1", "INSTANCE": "tidb-0",
}  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("Digest", "x' RESOURCE GROUP `default"), ("Digest", HEX.upper()), ("Digest", HEX[:63]), ("Digest", None),
        ("Digest", ""), ("Digest", b"x'"), ("Plan_digest", "' OR 1=1 --"), ("Plan_digest", HEX + "0"),
        ("Query_time", -1), ("Query_time", float("nan")), ("Query_time", float("inf")), ("Query_time", 1e308),
        ("Query_time", Decimal("-0.5")), ("Query_time", Decimal("Infinity")), ("Query_time", "1e400"),
        ("Query_time", None), ("Query_time", "fast"), ("Query_time", True), ("Process_time", -2.0),
        ("Wait_time", float("nan")), ("Backoff_time", 1e30), ("Process_keys", -1), ("Total_keys", 10**19),
        ("Result_rows", 1.5), ("Mem_max", "lots"), ("Time", "yesterday"), ("Time", None),
        ("Time", datetime(9999, 12, 31, 23, 0)), ("Time", datetime(1, 1, 1)),
    ],
)  # fmt: skip
def test_sql_rows_with_values_tidb_never_writes_are_refused(column: str, value: Any) -> None:
    with pytest.raises(SlowLogFormatError, match=column):
        row_to_entry({**GOOD_ROW, column: value})


@pytest.mark.parametrize(
    ("column", "value", "field", "expected"),
    [
        ("Plan_digest", None, "plan_digest", ""), ("Plan_digest", HEX, "plan_digest", HEX),
        ("Digest", HEX.encode(), "digest", HEX), ("Query_time", Decimal("1.527627037"), "query_time", 1.527627037),
        ("Query_time", "0.5", "query_time", 0.5), ("Process_keys", Decimal(7), "process_keys", 7),
        ("Wait_time", None, "wait_time", 0.0), ("Mem_max", "12", "mem_max", 12),
    ],
)  # fmt: skip
def test_sql_rows_that_are_fine(column: str, value: Any, field: str, expected: Any) -> None:
    entry, _ = row_to_entry({**GOOD_ROW, column: value})
    assert getattr(entry, field) == expected


def test_a_bad_sql_row_is_counted_and_the_harvest_goes_on() -> None:
    start = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)
    cols = columns_for("a.cluster_x")

    def row(minutes: int, digest: str, qt: Any) -> tuple[Any, ...]:
        values = {**GOOD_ROW, "Time": (start + timedelta(minutes=minutes)).replace(tzinfo=None), "Digest": digest,
                  "Query_time": qt}  # fmt: skip
        return tuple(values.get(c) for c in cols)

    cursor = FakeCursor({"2026-11-10 23:00:00.000000": [
        row(1, HEX, 1.0), row(2, "x' RESOURCE GROUP `default", 1.0), row(3, HEX, -1), row(4, HEX, 2.0),
    ]})  # fmt: skip
    table = aggregate_sql(cursor, "a.cluster_x", start, start + timedelta(hours=1))
    ((_, stats),) = table.rows()
    assert stats.count == 2 and stats.query_time_ns == 3_000_000_000
    st = table.parse_stats
    assert (st.entries, st.malformed) == (2, 2)
    assert st.problems[0].startswith(
        "a.cluster_x rows 2026-11-10 23:00:00.000000 .. 2026-11-11 00:00:00.000000, row 2: "
    )
    assert "Digest" in st.problems[0] and "Query_time" in st.problems[1]


def test_stored_rows_with_a_digest_that_is_not_hex_are_left_out(catalog: Catalog) -> None:
    """What the history store gives back is checked too: a row that is not 64 hex (written by an older
    version, or by hand) never reaches a report, hence never a guardrail."""
    from sqlalchemy import insert

    from tidbops.catalog.schema import slow_query_daily, write_transaction
    from tidbops.slowlog.store import load_aggregates

    end = D0 + timedelta(days=1)
    save_harvest(catalog, "dev", "s", aggs([entry(D0 + timedelta(hours=2), 1.0, HEX, "")], D0, end), start=D0, end=end)
    good = load_aggregates(catalog, "dev", "2026-11-10", "2026-11-10")
    (key, stats) = next(iter(good.stats.items()))
    with write_transaction(catalog.engine) as conn:
        for digest, plan, data in [
            ("x' RESOURCE GROUP `default", "", stats.to_json()),
            (HEX.upper(), "", stats.to_json()),
            ("d" * 64, "p1", stats.to_json()),
            ("e" * 64, "", {**stats.to_json(), "count": -5}),
            ("f" * 64, "", {**stats.to_json(), "first_seen": "soon"}),
        ]:
            conn.execute(insert(slow_query_daily).values(
                cluster="dev", day="2026-11-10", digest=digest, plan_digest=plan, db="shop", user="app", count=1,
                total_query_time=1, avg_query_time=1, p95_query_time=1, max_query_time=1, process_time=0,
                wait_time=0, backoff_time=0, process_keys=0, total_keys=0, result_rows=0, max_mem=0, errors=0,
                sample_sql="x", instances=[], stats=data, updated_at=D0,
            ))  # fmt: skip
    table = load_aggregates(catalog, "dev", "2026-11-10", "2026-11-10")
    assert list(table.stats) == [key]
    assert table.parse_stats.malformed == 5 and all("dev/2026-11-10" in p for p in table.parse_stats.problems)


def test_sums_beyond_64_bits_are_stored(catalog: Catalog) -> None:
    """The metric columns are BIGINT: a sum past 2^63 - 1 is stored saturated there, exactly in ``stats``."""
    from tidbops.slowlog.store import load_aggregates

    end = D0 + timedelta(days=1)
    many = [replace(entry(D0 + timedelta(minutes=i), 1.0, HEX, ""), process_keys=10**18 - 1) for i in range(20)]
    save_harvest(catalog, "dev", "s", aggs(many, D0, end), start=D0, end=end)
    ((_, stats),) = load_aggregates(catalog, "dev", "2026-11-10", "2026-11-10").rows()
    assert stats.process_keys == 20 * (10**18 - 1)


def test_db_and_user_longer_than_their_key_columns_are_cut_distinctly(catalog: Catalog) -> None:
    """TiDB's names fit the 64-character key columns; a forged log's may not (strict MySQL would refuse)."""
    long_a, long_b = "a" * 70 + "x", "a" * 70 + "y"
    start, end = D0, D0 + timedelta(hours=12)
    rows = [replace(entry(D0 + timedelta(hours=1), 1.0), db=long_a, user="u" * 100),
            replace(entry(D0 + timedelta(hours=2), 2.0), db=long_b)]  # fmt: skip
    save_harvest(catalog, "dev", "files:x", aggs(rows, start, end), start=start, end=end)
    # a later part of the same day merges into the same (cut) keys instead of adding rows
    later = [replace(entry(D0 + timedelta(hours=12, minutes=30), 3.0), db=long_a, user="u" * 100)]
    save_harvest(catalog, "dev", "files:x", aggs(later, end, end + timedelta(hours=1)), start=end,
                 end=end + timedelta(hours=1))  # fmt: skip
    stored = load_with_baseline(catalog, "dev", "2026-11-10", 0).stats
    assert sorted(len(k.db) for k in stored) == [64, 64] and all(len(k.user) <= 64 for k in stored)
    assert len({k.db for k in stored}) == 2 and sum(s.count for s in stored.values()) == 3
    assert key_part("shop") == "shop" and key_part(long_a).startswith("a" * 55 + "~")
