"""compare_table's two ways (a thread per side, or one side after the other) against an in-memory table.

The stand-in server answers the statements compare_table sends on a one-column key (the target's
``MIN(id)`` and ``lead_sql``: count, checksum and largest key of the next ``LIMIT n`` rows after a bound;
``COUNT(*)``/checksum over ``(lower, upper]``; and the key walk's ``LIMIT 1 OFFSET n`` of
``split_chunks``) from a sorted list of rows, so the threading is tested here quickly and
deterministically; tests/integration/validate/ runs the same on real MariaDB, composite keys included.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from typing import Any

import pytest

from tidbops.validate.fingerprint import (
    FingerprintError,
    chunk_sum,
    compare_table,
    iter_chunk_sums,
    lead_sql,
    split_chunks,
)
from tidbops.validate.schema import Column, Index, TableDef
from tidbops.validate.sql import Dialect

pytestmark = pytest.mark.unit

TABLE = TableDef(
    "shop",
    "orders",
    (Column("id", 1, "bigint", False), Column("note", 2, "varchar(64)", True)),
    (Index("PRIMARY", True, ("id",)),),
)
OFFSET = re.compile(r"LIMIT 1 OFFSET (\d+)$")
LEAD = re.compile(r"ORDER BY `id` LIMIT (\d+)\) AS tidbops_chunk$")


class TableServer:
    """One server's copy of ``shop.orders``: rows ``(id, note)`` by id. A cursor answers from it; ``fail_at``
    makes its n-th statement raise (as a driver does when the connection drops); ``delay`` slows each one."""

    def __init__(self, rows: dict[int, str | None], *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.rows = dict(sorted(rows.items()))
        self.fail_at, self.delay = fail_at, delay
        self.statements = 0
        self.sums = 0
        self.queries: list[str] = []
        self.started: list[float] = []  # when each statement came (monotonic)
        self.threads: set[str] = set()
        self._row: tuple[Any, ...] | None = None

    def execute(self, query: str, args: Any = None) -> None:
        self.statements += 1
        self.started.append(time.monotonic())
        self.queries.append(query)
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_at is not None and self.statements >= self.fail_at:
            raise ConnectionError(f"(2013, 'Lost connection to server during query') at statement {self.statements}")
        keys = list(self.rows)
        if query == "SELECT MIN(`id`) FROM `shop`.`orders`":
            self._row = (min(keys, default=None),)
            return
        lower, upper = self._bounds(query, list(args or []))
        inside = [k for k in keys if (lower is None or k > lower) and (upper is None or k <= upper)]
        if m := OFFSET.search(query):
            n = int(m[1])
            self._row = (inside[n],) if n < len(inside) else None
            return
        if m := LEAD.search(query):
            assert query.startswith("SELECT COUNT(*), COALESCE(BIT_XOR(tidbops_crc), 0), MAX(tidbops_key) FROM ("), (
                query
            )
            self.sums += 1
            first = inside[: int(m[1])]
            self._row = (len(first), self._checksum(first), max(first, default=None))
            return
        assert query.startswith("SELECT COUNT(*), COALESCE(BIT_XOR("), query
        self.sums += 1
        self._row = (len(inside), self._checksum(inside))

    def _checksum(self, keys: list[int]) -> int:
        checksum = 0
        for k in keys:
            checksum ^= zlib.crc32(f"{k},{self.rows[k]}".encode())
        return checksum

    @staticmethod
    def _bounds(query: str, args: list[Any]) -> tuple[int | None, int | None]:
        lower = args.pop(0) if "> (%s)" in query else None
        upper = args.pop(0) if "<= (%s)" in query else None
        return lower, upper

    def fetchone(self) -> Any:
        return self._row

    def fetchall(self) -> Any:
        return [self._row]


def rows(n: int) -> dict[int, str | None]:
    return {i: (None if i % 7 == 0 else f"n{i}") for i in range(1, n + 1)}


def compare(source: TableServer, target: TableServer, **kwargs: Any) -> Any:
    return compare_table(source, target, TABLE, at=None, source_dialect=Dialect.MARIADB, **kwargs)


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 1000, 5000])
def test_both_ways_give_the_same_comparison(chunk_rows: int) -> None:
    damaged = rows(1000)
    damaged[150] = "changed"
    del damaged[733]
    damaged[1001] = "extra"
    for source, target in ((rows(1000), rows(1000)), (rows(1000), damaged), (damaged, rows(1000))):
        one_by_one = compare(TableServer(source), TableServer(target), chunk_rows=chunk_rows, concurrent=False)
        at_once = compare(TableServer(source), TableServer(target), chunk_rows=chunk_rows)
        assert at_once == one_by_one
    assert at_once.chunks == len(range(0, 1000, chunk_rows)) + (1 if 1000 % chunk_rows == 0 else 0)


def test_a_mismatch_is_found_whichever_side_differs() -> None:
    damaged = rows(1000)
    damaged[150] = "changed"
    on_source = compare(TableServer(damaged), TableServer(rows(1000)), chunk_rows=100)
    on_target = compare(TableServer(rows(1000)), TableServer(damaged), chunk_rows=100)
    assert [str(m) for m in on_source.mismatches] == ["(id) in (100, 200]: 100 rows on both sides, contents differ"]
    assert [str(m) for m in on_target.mismatches] == [str(m) for m in on_source.mismatches]
    lost = rows(1000)
    del lost[999]
    result = compare(TableServer(rows(1000)), TableServer(lost), chunk_rows=100)
    assert (result.source_rows, result.target_rows) == (1000, 999)
    assert [str(m) for m in result.mismatches] == ["(id) in (900, +∞]: 100 rows in the source, 99 restored"]


def test_each_side_runs_on_its_own_thread_and_the_caller_sees_every_chunk_in_order() -> None:
    source, target = TableServer(rows(1000)), TableServer(rows(1000))
    seen: list[tuple[int, int]] = []
    result = compare(source, target, chunk_rows=100, on_chunk=lambda n, known: seen.append((n, known)))
    assert result.ok and result.chunks == 11
    assert [n for n, _ in seen] == list(range(1, 12)) and all(n <= known <= 11 for n, known in seen)
    assert seen[-1] == (11, 11)
    (source_thread,), (target_thread,) = source.threads, target.threads
    assert "source" in source_thread and "target" in target_thread
    assert threading.current_thread().name not in source.threads | target.threads
    sequential = TableServer(rows(1000))
    compare(sequential, sequential, chunk_rows=100, concurrent=False)
    assert sequential.threads == {threading.current_thread().name}


def test_the_sides_overlap_in_time() -> None:
    """Statements take 20 ms on each side: one side after the other costs the sum of both, at once about
    one side's (and one chunk more: the source runs one behind)."""

    def elapsed(concurrent: bool) -> float:
        source, target = TableServer(rows(1000), delay=0.02), TableServer(rows(1000), delay=0.02)
        started = time.monotonic()
        compare(source, target, chunk_rows=100, concurrent=concurrent)
        return time.monotonic() - started

    one_by_one, at_once = elapsed(False), elapsed(True)
    assert one_by_one >= 22 * 0.02  # 11 chunks: 11 sums on each side
    assert at_once < 0.8 * one_by_one, (at_once, one_by_one)  # ideally 0.24 s of 0.44 s


