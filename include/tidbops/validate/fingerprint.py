"""Content fingerprints by key range: ``COUNT(*)`` and ``BIT_XOR(CRC32(CONCAT_WS(…)))`` per chunk.

A table is cut into chunks of about ``chunk_rows`` rows along its key (primary key, else a unique index
of NOT NULL columns; a table with neither is one chunk). The boundaries are taken once, on one side (the
restored cluster: it does not change), and both sides are fingerprinted over the same ranges, the source
as of the restore point. A row's fingerprint covers every column and which of them are NULL (so NULL and
the empty string differ), as sync-diff-inspector's does; XOR makes the chunk's independent of row order.
A mismatch names the table and the chunk's key range, so a DBA can look at exactly those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidbops.validate.schema import TableDef
from tidbops.validate.sql import Cursor, Dialect, as_of_clause, quote, table_ref

DEFAULT_CHUNK_ROWS = 50_000

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


def split_chunks(
    cursor: Cursor,
    table: TableDef,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dialect: Dialect = Dialect.MYSQL,
    at: datetime | None = None,
) -> list[Chunk]:
    """Walk the key: each chunk's upper bound is the ``chunk_rows``-th key after the previous bound."""
    key = table.chunk_key()
    if not key:
        return [Chunk(None, None)]
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    cols = ", ".join(quote(k) for k in key)
    chunks: list[Chunk] = []
    lower: Bound = None
    while True:
        where, args = _range_where(key, Chunk(lower, None))
        cursor.execute(f"SELECT {cols} FROM {ref}{where} ORDER BY {cols} LIMIT 1 OFFSET {chunk_rows - 1}", args)
        row = cursor.fetchone()
        if row is None:
            chunks.append(Chunk(lower, None))
            return chunks
        upper = tuple(row)
        chunks.append(Chunk(lower, upper))
        lower = upper


def fingerprint_sql(
    table: TableDef, chunk: Chunk, *, dialect: Dialect = Dialect.MYSQL, at: datetime | None = None
) -> tuple[str, list[Any]]:
    """The statement (and its arguments) that returns ``(rows, checksum)`` of one chunk."""
    cols = [quote(c.name) for c in sorted(table.columns, key=lambda c: c.position)]
    nulls = "CONCAT(" + ", ".join(f"ISNULL({c})" for c in cols) + ")"
    row = f"CONCAT_WS(',', {', '.join(cols)}, {nulls})"
    where, args = _range_where(table.chunk_key(), chunk)
    ref = table_ref(table.schema, table.name) + as_of_clause(dialect, at)
    return (
        f"SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CRC32({row}) AS UNSIGNED)), 0) FROM {ref}{where}",
        args,
    )


def chunk_sum(
    cursor: Cursor, table: TableDef, chunk: Chunk, *, dialect: Dialect = Dialect.MYSQL, at: datetime | None = None
) -> ChunkSum:
    sql, args = fingerprint_sql(table, chunk, dialect=dialect, at=at)
    cursor.execute(sql, args)
    row = cursor.fetchone()
    return ChunkSum(int(row[0]), int(row[1]))


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
) -> TableComparison:
    """Fingerprint ``table`` chunk by chunk on both sides: the target now, the source as of ``at``."""
    chunks = split_chunks(target, table, chunk_rows=chunk_rows, dialect=target_dialect)
    key = table.chunk_key()
    mismatches: list[ChunkMismatch] = []
    source_rows = target_rows = 0
    for n, chunk in enumerate(chunks, 1):
        s = chunk_sum(source, table, chunk, dialect=source_dialect, at=at)
        t = chunk_sum(target, table, chunk, dialect=target_dialect)
        source_rows += s.rows
        target_rows += t.rows
        if s != t:
            mismatches.append(ChunkMismatch(chunk, key, s, t))
        if on_chunk is not None:
            on_chunk(n, len(chunks))
    return TableComparison(table.full_name, key, source_rows, target_rows, len(chunks), tuple(mismatches))
