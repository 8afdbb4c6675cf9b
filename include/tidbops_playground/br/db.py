"""The SQL side of an emulated cluster: a private MariaDB server with system-versioned user tables.

Values are fetched without client-side conversion (``str`` for text, ``bytes`` for binary columns), so
they round-trip exactly; FLOAT columns are read as ``CAST(c AS DOUBLE)`` (the text protocol would print
only 6 digits) and BIT columns as ``c+0``. Snapshot reads use ``FOR SYSTEM_TIME AS OF TIMESTAMP``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysql.converters import encoders, escape_string

from tidbops_playground.registry import ClusterEntry

from .errors import BRError
from .pd import pd_unavailable

SYSTEM_DBS = {"mysql", "sys", "information_schema", "performance_schema", "metrics_schema", "inspection_schema"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
UNSUPPORTED_TYPES = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
}
# MariaDB privilege tables that stand in for TiDB's mysql.user/db/tables_priv/columns_priv.
PRIVILEGE_TABLES = ("global_priv", "db", "tables_priv", "columns_priv", "roles_mapping")
PRIVILEGE_TABLE_ALIASES = {
    "global_priv": "user",
    "db": "db",
    "tables_priv": "tables_priv",
    "columns_priv": "columns_priv",
    "roles_mapping": "role_edges",
}


def is_user_db(name: str) -> bool:
    low = name.lower()
    return low not in SYSTEM_DBS and not low.startswith("tidbops_") and not low.startswith("__tidb_br_temporary_")


def qi(name: str) -> str:
    """Quote an identifier."""
    return "`" + name.replace("`", "``") + "`"


def qt(db: str, table: str) -> str:
    return f"{qi(db)}.{qi(table)}"


Connection = pymysql.connections.Connection


def connect(entry: ClusterEntry, database: str | None = None, **kwargs: Any) -> Connection:
    try:
        conn = pymysql.connect(
            host=entry.sql_host,
            port=entry.sql_port,
            user=entry.sql_user,
            password=entry.sql_password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            conv=dict(encoders),  # no decoders: every value arrives as str or bytes
            connect_timeout=5,
            ssl=entry.sql_ssl(),
            **kwargs,
        )
    except pymysql.err.OperationalError as exc:
        raise pd_unavailable([entry.pd], f"[tikv:9001]PD server timeout: {exc.args[-1] if exc.args else exc}") from None
    with conn.cursor() as cur:
        cur.execute("SET time_zone='+00:00'")
    return conn


def query(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def execute(conn: Connection, sql: str) -> int:
    with conn.cursor() as cur:
        return int(cur.execute(sql))


def sql_str(value: str) -> str:
    return "'" + escape_string(value) + "'"


# --------------------------------------------------------------------------- catalogue


@dataclass
class Column:
    name: str
    data_type: str
    kind: str  # text | binary | bit | float

    def select_expr(self) -> str:
        if self.kind == "bit":
            return f"{qi(self.name)}+0"
        if self.kind == "float":
            return f"CAST({qi(self.name)} AS DOUBLE)"
        return qi(self.name)


@dataclass
class TableInfo:
    db: str
    name: str
    table_type: str  # BASE TABLE | SYSTEM VERSIONED | VIEW | SEQUENCE
    create_sql: str = ""
    columns: list[Column] = field(default_factory=list)
    pk: list[str] = field(default_factory=list)
    index_count: int = 0
    create_time: str | None = None

    @property
    def versioned(self) -> bool:
        return self.table_type == "SYSTEM VERSIONED"

    @property
    def is_view(self) -> bool:
        return self.table_type == "VIEW"

    @property
    def kinds(self) -> list[str]:
        return [c.kind for c in self.columns]

    def pk_indexes(self) -> list[int]:
        names = [c.name for c in self.columns]
        return [names.index(p) for p in self.pk]


def list_databases(conn: Connection) -> list[str]:
    return [r[0] for r in query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")]


def list_user_databases(conn: Connection) -> list[str]:
    return [d for d in list_databases(conn) if is_user_db(d)]


def list_tables(conn: Connection, db: str) -> list[tuple[str, str, str | None]]:
    rows = query(
        conn,
        "SELECT TABLE_NAME, TABLE_TYPE, CREATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        + sql_str(db)
        + " ORDER BY TABLE_NAME",
    )
    return [(r[0], r[1], r[2]) for r in rows]


def show_create_database(conn: Connection, db: str) -> str:
    return str(query(conn, f"SHOW CREATE DATABASE {qi(db)}")[0][1])


def show_create_table(conn: Connection, db: str, table: str) -> str:
    return str(query(conn, f"SHOW CREATE TABLE {qt(db, table)}")[0][1])


def _column_kind(data_type: str) -> str:
    dt = data_type.lower()
    if dt in BINARY_TYPES:
        return "binary"
    if dt == "bit":
        return "bit"
    if dt == "float":
        return "float"
    return "text"


def describe_table(conn: Connection, db: str, table: str, table_type: str, create_time: str | None = None) -> TableInfo:
    info = TableInfo(db=db, name=table, table_type=table_type, create_time=create_time)
    if table_type == "VIEW":
        row = query(conn, f"SHOW CREATE VIEW {qt(db, table)}")[0]
        info.create_sql = _strip_definer(str(row[1]))
        return info
    info.create_sql = show_create_table(conn, db, table)
    cols = query(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        + sql_str(db)
        + " AND TABLE_NAME = "
        + sql_str(table)
        + " ORDER BY ORDINAL_POSITION",
    )
    for name, data_type, extra in cols:
        ex = (extra or "").upper()
        if "GENERATED" in ex or "PERSISTENT" in ex or "VIRTUAL" in ex or "ROW START" in ex or "ROW END" in ex:
            continue
        if data_type.lower() in UNSUPPORTED_TYPES:
            raise BRError(
                f"table {db}.{table} column {name} has type {data_type}, which the br emulator does not support"
            )
        info.columns.append(Column(name, data_type, _column_kind(data_type)))
    stats = query(
        conn,
        "SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = "
        + sql_str(db)
        + " AND TABLE_NAME = "
        + sql_str(table)
        + " ORDER BY INDEX_NAME, SEQ_IN_INDEX",
    )
    indexes: dict[str, list[tuple[str, str, str]]] = {}
    for idx_name, non_unique, _seq, col, nullable in stats:
        indexes.setdefault(idx_name, []).append((col, str(non_unique), nullable or ""))
    data_cols = {c.name for c in info.columns}
    if "PRIMARY" in indexes:
        info.pk = [c for c, _, _ in indexes["PRIMARY"]]
    else:
        for _idx, cols_ in sorted(indexes.items()):
            if all(nu == "0" for _, nu, _ in cols_) and all(n != "YES" for _, _, n in cols_):
                info.pk = [c for c, _, _ in cols_]
                break
    if not info.pk or not set(info.pk) <= data_cols:
        info.pk = [c.name for c in info.columns]
    info.index_count = len([i for i in indexes if i != "PRIMARY"])
    return info


def _strip_definer(sql: str) -> str:
    return re.sub(r"\s+DEFINER=`[^`]*`@`[^`]*`", "", sql, count=1)


# --------------------------------------------------------------------------- reads


def snapshot_select(info: TableInfo, read_us_sql: str | None, where: str = "") -> str:
    cols = ", ".join(c.select_expr() for c in info.columns)
    as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{read_us_sql}'" if (read_us_sql and info.versioned) else ""
    return f"SELECT {cols} FROM {qt(info.db, info.name)}{as_of}{where}"


def stream_rows(conn: Connection, sql: str, batch: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql)
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            yield list(rows)


def checksum_sql(info: TableInfo, read_us_sql: str | None) -> str:
    """The table checksum the emulator records/verifies: row count, XOR of a 64-bit MD5 prefix per row
    (over ``QUOTE`` of every stored column) and the byte length of those rows."""
    row = "CONCAT_WS(',', " + ", ".join(f"QUOTE({qi(c.name)})" for c in info.columns) + ")"
    as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{read_us_sql}'" if (read_us_sql and info.versioned) else ""
    return (
        f"SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5({row}),16),16,10) AS UNSIGNED)),0), "
        f"COALESCE(SUM(LENGTH({row})),0) FROM {qt(info.db, info.name)}{as_of}"
    )


def table_checksum(conn: Connection, info: TableInfo, read_us_sql: str | None) -> tuple[int, int, int]:
    count, crc, size = query(conn, checksum_sql(info, read_us_sql))[0]
    return int(count), int(crc), int(size)


# --------------------------------------------------------------------------- writes


def _literal_fn(kind: str) -> Any:
    if kind == "binary":
        return lambda v: "NULL" if v is None else ("X'" + v.hex() + "'" if v else "''")
    if kind == "bit":
        return lambda v: "NULL" if v is None else str(int(v))
    return lambda v: "NULL" if v is None else "'" + escape_string(v) + "'"


def insert_statements(
    db: str,
    table: str,
    columns: Sequence[str],
    kinds: Sequence[str],
    rows: Sequence[Sequence[Any]],
    max_bytes: int = 2 << 20,
) -> Iterator[str]:
    """Multi-row ``INSERT`` statements (values already decoded: text ``str``, binary ``bytes``)."""
    head = f"INSERT INTO {qt(db, table)} (" + ", ".join(qi(c) for c in columns) + ") VALUES "
    fns = [_literal_fn(k) for k in kinds]
    parts: list[str] = []
    size = len(head)
    for row in rows:
        text = "(" + ",".join([fn(v) for fn, v in zip(fns, row, strict=True)]) + ")"
        if parts and size + len(text) + 1 > max_bytes:
            yield head + ",".join(parts)
            parts, size = [], len(head)
        parts.append(text)
        size += len(text) + 1
    if parts:
        yield head + ",".join(parts)


def delete_statements(
    db: str,
    table: str,
    pk_cols: Sequence[str],
    pk_kinds: Sequence[str],
    keys: Sequence[Sequence[Any]],
    batch: int = 500,
) -> Iterator[str]:
    fns = [_literal_fn(k) for k in pk_kinds]
    target = "(" + ", ".join(qi(c) for c in pk_cols) + ")"
    for i in range(0, len(keys), batch):
        chunk = keys[i : i + batch]
        values = ",".join("(" + ",".join(fn(v) for fn, v in zip(fns, key, strict=True)) + ")" for key in chunk)
        yield f"DELETE FROM {qt(db, table)} WHERE {target} IN ({values})"


def prepare_restore_session(conn: Connection) -> None:
    execute(conn, "SET SESSION foreign_key_checks = 0, unique_checks = 0")
    execute(conn, "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")