def test_on_an_integer_key_the_source_fingerprints_the_guessed_range_while_the_target_does() -> None:
    """Chunks are pipelined from the first one: the source sends its first sum (the target's first guess)
    while the target runs its own, not after; each guess the target keeps is not fingerprinted again. A key
    whose chunks are not the guesses (text, sparse) makes the source follow the target's chunks."""
    source, target = TableServer(rows(1000), delay=0.05), TableServer(rows(1000), delay=0.05)
    assert compare(source, target, chunk_rows=100).ok
    assert source.queries[0].endswith("WHERE (`id`) <= (%s)") and source.started[0] < target.started[2]
    assert source.sums == 10 + 2  # ten guesses kept; the eleventh guess was not the last chunk, (1000, +∞]
    text = TableServer(rows(1000)), TableServer(rows(1000))
    compare_table(*text, TEXT_KEY, at=None, source_dialect=Dialect.MARIADB, chunk_rows=100)
    assert text[0].sums == 11  # one per chunk: nothing guessed
    gappy = sparse(300, 3)
    far = TableServer(gappy), TableServer(gappy)
    assert compare(*far, chunk_rows=50).ok
    assert (
        far[0].sums <= len(split_chunks(TableServer(gappy), TABLE, chunk_rows=50)) + 1
    )  # one guess missed, then followed


