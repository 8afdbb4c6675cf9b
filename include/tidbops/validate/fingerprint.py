"""Content fingerprints by key range: ``COUNT(*)`` and ``BIT_XOR(CRC32(CONCAT_WS(…)))`` per chunk.

A table is cut into chunks of about ``chunk_rows`` rows along its key (primary key, else a unique index
of NOT NULL columns; a table with neither is one chunk): each chunk's upper bound is the ``chunk_rows``-th
key after the previous bound, the last chunk is open-ended. The boundaries are taken on one side (the
restored cluster: it does not change), and both sides are fingerprinted over the same ranges, the source
as of the restore point. A row's fingerprint covers every column and which of them are NULL (so NULL and
the empty string differ, and a NULL is never just left out), as sync-diff-inspector's does; XOR makes the
chunk's independent of row order. A mismatch names the table and the chunk's key range, so a DBA can look
at exactly those rows.

How a row becomes a string is versioned (``ALGORITHMS``; ``ALGORITHM`` is the one new fingerprints use):
fingerprints recorded after a backup say which algorithm made them, and are compared with that one.

* **1**: ``CONCAT_WS(',', <every column>, <one character per column: 1 if NULL, else 0>)``.
* **2** (cheaper per row, as exact): a nullable column whose text can never be ``NULL`` (integers,
  decimals, dates and times) is written ``IFNULL(c, 'NULL')``; the other nullable columns (strings,
  binaries, JSON, BIT, ENUM/SET, whose text can be ``NULL``; floats, whose text ``IFNULL``'s result type
  might round) are written as they are, and one integer argument after the
  columns carries their NULL marks as bits (``ISNULL(a) | ISNULL(b) << 1 | …``, 63 columns an argument);
  NOT NULL columns need no mark at all. A table without nullable string-like columns costs no more than
  the bare ``CONCAT_WS`` of its columns.

On a one-column key the target finds a chunk's bound in the statement that fingerprints it
(``lead_sql``: the next ``chunk_rows`` rows by key, their count, checksum and largest key), so its rows are
read once; the source then fingerprints that key range (``fingerprint_sql``). On an integer key the target
first fingerprints ``(lower, lower + chunk_rows]``, a plain range (cheaper: ``lead_sql``'s rows go through a
derived table): it holds at most ``chunk_rows`` keys, so if it holds that many its upper end is the chunk's
bound; else ``lead_sql`` finds the rest of the chunk beyond it (a dense key, as AUTO_INCREMENT makes, needs
one statement per chunk, a sparse one two). On a composite key the key
is walked first (``iter_chunks``: ``LIMIT 1 OFFSET chunk_rows - 1``), then the range is fingerprinted. Both
ways make the same chunks, with the same sums, as ``split_chunks`` + ``chunk_sum`` (the fingerprints
recorded after backups use those).

``compare_table`` reads both sides at once: a thread per side, each on its own cursor (two connections),
the target's thread finding and fingerprinting chunks, the source's fingerprinting the same chunks, so each
server computes one chunk while the other computes its own and the comparison of the previous one is made
(on an integer key the source fingerprints the range the target is guessing, at the same time, instead of
waiting for the target's chunk: chunks are pipelined from the first one; see ``_compare_concurrently``). Queues
between them hold at most ``depth`` chunks, so memory does not grow with the table. ``concurrent=False``
reads one side after the other on the caller's thread (the peer of the benchmark, and the way for two
cursors on one connection). Both ways give the same result and raise the same ``FingerprintError``, naming
the side that failed; a failure on one side stops the other after its statement in flight.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tidbops.validate.schema import Column, TableDef
from tidbops.validate.sql import Cursor, Dialect, ValidationError, as_of_clause, quote, table_ref

DEFAULT_CHUNK_ROWS = 50_000
ALGORITHMS = (1, 2)  # how a row becomes the string its CRC32 is taken of (see the module's docstring)
ALGORITHM = 2  # the one new fingerprints use
DEFAULT_DEPTH = 2  # chunks a side may run ahead of the comparison
_POLL_SECONDS = 0.05  # how often a blocked thread looks whether the other side failed

Side = Literal["source", "target"]

Bound = tuple[Any, ...] | None  # a key value (one item per key column); None: open


@dataclass(frozen=True)
class Chunk:
    """Rows whose key is in ``(lower, upper]``; ``None`` bounds are open."""

    lower: Bound
    upper: Bound

    def describe(self, key: Sequence[str]) -> str:
        cols = ", ".join(key) if key else "(whole table)"
        if not key:
            return cols
        low = "-∞" if self.lower is None else repr(self.lower if len(self.lower) > 1 else self.lower[0])
        high = "+∞" if self.upper is None else repr(self.upper if len(self.upper) > 1 else self.upper[0])
        return f"({cols}) in ({low}, {high}]"


@dataclass(frozen=True)
class ChunkSum:
    rows: int
    checksum: int


@dataclass(frozen=True)
class ChunkMismatch:
    chunk: Chunk
    key: tuple[str, ...]
    source: ChunkSum
    target: ChunkSum

    def __str__(self) -> str:
        what = (
            f"{self.source.rows} rows in the source, {self.target.rows} restored"
            if self.source.rows != self.target.rows
            else f"{self.source.rows} rows on both sides, contents differ"
        )
        return f"{self.chunk.describe(self.key)}: {what}"


@dataclass(frozen=True)
class TableComparison:
    table: str
    key: tuple[str, ...]
    source_rows: int
    target_rows: int
    chunks: int
    mismatches: tuple[ChunkMismatch, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": list(self.key),
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "chunks": self.chunks,
            "ok": self.ok,
            "mismatches": [str(m) for m in self.mismatches],
        }


def _range_where(key: Sequence[str], chunk: Chunk) -> tuple[str, list[Any]]:
    if not key:
        return "", []
    cols = f"({', '.join(quote(k) for k in key)})"
    marks = f"({', '.join(['%s'] * len(key))})"
    parts: list[str] = []
    args: list[Any] = []
    if chunk.lower is not None:
        parts.append(f"{cols} > {marks}")
        args += list(chunk.lower)
    if chunk.upper is not None:
        parts.append(f"{cols} <= {marks}")
        args += list(chunk.upper)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def iter_chunks(
    cursor: Cursor,
    table: TableDef,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
) -> Iterator[Chunk]:
    """Walk the key: each chunk's upper bound is the ``chunk_rows``-th key after the previous bound.

    One statement per chunk, run when the chunk is asked for (the last chunk is open-ended)."""
    key = table.chunk_key()
    if not key:
        yield Chunk(None, None)
        return
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    cols = ", ".join(quote(k) for k in key)
    lower: Bound = None
    while True:
        where, args = _range_where(key, Chunk(lower, None))
        cursor.execute(f"SELECT {cols} FROM {ref}{where} ORDER BY {cols} LIMIT 1 OFFSET {chunk_rows - 1}", args)
        row = cursor.fetchone()
        if row is None:
            yield Chunk(lower, None)
            return
        upper = tuple(row)
        yield Chunk(lower, upper)
        lower = upper


def split_chunks(
    cursor: Cursor,
    table: TableDef,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
) -> list[Chunk]:
    """Every chunk of ``table`` (``iter_chunks`` walked to the end)."""
    if chunk_rows < 1 and table.chunk_key():
        raise ValueError("chunk_rows must be at least 1")
    return list(iter_chunks(cursor, table, chunk_rows=chunk_rows, dialect=dialect, at=at))


def fingerprint_sql(
    table: TableDef,
    chunk: Chunk,
    *,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
    algorithm: int = ALGORITHM,
) -> tuple[str, list[Any]]:
    """The statement (and its arguments) that returns ``(rows, checksum)`` of one chunk: ``COUNT(*)`` and
    the ``BIT_XOR`` of each row's ``CRC32`` (unsigned already: no ``CAST``) of ``row_expr``."""
    where, args = _range_where(table.chunk_key(), chunk)
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    return f"SELECT COUNT(*), COALESCE(BIT_XOR(CRC32({row_expr(table, algorithm)})), 0) FROM {ref}{where}", args


