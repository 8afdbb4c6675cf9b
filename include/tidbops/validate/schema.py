"""Table definitions from ``information_schema``, and what differs between two servers' definitions.

Compared per table: the columns (name, position, type, nullability), the indexes (name, uniqueness,
columns in order) and the primary key. Not compared: storage details a restore may legitimately change
(auto-increment counters, table options, partitions' placement), and MariaDB's system versioning (the
playground's way of keeping history; TiDB keeps it in MVCC instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tidbops.validate.sql import Cursor

SYSTEM_SCHEMAS = frozenset(
    {"mysql", "sys", "information_schema", "performance_schema", "metrics_schema", "INFORMATION_SCHEMA"}
)


@dataclass(frozen=True)
class Column:
    name: str
    position: int
    type: str  # COLUMN_TYPE, e.g. "decimal(12,2) unsigned"
    nullable: bool


@dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableDef:
    schema: str
    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def primary_key(self) -> tuple[str, ...]:
        for idx in self.indexes:
            if idx.name == "PRIMARY":
                return idx.columns
        return ()

    def chunk_key(self) -> tuple[str, ...]:
        """The key ranges are taken on: the primary key, else a unique index of NOT NULL columns, else ()."""
        if self.primary_key:
            return self.primary_key
        not_null = {c.name for c in self.columns if not c.nullable}
        for idx in sorted(self.indexes, key=lambda i: i.name):
            if idx.unique and idx.columns and all(c in not_null for c in idx.columns):
                return idx.columns
        return ()


@dataclass(frozen=True)
class SchemaDiff:
    table: str
    what: str  # "missing table", "extra table", "columns", "indexes"
    detail: str

    def __str__(self) -> str:
        return f"{self.table}: {self.what}: {self.detail}"


@dataclass(frozen=True)
class SchemaReport:
    tables: tuple[str, ...]  # compared (present on both sides)
    diffs: tuple[SchemaDiff, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.diffs


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def list_schemas(cursor: Cursor, exclude_prefixes: Sequence[str] = ("tidbops",)) -> list[str]:
    """User databases: not the system ones, not ours (``tidbops*``)."""
    cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
    return [
        str(r[0])
        for r in cursor.fetchall()
        if str(r[0]) not in SYSTEM_SCHEMAS and not str(r[0]).lower().startswith(tuple(exclude_prefixes))
    ]


def read_tables(cursor: Cursor, schemas: Iterable[str]) -> dict[str, TableDef]:
    """``schema.table`` → its definition, for every base table of ``schemas`` (views are not data)."""
    names = sorted(set(schemas))
    if not names:
        return {}
    marks = _placeholders(len(names))
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA IN ({marks}) AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
        names,
    )
    tables = {(str(s), str(t)) for s, t in cursor.fetchall()}
    columns: dict[tuple[str, str], list[Column]] = {k: [] for k in tables}
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) ORDER BY 1, 2, 4",
        names,
    )
    for s, t, col, pos, ctype, nullable in cursor.fetchall():
        if (str(s), str(t)) in columns:
            columns[(str(s), str(t))].append(Column(str(col), int(pos), str(ctype).lower(), str(nullable) == "YES"))
    index_cols: dict[tuple[str, str, str], list[tuple[int, str, bool]]] = {}
    cursor.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME "
        f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({marks})",
        names,
    )
    for s, t, idx, non_unique, seq, col in cursor.fetchall():
        if (str(s), str(t)) in columns:
            index_cols.setdefault((str(s), str(t), str(idx)), []).append((int(seq), str(col), int(non_unique) == 0))
    indexes: dict[tuple[str, str], list[Index]] = {k: [] for k in tables}
    for (s, t, idx), cols in index_cols.items():
        cols.sort()
        indexes[(s, t)].append(Index(idx, cols[0][2], tuple(c for _, c, _ in cols)))
    return {
        f"{s}.{t}": TableDef(s, t, tuple(columns[(s, t)]), tuple(sorted(indexes[(s, t)], key=lambda i: i.name)))
        for s, t in sorted(tables)
    }


def _describe_columns(cols: Sequence[Column]) -> str:
    return ", ".join(f"{c.name} {c.type}{'' if c.nullable else ' not null'}" for c in cols)


def compare_tables(source: dict[str, TableDef], target: dict[str, TableDef]) -> SchemaReport:
    """What differs between the source's and the target's tables (each difference names its table)."""
    diffs: list[SchemaDiff] = []
    for name in sorted(source.keys() - target.keys()):
        diffs.append(SchemaDiff(name, "missing table", "in the source, not in the restored cluster"))
    for name in sorted(target.keys() - source.keys()):
        diffs.append(SchemaDiff(name, "extra table", "in the restored cluster, not in the source"))
    both = sorted(source.keys() & target.keys())
    for name in both:
        s, t = source[name], target[name]
        if s.columns != t.columns:
            s_by, t_by = {c.name: c for c in s.columns}, {c.name: c for c in t.columns}
            parts = [f"missing {n}" for n in sorted(s_by.keys() - t_by.keys())]
            parts += [f"extra {n}" for n in sorted(t_by.keys() - s_by.keys())]
            for n in sorted(s_by.keys() & t_by.keys()):
                if s_by[n] != t_by[n]:
                    parts.append(f"{n}: {_describe_columns([s_by[n]])} vs {_describe_columns([t_by[n]])}")
            diffs.append(SchemaDiff(name, "columns", "; ".join(parts) or "column order differs"))
        if s.indexes != t.indexes:
            s_ix, t_ix = {i.name: i for i in s.indexes}, {i.name: i for i in t.indexes}
            parts = [f"missing index {n}" for n in sorted(s_ix.keys() - t_ix.keys())]
            parts += [f"extra index {n}" for n in sorted(t_ix.keys() - s_ix.keys())]
            parts += [
                f"index {n}: ({', '.join(s_ix[n].columns)}{' unique' if s_ix[n].unique else ''}) vs "
                f"({', '.join(t_ix[n].columns)}{' unique' if t_ix[n].unique else ''})"
                for n in sorted(s_ix.keys() & t_ix.keys())
                if s_ix[n] != t_ix[n]
            ]
            diffs.append(SchemaDiff(name, "indexes", "; ".join(parts)))
    return SchemaReport(tables=tuple(both), diffs=tuple(diffs))