def test_the_target_runs_at_most_depth_chunks_ahead() -> None:
    source = TableServer(rows(2000), delay=0.01)  # the slow side
    target = TableServer(rows(2000))
    lead: list[int] = []
    compare(source, target, chunk_rows=50, depth=2, on_chunk=lambda n, known: lead.append(known - n))
    # the target has found at most: the compared chunk, one in each of its queue's 2 places, one in hand
    assert max(lead) <= 2 + 1


@pytest.mark.parametrize("failing", ["source", "target"])
def test_a_failure_on_one_side_stops_both_and_names_the_side(failing: str) -> None:
    healthy = TableServer(rows(5000), delay=0.002)
    broken = TableServer(rows(5000), fail_at=4)
    source, target = (broken, healthy) if failing == "source" else (healthy, broken)
    started = time.monotonic()
    with pytest.raises(
        FingerprintError, match=re.escape(f"fingerprinting the {failing} failed on shop.orders")
    ) as caught:
        compare(source, target, chunk_rows=10)  # 501 chunks
    assert caught.value.side == failing
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert "Lost connection" in str(caught.value)
    # promptly: the healthy side stopped after a few statements, not after 501 chunks
    assert healthy.statements <= 12, healthy.statements
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("concurrent", [True, False], ids=["concurrent", "sequential"])
def test_both_ways_raise_the_same_error(concurrent: bool) -> None:
    with pytest.raises(FingerprintError) as caught:
        compare(TableServer(rows(100), fail_at=1), TableServer(rows(100)), chunk_rows=10, concurrent=concurrent)
    assert caught.value.side == "source"
    assert str(caught.value) == (
        "fingerprinting the source failed on shop.orders, (id) in (-∞, 10]: ConnectionError: "
        "(2013, 'Lost connection to server during query') at statement 1"
    )
    with pytest.raises(
        FingerprintError, match=re.escape("the target failed on shop.orders, finding the smallest (id)")
    ):
        compare(TableServer(rows(100)), TableServer(rows(100), fail_at=1), chunk_rows=10, concurrent=concurrent)
    with pytest.raises(FingerprintError, match=re.escape("the target failed on shop.orders, (id) in (20, 30]")):
        compare(TableServer(rows(100)), TableServer(rows(100), fail_at=4), chunk_rows=10, concurrent=concurrent)
    with pytest.raises(FingerprintError, match=re.escape("the target failed on shop.orders, (id): 10 rows after 20")):
        compare_table(
            TableServer(rows(100)), TableServer(rows(100), fail_at=3), TEXT_KEY, at=None,
            source_dialect=Dialect.MARIADB, chunk_rows=10, concurrent=concurrent,
        )  # fmt: skip


def test_an_error_in_the_callers_callback_stops_the_sides() -> None:
    source, target = TableServer(rows(5000), delay=0.001), TableServer(rows(5000), delay=0.001)

    def stop_at_third(n: int, known: int) -> None:
        if n == 3:
            raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError, match="the caller gave up"):
        compare(source, target, chunk_rows=10, on_chunk=stop_at_third)
    assert source.sums <= 3 + 3 and target.sums <= 3 + 4
    assert not [t for t in threading.enumerate() if t.name.startswith("fingerprint-")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"chunk_rows": 0}, "chunk_rows must be at least 1"), ({"depth": 0}, "depth must be at least 1")],
)
def test_bad_arguments_are_refused_before_any_statement(kwargs: dict[str, int], message: str) -> None:
    source, target = TableServer(rows(10)), TableServer(rows(10))
    with pytest.raises(ValueError, match=message):
        compare(source, target, **kwargs)
    assert source.statements == target.statements == 0


def test_a_table_without_a_key_is_one_chunk_both_ways() -> None:
    keyless = TableDef("shop", "log", TABLE.columns, ())
    for concurrent in (True, False):
        source, target = TableServer(rows(30)), TableServer(rows(30))
        result = compare_table(source, target, keyless, at=None, source_dialect=Dialect.MARIADB, concurrent=concurrent)
        assert (result.chunks, result.source_rows, result.target_rows, result.ok) == (1, 30, 30, True)
        assert source.statements == target.statements == 1  # no walk: one sum each