def row_expr(table: TableDef, algorithm: int = ALGORITHM) -> str:
    """A row's string under ``algorithm`` (see the module's docstring).

    1: ``CONCAT_WS(',', <every column>, <one character per column>)``, a NOT NULL column's character written
    as the literal ``0`` that ``ISNULL`` would give (the same string as ``ISNULL`` on every column, less work).
    2: ``CONCAT_WS(',', <every column, IFNULL(c, 'NULL') where that is exact>, <NULL bits of the others>)``."""
    columns = sorted(table.columns, key=lambda c: c.position)
    if algorithm == 1:
        return f"CONCAT_WS(',', {', '.join(quote(c.name) for c in columns)}, {_null_marks(columns)})"
    if algorithm != 2:
        raise ValueError(f"unknown fingerprint algorithm {algorithm!r} (this code knows {ALGORITHMS})")
    values = [
        f"IFNULL({quote(c.name)}, 'NULL')" if c.nullable and _never_null_text(c) else quote(c.name) for c in columns
    ]
    marked = [c for c in columns if c.nullable and not _never_null_text(c)]
    for start in range(0, len(marked), _BITS_PER_MARK):
        bits = [
            f"ISNULL({quote(c.name)})" if i == 0 else f"(ISNULL({quote(c.name)}) << {i})"
            for i, c in enumerate(marked[start : start + _BITS_PER_MARK])
        ]
        values.append(" | ".join(bits))
    return f"CONCAT_WS(',', {', '.join(values)})"


