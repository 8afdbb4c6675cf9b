"""The source's fingerprints recorded right after a backup, for drills that come after its history is gone.

The source's history lasts ``tidb_gc_life_time`` (10 minutes by default): a weekly snapshot drill of a
nightly backup cannot read the source as of the backup any more. So the backup pipelines can take the
source's fingerprints right after a backup (``drill.source_fingerprints``), while its history is there,
within a budget (tables, rows), and keep them in storage; a drill whose point's history is gone compares
the restored data against them instead (same chunks, same fingerprint SQL: ``recovery.validate.
compare_recorded``).

The file says which fingerprint algorithm made its sums (``algorithm``; files of format version 1 have
none and were all made by algorithm 1), and the restored data is fingerprinted with that one: a file
recorded before the row expression changed is still compared exactly, never with a false mismatch. A
format this code does not know (a newer one) fails with one line instead of being misread.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.history import check_history, source_read
from tidbops.text import shown
from tidbops.timefmt import iso, utc
from tidbops.validate.fingerprint import (
    ALGORITHM,
    ALGORITHMS,
    DEFAULT_CHUNK_ROWS,
    Chunk,
    ChunkSum,
    iter_chunk_sums,
)
from tidbops.validate.schema import Column, Index, TableDef, list_schemas, read_tables
from tidbops.validate.sql import Cursor, detect_dialect

FINGERPRINTS_VERSION = 2  # the file's format: 2 says its fingerprint algorithm (1 did not: algorithm 1)
READS_VERSIONS = (1, 2)


def fingerprints_path(cluster: str, backup_id: str) -> str:
    """Where a backup's source fingerprints live, below the cluster's storage root (not in the backup's
    own directory: that one holds what BR and the manifest say, nothing else)."""
    return f"{cluster}/drills/fingerprints/{backup_id}.json"


def _encode(value: Any) -> dict[str, Any]:
    """A key value as typed JSON (chunk bounds must come back as the driver gave them)."""
    if value is None:
        return {"t": "null"}
    if isinstance(value, bool | int):
        return {"t": "int", "v": int(value)}
    if isinstance(value, float):
        return {"t": "float", "v": repr(value)}
    if isinstance(value, Decimal):
        return {"t": "dec", "v": str(value)}
    if isinstance(value, datetime):
        return {"t": "dt", "v": value.isoformat()}
    if isinstance(value, date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {"t": "time", "v": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"t": "bytes", "v": base64.b64encode(bytes(value)).decode()}
    return {"t": "str", "v": str(value)}


def _decode(d: Mapping[str, Any]) -> Any:
    kind, value = d["t"], d.get("v")
    decoders: dict[str, Callable[[Any], Any]] = {
        "null": lambda v: None,
        "int": int,
        "float": float,
        "dec": Decimal,
        "dt": datetime.fromisoformat,
        "date": date.fromisoformat,
        "time": lambda v: timedelta(seconds=v),
        "bytes": base64.b64decode,
        "str": str,
    }
    if kind not in decoders:
        raise ValueError(f"unknown key value type {kind!r}")
    return decoders[kind](value)


def _bound(b: tuple[Any, ...] | None) -> list[dict[str, Any]] | None:
    return None if b is None else [_encode(v) for v in b]


def _unbound(b: Sequence[Mapping[str, Any]] | None) -> tuple[Any, ...] | None:
    return None if b is None else tuple(_decode(v) for v in b)


def _table_doc(t: TableDef) -> dict[str, Any]:
    return {
        "schema": t.schema,
        "name": t.name,
        "columns": [[c.name, c.position, c.type, c.nullable] for c in t.columns],
        "indexes": [[i.name, i.unique, list(i.columns)] for i in t.indexes],
    }


def _table_of(d: Mapping[str, Any]) -> TableDef:
    return TableDef(
        str(d["schema"]),
        str(d["name"]),
        tuple(Column(str(n), int(p), str(t), bool(nl)) for n, p, t, nl in d["columns"]),
        tuple(Index(str(n), bool(u), tuple(cols)) for n, u, cols in d["indexes"]),
    )


@dataclass(frozen=True)
class RecordedTable:
    """A table's definition, and its chunks' fingerprints (``None``: left out by the budget)."""

    table: TableDef
    chunks: tuple[tuple[Chunk, ChunkSum], ...] | None

    @property
    def rows(self) -> int:
        return sum(s.rows for _, s in self.chunks or ())


@dataclass(frozen=True)
class SourceFingerprints:
    """What the source held at a backup's BackupTS: every user table's definition and, within the budget,
    its chunks' row counts and fingerprints. ``to_bytes``/``from_bytes``: the JSON kept in storage."""

    cluster: str
    backup_id: str
    backup_ts: int
    taken_at: datetime
    chunk_rows: int
    source_read: str
    tables: tuple[RecordedTable, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    algorithm: int = ALGORITHM  # which row expression made the sums (``tidbops.validate.fingerprint``)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def fingerprinted(self) -> int:
        return sum(1 for t in self.tables if t.chunks is not None)

    def summary(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "backup_id": self.backup_id,
            "backup_ts": self.backup_ts,
            "tables": len(self.tables),
            "fingerprinted": self.fingerprinted,
            "rows": self.rows,
            "chunks": sum(len(t.chunks or ()) for t in self.tables),
            "seconds": self.seconds,
            "notes": list(self.notes),
        }

    def to_bytes(self) -> bytes:
        doc = {
            "version": FINGERPRINTS_VERSION,
            "algorithm": self.algorithm,
            "cluster": self.cluster,
            "backup_id": self.backup_id,
            "backup_ts": self.backup_ts,
            "taken_at": iso(self.taken_at, timespec="microseconds"),
            "chunk_rows": self.chunk_rows,
            "source_read": self.source_read,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "tables": [
                {
                    "table": _table_doc(t.table),
                    "chunks": None
                    if t.chunks is None
                    else [[_bound(c.lower), _bound(c.upper), s.rows, s.checksum] for c, s in t.chunks],
                }
                for t in self.tables
            ],
        }
        return (json.dumps(doc, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "source fingerprints") -> SourceFingerprints:
        """What ``to_bytes`` wrote; ``RecoveryError`` naming ``source`` for anything else (it comes from
        storage, which is not trusted: a torn or edited file fails the drill with one line, never a crash)."""
        try:
            return cls._from_bytes(data, source)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
            what = f"{type(exc).__name__}: {shown(exc.args[0] if exc.args else '', 120)}"
            raise RecoveryError(f"{source}: not source fingerprints tidbops wrote ({what})") from None

    @classmethod
    def _from_bytes(cls, data: bytes, source: str) -> SourceFingerprints:
        doc = json.loads(data)
        version = doc.get("version")
        if type(version) is not int or version not in READS_VERSIONS:
            reads = " and ".join(str(v) for v in READS_VERSIONS)
            raise RecoveryError(f"{source}: version {shown(version)}; this code reads {reads}")
        algorithm = 1 if version == 1 else doc["algorithm"]
        if type(algorithm) is not int or algorithm not in ALGORITHMS:
            knows = ", ".join(str(a) for a in ALGORITHMS)
            raise RecoveryError(f"{source}: fingerprint algorithm {shown(algorithm)}; this code knows {knows}")
        tables = tuple(
            RecordedTable(
                _table_of(t["table"]),
                None
                if t["chunks"] is None
                else tuple(
                    (Chunk(_unbound(lo), _unbound(hi)), ChunkSum(int(rows), int(crc)))
                    for lo, hi, rows, crc in t["chunks"]
                ),
            )
            for t in doc["tables"]
        )
        return cls(
            cluster=str(doc["cluster"]),
            backup_id=str(doc["backup_id"]),
            backup_ts=int(doc["backup_ts"]),
            taken_at=datetime.fromisoformat(str(doc["taken_at"]).replace("Z", "+00:00")),
            chunk_rows=int(doc["chunk_rows"]),
            source_read=str(doc["source_read"]),
            tables=tables,
            seconds=float(doc.get("seconds") or 0.0),
            notes=tuple(doc.get("notes") or ()),
            algorithm=algorithm,
        )


def take_source_fingerprints(
    source: Cursor,
    *,
    cluster: str,
    backup_id: str,
    backup_ts: int,
    now: datetime,
    gc_safe_point: datetime | None = None,
    gc_life_time_seconds: float | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_tables: int | None = None,
    max_rows: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SourceFingerprints:
    """Fingerprint the source as of ``backup_ts`` (right after the backup, while its history is there):
    every user table's definition, and chunk fingerprints of the tables (by name) until ``max_tables``
    tables or ``max_rows`` rows are done; the rest are recorded without fingerprints (said in ``notes``).
    Chunks and sums are ``iter_chunk_sums``' (the walk's chunks, each found in the statement that
    fingerprints it), with the current ``ALGORITHM``."""
    started = clock()
    check_history(cluster, backup_ts, gc_safe_point, gc_life_time_seconds)
    read = source_read(detect_dialect(source), backup_ts)
    for stmt in read.setup:
        source.execute(stmt)
    recorded: list[RecordedTable] = []
    notes: list[str] = []
    rows = 0
    try:
        defs = read_tables(source, list_schemas(source))
        for name in sorted(defs):
            table = defs[name]
            over = (max_tables is not None and len([t for t in recorded if t.chunks is not None]) >= max_tables) or (
                max_rows is not None and rows >= max_rows
            )
            if over:
                recorded.append(RecordedTable(table, None))
                continue
            sums = tuple(
                iter_chunk_sums(source, table, chunk_rows=chunk_rows, dialect=read.dialect, at=read.at, side="source")
            )
            recorded.append(RecordedTable(table, sums))
            rows += sum(s.rows for _, s in sums)
    finally:
        for stmt in read.teardown:
            source.execute(stmt)
    left_out = [t.table.full_name for t in recorded if t.chunks is None]
    if left_out:
        notes.append(
            f"budget ({max_tables or 'any'} tables, {max_rows or 'any'} rows) reached: not fingerprinted: "
            + ", ".join(left_out)
        )
    return SourceFingerprints(
        cluster, backup_id, backup_ts, utc(now, "now"), chunk_rows, read.description, tuple(recorded),
        round(clock() - started, 3), tuple(notes),
    )  # fmt: skip