TEXT_KEY = TableDef("shop", "orders", (Column("id", 1, "varchar(20)", False), TABLE.columns[1]), TABLE.indexes)


def sparse(n: int, step: int) -> dict[int, str | None]:
    return {k: v for k, v in rows(n * step).items() if k % step == 0 or k in (17, 18, 19)}


@pytest.mark.parametrize("data", [rows(0), rows(1), rows(99), rows(100), rows(101), rows(1000), sparse(300, 3)])
@pytest.mark.parametrize("chunk_rows", [1, 100, 5000])
@pytest.mark.parametrize("table", [TABLE, TEXT_KEY], ids=["integer key", "text key"])
def test_the_targets_chunks_and_sums_are_the_walks(
    data: dict[int, str | None], chunk_rows: int, table: TableDef
) -> None:
    """Empty, smaller than a chunk, a multiple of it (the walk's last chunk is then empty), dense and sparse
    keys: the same chunks and sums as split_chunks + chunk_sum, without the walk's statements; a dense
    integer key costs one statement per chunk (and one MIN), a text key one (lead_sql) per chunk."""
    walked = TableServer(data)
    expected = [(c, chunk_sum(walked, table, c)) for c in split_chunks(walked, table, chunk_rows=chunk_rows)]
    assert sum(s.rows for _, s in expected) == len(data)
    lead = TableServer(data)
    assert list(iter_chunk_sums(lead, table, chunk_rows=chunk_rows)) == expected
    assert not [q for q in lead.queries if OFFSET.search(q)]
    dense = data == rows(len(data))
    if table is TEXT_KEY:
        assert lead.statements == len(expected)
    elif dense:
        # MIN, then each full chunk is its guessed range; the last (short or empty) one also needs lead_sql
        assert lead.statements == 1 + len(expected) + (1 if data else 0)
    source, target = TableServer(data), TableServer(data)
    for concurrent in (True, False):
        result = compare_table(
            source, target, table, at=None, source_dialect=Dialect.MARIADB, chunk_rows=chunk_rows, concurrent=concurrent
        )
        assert (result.ok, result.chunks, result.source_rows) == (True, len(expected), len(data))


@pytest.mark.parametrize("concurrent", [True, False], ids=["concurrent", "sequential"])
def test_rows_missing_or_extra_at_either_end_are_found_in_the_end_chunks(concurrent: bool) -> None:
    full = rows(1000)
    trimmed = {k: v for k, v in full.items() if k not in (1, 1000)}
    padded = {0: "before", **full, 1001: "after"}

    def mismatches(source: dict[int, str | None], target: dict[int, str | None]) -> list[str]:
        return [
            str(m)
            for m in compare(TableServer(source), TableServer(target), chunk_rows=100, concurrent=concurrent).mismatches
        ]

    # the target's keys make the chunks: lost first and last rows shift its bounds, not the verdict
    assert mismatches(full, trimmed) == [
        "(id) in (-∞, 101]: 101 rows in the source, 100 restored",
        "(id) in (901, +∞]: 99 rows in the source, 98 restored",
    ]
    assert mismatches(trimmed, full) == [
        "(id) in (-∞, 100]: 99 rows in the source, 100 restored",
        "(id) in (900, 1000]: 99 rows in the source, 100 restored",
    ]
    assert mismatches(padded, full) == [
        "(id) in (-∞, 100]: 101 rows in the source, 100 restored",
        "(id) in (1000, +∞]: 1 rows in the source, 0 restored",
    ]
    assert mismatches(full, {}) == ["(id) in (-∞, +∞]: 1000 rows in the source, 0 restored"]
    assert mismatches({}, rows(50)) == ["(id) in (-∞, +∞]: 0 rows in the source, 50 restored"]


def test_the_lead_statement_is_for_one_column_keys_only() -> None:
    composite = TableDef("shop", "items", TABLE.columns, (Index("PRIMARY", True, ("id", "note")),))
    with pytest.raises(ValueError, match="one-column key only"):
        lead_sql(composite, None, 10)
    sql, args = lead_sql(TABLE, (42,), 10, dialect=Dialect.MARIADB)
    assert args == [42] and sql.endswith("WHERE (`id`) > (%s) ORDER BY `id` LIMIT 10) AS tidbops_chunk")