_BITS_PER_MARK = 63
#: types whose text is digits, signs, dots, dashes, colons and spaces: never the four letters ``NULL``
_NEVER_NULL_TEXT = (
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "dec", "fixed",
    "date", "datetime", "timestamp", "time", "year",
)  # fmt: skip


def _never_null_text(column: Column) -> bool:
    """Can no value of ``column`` be written as the text ``NULL``? (Then ``IFNULL(c, 'NULL')`` is exact.)"""
    return _base_type(column) in _NEVER_NULL_TEXT


def _base_type(column: Column) -> str:
    return column.type.split("(")[0].split()[0].lower() if column.type.strip() else ""


def lead_sql(
    table: TableDef,
    lower: Bound,
    chunk_rows: int,
    *,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
    algorithm: int = ALGORITHM,
) -> tuple[str, list[Any]]:
    """The statement that returns ``(rows, checksum, upper)`` of the chunk after ``lower`` on a one-column key.

    The next ``chunk_rows`` rows by key (``ORDER BY k LIMIT n`` in a derived table), their count and
    checksum as ``fingerprint_sql`` gives them, and their largest key: the chunk's upper bound, which is the
    ``chunk_rows``-th key after ``lower`` that the walk finds. Fewer rows than ``chunk_rows``: the last chunk,
    open-ended (its rows are every row after ``lower``)."""
    key = table.chunk_key()
    if len(key) != 1:
        raise ValueError(f"{table.full_name}: a chunk is found with its fingerprint on a one-column key only")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    k = quote(key[0])
    where, args = _range_where(key, Chunk(lower, None))
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    inner = f"SELECT {k} AS tidbops_key, CRC32({row_expr(table, algorithm)}) AS tidbops_crc FROM {ref}{where}"
    return (
        "SELECT COUNT(*), COALESCE(BIT_XOR(tidbops_crc), 0), MAX(tidbops_key) "
        f"FROM ({inner} ORDER BY {k} LIMIT {int(chunk_rows)}) AS tidbops_chunk",
        args,
    )


def iter_chunk_sums(
    cursor: Cursor,
    table: TableDef,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
    side: Side = "target",
    algorithm: int = ALGORITHM,
    on_start: Callable[[int | None], None] | None = None,
) -> Iterator[tuple[Chunk, ChunkSum]]:
    """Every chunk of ``table`` with its sum, as ``split_chunks`` and ``chunk_sum`` give them.

    A one-column key: one statement per chunk (``lead_sql``); else the walk's statement, then the sum's.
    Each is run when the chunk is asked for. A failure is a ``FingerprintError`` naming ``side``.
    ``on_start(smallest)``: told, before the first chunk, the smallest key of an integer key, from which
    the chunks are guessed (``None``: no guesses, another kind of key)."""
    key = table.chunk_key()
    if chunk_rows < 1 and key:
        raise ValueError("chunk_rows must be at least 1")
    if len(key) != 1:
        if on_start is not None:
            on_start(None)
        chunks = iter_chunks(cursor, table, chunk_rows=chunk_rows, dialect=dialect, at=at)
        while True:
            try:
                chunk = next(chunks, None)
            except Exception as exc:
                raise FingerprintError(side, table.full_name, "walking its key into chunks", exc) from exc
            if chunk is None:
                return
            yield chunk, _sum(side, cursor, table, chunk, dialect, at, algorithm)

    def lead(lower: Bound, n: int) -> tuple[int, int, Any]:
        try:
            cursor.execute(*lead_sql(table, lower, n, dialect=dialect, at=at, algorithm=algorithm))
            rows, checksum, upper = cursor.fetchone()
        except Exception as exc:
            after = "the start" if lower is None else repr(lower[0])
            raise FingerprintError(side, table.full_name, f"({key[0]}): {n} rows after {after}", exc) from exc
        return int(rows), int(checksum), upper

    lower: Bound = None
    start = _smallest_integer_key(cursor, table, dialect, at, side)
    if on_start is not None:
        on_start(start)
    while True:
        rows = checksum = 0
        ahead: Bound = lower
        if start is not None:  # an integer key: (start, start + n] holds at most n keys; n of them: the chunk
            guess = Chunk(lower, ((lower[0] if lower is not None else start - 1) + chunk_rows,))
            ranged = _sum(side, cursor, table, guess, dialect, at, algorithm)
            if ranged.rows == chunk_rows:
                yield guess, ranged
                lower = guess.upper
                continue
            rows, checksum, ahead = ranged.rows, ranged.checksum, guess.upper  # the rest lies beyond the guess
        more, more_checksum, upper = lead(ahead, chunk_rows - rows)
        rows, checksum = rows + more, checksum ^ more_checksum
        if rows < chunk_rows:
            yield Chunk(lower, None), ChunkSum(rows, checksum)
            return
        chunk = Chunk(lower, (upper,))
        yield chunk, ChunkSum(rows, checksum)
        lower = chunk.upper


_INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint")


def _smallest_integer_key(
    cursor: Cursor, table: TableDef, dialect: Dialect, at: datetime | None, side: Side
) -> int | None:
    """The smallest key of a one-column integer key (``None``: another type, or no rows)."""
    (name,) = table.chunk_key()
    column = next((c for c in table.columns if c.name == name), None)
    if column is None or _base_type(column) not in _INTEGER_TYPES:
        return None
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    try:
        cursor.execute(f"SELECT MIN({quote(name)}) FROM {ref}")
        row = cursor.fetchone()
    except Exception as exc:
        raise FingerprintError(side, table.full_name, f"finding the smallest ({name})", exc) from exc
    return None if row is None or row[0] is None else int(row[0])


def _null_marks(columns: Sequence[Column]) -> str:
    """``'0'`` per NOT NULL column and ``ISNULL(c)`` per nullable one, runs of literals joined."""
    parts: list[str] = []
    for column in columns:
        if column.nullable:
            parts.append(f"ISNULL({quote(column.name)})")
        elif parts and parts[-1].startswith("'"):
            parts[-1] = parts[-1][:-1] + "0'"
        else:
            parts.append("'0'")
    return parts[0] if len(parts) == 1 else f"CONCAT({', '.join(parts)})"


def chunk_sum(
    cursor: Cursor,
    table: TableDef,
    chunk: Chunk,
    *,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
    algorithm: int = ALGORITHM,
) -> ChunkSum:
    sql, args = fingerprint_sql(table, chunk, dialect=dialect, at=at, algorithm=algorithm)
    cursor.execute(sql, args)
    row = cursor.fetchone()
    return ChunkSum(int(row[0]), int(row[1]))


class FingerprintError(ValidationError):
    """Fingerprinting one side of a table failed: which side, which table and chunk, and why (the
    driver's error is the ``__cause__``)."""

    def __init__(self, side: Side, table: str, where: str, error: BaseException) -> None:
        super().__init__(f"fingerprinting the {side} failed on {table}, {where}: {type(error).__name__}: {error}")
        self.side = side
        self.table = table


def compare_table(
    source: Cursor,
    target: Cursor,
    table: TableDef,
    *,
    at: datetime | None,
    source_dialect: Dialect,
    target_dialect: Dialect = Dialect.MYSQL,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int, int], None] | None = None,
    concurrent: bool = True,
    depth: int = DEFAULT_DEPTH,
) -> TableComparison:
    """Fingerprint ``table`` chunk by chunk on both sides: the target now, the source as of ``at``.

    ``on_chunk(n, known)`` after the ``n``-th chunk is compared; ``known``: the chunks the target has found
    so far (``n`` one side after the other; concurrently, the target runs up to ``depth`` chunks ahead).
    ``concurrent``: a thread per side (the cursors must be on two connections); else one side after the
    other on this thread. Raises ``FingerprintError`` naming the side whose statement failed.
    """
    if chunk_rows < 1 and table.chunk_key():
        raise ValueError("chunk_rows must be at least 1")
    if depth < 1:
        raise ValueError("depth must be at least 1")
    key = table.chunk_key()
    tally = _Tally(table.full_name, key)
    if not concurrent:
        sums = iter_chunk_sums(target, table, chunk_rows=chunk_rows, dialect=target_dialect)
        for n, (chunk, t) in enumerate(sums, 1):
            s = _sum("source", source, table, chunk, source_dialect, at)
            tally.add(chunk, s, t)
            if on_chunk is not None:
                on_chunk(n, n)
        return tally.result()
    return _compare_concurrently(
        source, target, table, tally, at, source_dialect, target_dialect, chunk_rows, on_chunk, depth
    )


class _Tally:
    """The comparison as chunks are added."""

    def __init__(self, table: str, key: tuple[str, ...]) -> None:
        self.table, self.key = table, key
        self.chunks = self.source_rows = self.target_rows = 0
        self.mismatches: list[ChunkMismatch] = []

    def add(self, chunk: Chunk, source: ChunkSum, target: ChunkSum) -> None:
        self.chunks += 1
        self.source_rows += source.rows
        self.target_rows += target.rows
        if source != target:
            self.mismatches.append(ChunkMismatch(chunk, self.key, source, target))

    def result(self) -> TableComparison:
        return TableComparison(
            self.table, self.key, self.source_rows, self.target_rows, self.chunks, tuple(self.mismatches)
        )


def _sum(
    side: Side,
    cursor: Cursor,
    table: TableDef,
    chunk: Chunk,
    dialect: Dialect,
    at: datetime | None,
    algorithm: int = ALGORITHM,
) -> ChunkSum:
    try:
        return chunk_sum(cursor, table, chunk, dialect=dialect, at=at, algorithm=algorithm)
    except Exception as exc:
        raise FingerprintError(side, table.full_name, chunk.describe(table.chunk_key()), exc) from exc


class _Stopped(Exception):
    """The other side failed (or the caller gave up): stop after the statement in flight."""


_END = object()  # no more chunks


def _compare_concurrently(
    source: Cursor,
    target: Cursor,
    table: TableDef,
    tally: _Tally,
    at: datetime | None,
    source_dialect: Dialect,
    target_dialect: Dialect,
    chunk_rows: int,
    on_chunk: Callable[[int, int], None] | None,
    depth: int,
) -> TableComparison:
    """Three threads: the target's finds and fingerprints each chunk (``iter_chunk_sums``), handing the
    chunk to the source's; the source's fingerprints the same chunks; this one pairs the sums in order.

    On an integer key the source does not wait for each chunk: it fingerprints the range the target is
    guessing at the same time (``(lower, lower + chunk_rows]`` after the last chunk, from the target's
    smallest key), so both servers work from the first statement on; when the target's chunk turns out
    to be another range (a sparse key, the last chunk), the source fingerprints that one instead and then
    follows the target chunk by chunk. Either way each source sum is over exactly the target's chunk."""
    stop = threading.Event()
    failures: list[BaseException] = []
    starts: queue.Queue[object] = queue.Queue(maxsize=1)
    to_source: queue.Queue[object] = queue.Queue(maxsize=depth)
    source_sums: queue.Queue[object] = queue.Queue(maxsize=depth)
    target_sums: queue.Queue[object] = queue.Queue(maxsize=depth)
    known = 0

    def put(q: queue.Queue[object], item: object) -> None:
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def get(q: queue.Queue[object]) -> object:
        while True:
            try:
                return q.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if stop.is_set():
                    raise _Stopped from None

    def run(body: Callable[[], None]) -> Callable[[], None]:
        def side() -> None:
            try:
                body()
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the caller's thread, raised there
                failures.append(exc)
                stop.set()

        return side

    def target_side() -> None:
        nonlocal known
        sums = iter_chunk_sums(
            target, table, chunk_rows=chunk_rows, dialect=target_dialect, on_start=lambda s: put(starts, (s,))
        )
        for chunk, t in sums:
            known += 1
            put(to_source, chunk)
            put(target_sums, (chunk, t))
            if stop.is_set():
                raise _Stopped
        put(to_source, _END)
        put(target_sums, _END)

    def source_side() -> None:
        first = get(starts)
        assert isinstance(first, tuple)
        start: int | None = first[0]
        lower: Bound = None
        while True:
            guess: tuple[Chunk, ChunkSum] | None = None
            if start is not None:  # the range the target is guessing now
                ahead = Chunk(lower, ((lower[0] if lower is not None else start - 1) + chunk_rows,))
                guess = ahead, _sum("source", source, table, ahead, source_dialect, at)
            chunk = get(to_source)
            if chunk is _END:
                put(source_sums, _END)
                return
            assert isinstance(chunk, Chunk)
            if stop.is_set():
                raise _Stopped
            if guess is not None and guess[0] == chunk:
                put(source_sums, guess[1])
            else:
                start = None  # the target's chunks are not its guesses here: follow them
                put(source_sums, _sum("source", source, table, chunk, source_dialect, at))
            lower = chunk.upper

    threads = [
        threading.Thread(target=run(body), name=f"fingerprint-{side}:{table.full_name}", daemon=True)
        for side, body in (("target", target_side), ("source", source_side))
    ]
    for thread in threads:
        thread.start()
    try:
        n = 0
        while True:
            item = get(target_sums)
            s = get(source_sums)
            if item is _END or s is _END:
                break
            assert isinstance(item, tuple) and isinstance(s, ChunkSum)
            chunk, t = item
            tally.add(chunk, s, t)
            n += 1
            if on_chunk is not None:
                on_chunk(n, known)
    except _Stopped:
        pass
    finally:
        stop.set()  # the sides have ended, or must end now: a side failed, or this thread did
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return tally.result()
