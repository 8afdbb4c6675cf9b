"""Schema and content validation against a real MariaDB, the source read from its system-versioned history.

The server reports a TiDB version string, as the playground's clusters do: the dialect must still be
found to be MariaDB (history is read with ``FOR SYSTEM_TIME AS OF``).
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pymysql
import pytest

from tidbops.validate.fingerprint import (
    ChunkSum,
    FingerprintError,
    _range_where,
    chunk_sum,
    compare_table,
    iter_chunk_sums,
    row_expr,
    split_chunks,
)
from tidbops.validate.schema import compare_tables, list_schemas, read_tables
from tidbops.validate.sql import Dialect, detect_dialect
from tidbops_playground.mariadb import MariaDBInstance

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBInstance]:
    instance = MariaDBInstance(tmp_path_factory.mktemp("validate-mariadb"), free_port(), secrets.token_hex(12))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def cursor_of(server: MariaDBInstance) -> Any:
    conn = server.connect()
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    return cur


SCHEMA = """
CREATE DATABASE {db};
CREATE TABLE {db}.orders (
  id BIGINT NOT NULL, note VARCHAR(64) NULL, total DECIMAL(12,2) NOT NULL, PRIMARY KEY (id), KEY idx_note (note)
) WITH SYSTEM VERSIONING;
CREATE TABLE {db}.items (
  order_id BIGINT NOT NULL, line_no INT NOT NULL, qty INT NULL, PRIMARY KEY (order_id, line_no)
) WITH SYSTEM VERSIONING;
CREATE TABLE {db}.tags (code VARCHAR(8) NOT NULL, label VARCHAR(32), UNIQUE KEY uk_code (code)) WITH SYSTEM VERSIONING;
"""


def create(cur: Any, db: str) -> None:
    for stmt in SCHEMA.format(db=db).split(";"):
        if stmt.strip():
            cur.execute(stmt)


def test_the_playground_server_is_mariadb_whatever_its_version_says(server: MariaDBInstance) -> None:
    cur = cursor_of(server)
    cur.execute("SELECT VERSION()")
    assert "TiDB" in cur.fetchone()[0]
    assert detect_dialect(cur) is Dialect.MARIADB


def test_a_faithful_copy_as_of_t_matches_and_a_damaged_one_names_the_chunk(server: MariaDBInstance) -> None:
    cur = cursor_of(server)
    create(cur, "src")
    cur.executemany(
        "INSERT INTO src.orders VALUES (%s, %s, %s)",
        [(i, None if i % 7 == 0 else f"n{i}", i * 1.5) for i in range(1, 1001)],
    )
    cur.executemany(
        "INSERT INTO src.items VALUES (%s, %s, %s)",
        [(o, n, None if n == 2 else n) for o in range(1, 201) for n in range(1, 4)],
    )
    cur.executemany("INSERT INTO src.tags VALUES (%s, %s)", [(f"t{i}", f"label {i}") for i in range(50)])
    time.sleep(0.05)
    cur.execute("SELECT NOW(6)")
    at = cur.fetchone()[0].replace(tzinfo=UTC)
    time.sleep(0.05)
    # the source moves on after the restore point
    cur.execute("UPDATE src.orders SET total = total + 1 WHERE id BETWEEN 10 AND 20")
    cur.execute("DELETE FROM src.items WHERE order_id = 5")
    cur.execute("INSERT INTO src.orders VALUES (5000, 'late', 1)")

    # the "restored" copy: what the source held at `at`
    create(cur, "dst")
    for t in ("orders", "items"):
        cur.execute(
            f"INSERT INTO dst.{t} SELECT * FROM src.{t} FOR SYSTEM_TIME AS OF TIMESTAMP %s", (at.replace(tzinfo=None),)
        )
    cur.execute("INSERT INTO dst.tags SELECT * FROM src.tags")

    src, dst = read_tables(cur, ["src"]), read_tables(cur, ["dst"])
    assert sorted(src) == ["src.items", "src.orders", "src.tags"] and src["src.tags"].chunk_key() == ("code",)
    renamed = {k.replace("dst.", "src."): v for k, v in dst.items()}
    report = compare_tables(src, renamed)
    assert report.ok, report.diffs

    source_cur = cursor_of(server)  # a second connection: the sides are read at once, each on its own

    def check(table: str, target_db: str, chunk_rows: int) -> Any:
        tdef = src[f"src.{table}"]
        target_def = type(tdef)(target_db, tdef.name, tdef.columns, tdef.indexes)
        # the source cursor reads src as of `at`; the target reads dst now (same server, two names)
        results = [
            compare_table(
                _Renamed(source_cur, f"`{target_db}`.", "`src`."), cur, target_def, at=at,
                source_dialect=Dialect.MARIADB, target_dialect=Dialect.MARIADB, chunk_rows=chunk_rows,
                concurrent=concurrent,
            )
            for concurrent in (True, False)
        ]  # fmt: skip
        assert results[0] == results[1]  # a thread per side, or one after the other: the same comparison
        return results[0]

    orders = check("orders", "dst", 100)
    assert orders.ok and orders.chunks == 11 and orders.source_rows == orders.target_rows == 1000
    items = check("items", "dst", 64)
    assert items.ok and items.source_rows == 600 and items.chunks == 10
    assert check("tags", "dst", 1000).ok  # no PK: chunked on the NOT NULL unique key

    # the source now (no AS OF) differs: the check does see changes
    now = compare_table(
        _Renamed(source_cur, "`dst`.", "`src`."), cur, type(src["src.orders"])("dst", "orders", src["src.orders"].columns, src["src.orders"].indexes),
        at=None, source_dialect=Dialect.MARIADB, target_dialect=Dialect.MARIADB, chunk_rows=100,
    )  # fmt: skip
    assert not now.ok and now.source_rows == 1001

    # damage the restored copy: one changed value, one lost row, one NULL that became ''
    cur.execute("UPDATE dst.orders SET total = 0 WHERE id = 150")
    cur.execute("DELETE FROM dst.items WHERE order_id = 77 AND line_no = 3")
    cur.execute("UPDATE dst.orders SET note = '' WHERE id = 700")
    orders = check("orders", "dst", 100)
    assert [str(m) for m in orders.mismatches] == [
        "(id) in (100, 200]: 100 rows on both sides, contents differ",
        "(id) in (600, 700]: 100 rows on both sides, contents differ",
    ]
    items = check("items", "dst", 64)
    assert len(items.mismatches) == 1 and "1 rows" not in str(items.mismatches[0])
    assert "rows in the source" in str(items.mismatches[0]) and items.target_rows == 599


def test_split_chunks_covers_every_row_once(server: MariaDBInstance) -> None:
    cur = cursor_of(server)
    create(cur, "chunks")
    cur.executemany("INSERT INTO chunks.items VALUES (%s, %s, 1)", [(o, n) for o in range(1, 34) for n in range(1, 4)])
    table = read_tables(cur, ["chunks"])["chunks.items"]
    for size in (1, 7, 99, 100, 1000):
        chunks = split_chunks(cur, table, chunk_rows=size, dialect=Dialect.MARIADB)
        assert chunks[0].lower is None and chunks[-1].upper is None
        assert all(a.upper == b.lower for a, b in itertools.pairwise(chunks))
        assert len(chunks) == 99 // size + 1


def test_list_schemas_leaves_out_system_and_our_own(server: MariaDBInstance) -> None:
    cur = cursor_of(server)
    cur.execute("CREATE DATABASE IF NOT EXISTS tidbops_slowlog")
    names = list_schemas(cur)
    assert "mysql" not in names and "information_schema" not in names and "tidbops_slowlog" not in names


MIXED = """
CREATE DATABASE {db};
CREATE TABLE {db}.events (
  id BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, amount DECIMAL(14,4) NULL, at DATETIME(6) NOT NULL,
  body TEXT NULL, flag TINYINT NULL, PRIMARY KEY (id)
);
"""


def mixed_table(cur: Any, db: str, rows: int) -> None:
    for stmt in MIXED.format(db=db).split(";"):
        if stmt.strip():
            cur.execute(stmt)
    cur.execute(
        f"INSERT INTO {db}.events SELECT seq, ELT(1 + seq % 4, 'put', 'get', 'del', ''), "
        "IF(seq % 11 = 0, NULL, seq * 1.0625), TIMESTAMP('2026-01-01') + INTERVAL seq SECOND, "
        "IF(seq % 13 = 0, NULL, REPEAT(CHAR(65 + seq % 26), seq % 40)), IF(seq % 3 = 0, NULL, seq % 2) "
        f"FROM {db}.seq_1_to_{rows}"
    )


def test_a_thread_per_side_finds_what_one_side_after_the_other_finds(server: MariaDBInstance) -> None:
    """Two connections, as two clusters: equal copies, then a damaged row on either side, at several chunk
    sizes; the concurrent comparison equals the sequential one every time."""
    cur = cursor_of(server)
    mixed_table(cur, "mix_src", 20_000)
    mixed_table(cur, "mix_dst", 20_000)
    table = read_tables(cur, ["mix_dst"])["mix_dst.events"]
    source = _Renamed(cursor_of(server), "`mix_dst`.", "`mix_src`.")
    target = cursor_of(server)

    def both(chunk_rows: int) -> Any:
        concurrent, sequential = (
            compare_table(
                source, target, table, at=None, source_dialect=Dialect.MARIADB,
                target_dialect=Dialect.MARIADB, chunk_rows=chunk_rows, concurrent=c,
            )
            for c in (True, False)
        )  # fmt: skip
        assert concurrent == sequential
        return concurrent

    for size in (999, 5000, 50_000):
        assert both(size).ok and both(size).source_rows == 20_000
    cur.execute("UPDATE mix_dst.events SET body = NULL WHERE id = 4240")  # it was '': NULL and '' differ
    cur.execute("UPDATE mix_src.events SET amount = amount + 0.0001 WHERE id = 17000")
    cur.execute("DELETE FROM mix_dst.events WHERE id = 9000")
    found = both(5000)
    assert [str(m) for m in found.mismatches] == [
        "(id) in (-∞, 5000]: 5000 rows on both sides, contents differ",
        "(id) in (5000, 10001]: 5001 rows in the source, 5000 restored",
        "(id) in (15001, +∞]: 4999 rows on both sides, contents differ",
    ]
    assert (found.source_rows, found.target_rows, found.chunks) == (20_000, 19_999, 4)


def test_algorithm_1_checksums_are_those_of_isnull_on_every_column(server: MariaDBInstance) -> None:
    """Fingerprints recorded before the NULL marks became literals for NOT NULL columns (and before the
    no-op CAST went) stay comparable with algorithm 1: on real rows, NULLs included, every chunk's sum is
    the same."""
    cur = cursor_of(server)
    mixed_table(cur, "marks", 3000)
    table = read_tables(cur, ["marks"])["marks.events"]
    assert {c.name for c in table.columns if not c.nullable} == {"id", "kind", "at"}
    cols = [f"`{c.name}`" for c in sorted(table.columns, key=lambda c: c.position)]
    as_first_written = (
        f"SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CRC32(CONCAT_WS(',', {', '.join(cols)}, "
        f"CONCAT({', '.join(f'ISNULL({c})' for c in cols)}))) AS UNSIGNED)), 0) FROM `marks`.`events`"
    )
    chunks = split_chunks(cur, table, chunk_rows=250, dialect=Dialect.MARIADB)
    for chunk in chunks:
        where, args = _range_where(table.chunk_key(), chunk)
        cur.execute(as_first_written + where, args)
        rows, checksum = cur.fetchone()
        got = chunk_sum(cur, table, chunk, dialect=Dialect.MARIADB, algorithm=1)
        assert got == ChunkSum(int(rows), int(checksum)), chunk
    assert len(chunks) == 13


TRICKY = """
CREATE DATABASE tricky;
CREATE TABLE tricky.t (
  id INT NOT NULL PRIMARY KEY, s VARCHAR(8) NULL, n INT NULL, d DECIMAL(6,2) NULL, f DOUBLE NULL,
  at DATETIME(3) NULL, b VARBINARY(4) NULL, e ENUM('NULL', 'x') NULL, j JSON NULL, k VARCHAR(4) NOT NULL
);
"""


def test_algorithm_2_tells_null_from_empty_from_its_own_text_and_from_a_missing_value(server: MariaDBInstance) -> None:
    """Every row below differs from every other (NULL, '', the text 'NULL', '0', a value in the next column,
    in strings, integers, decimals, floats, datetimes, bytes, ENUM, JSON): so must their row strings, hence
    (barring CRC32 collisions) their fingerprints, with the cheaper algorithm 2 as with algorithm 1."""
    cur = cursor_of(server)
    for stmt in TRICKY.split(";"):
        if stmt.strip():
            cur.execute(stmt)
    values: dict[str, list[Any]] = {
        "s": [None, "", "NULL", "0", "1"], "n": [None, 0, 1], "d": [None, "0.00"], "f": [None, 0.0],
        "at": [None, "2026-01-01 00:00:00"], "b": [None, b"", b"NULL"], "e": [None, "NULL"], "j": [None, '"NULL"', "0"],
    }  # fmt: skip
    rows = []
    for i, combo in enumerate(itertools.product(*values.values()), 1):
        rows.append((i, *combo, "k"))
    cur.executemany("INSERT INTO tricky.t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    table = read_tables(cur, ["tricky"])["tricky.t"]
    values_only = type(table)(table.schema, table.name, tuple(c for c in table.columns if c.name != "id"))
    for algorithm in (1, 2):
        cur.execute(
            f"SELECT {row_expr(values_only, algorithm)}, CRC32({row_expr(values_only, algorithm)}) FROM tricky.t"
        )
        found = cur.fetchall()
        assert len(found) == len(rows) == 5 * 3 * 2 * 2 * 2 * 3 * 2 * 3
        assert len({text for text, _ in found}) == len(rows), algorithm  # no two rows' strings alike
        assert len({crc for _, crc in found}) > len(rows) * 0.99
    cur.execute(f"SELECT {row_expr(values_only)} FROM tricky.t WHERE id = 1")
    assert cur.fetchone()[0] == b"NULL,NULL,NULL,k,31"  # n, d, at written out; s, f, b, e, j as bits 0-4


class _KilledAt:
    """A real cursor whose connection the server kills (``KILL``, from another connection) just before its
    ``at``-th statement: the driver then fails that statement as it does when a server goes away."""

    def __init__(self, server: MariaDBInstance, at: int, *, rename: tuple[str, str] | None = None) -> None:
        self.conn = server.connect()
        self.cur = self.conn.cursor()
        self.cur.execute("SET time_zone = '+00:00'")
        self.admin, self.at, self.rename, self.statements = server.connect(), at, rename, 0

    def execute(self, query: str, args: Any = None) -> Any:
        self.statements += 1
        if self.statements == self.at:
            with self.admin.cursor() as admin:
                admin.execute(f"KILL CONNECTION {self.conn.thread_id()}")
        if self.rename:
            query = query.replace(*self.rename)
        return self.cur.execute(query, args)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> Any:
        return self.cur.fetchall()


@pytest.mark.parametrize("failing", ["source", "target"])
def test_a_side_whose_server_goes_away_stops_both(server: MariaDBInstance, failing: str) -> None:
    cur = cursor_of(server)
    cur.execute("CREATE DATABASE IF NOT EXISTS gone_src")
    cur.execute("CREATE DATABASE IF NOT EXISTS gone_dst")
    for db in ("gone_src", "gone_dst"):
        cur.execute(f"CREATE TABLE IF NOT EXISTS {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(8))")
        cur.execute(f"INSERT IGNORE INTO {db}.t SELECT seq, 'v' FROM {db}.seq_1_to_50000")
    table = read_tables(cur, ["gone_dst"])["gone_dst.t"]
    rename = ("`gone_dst`.", "`gone_src`.")
    if failing == "source":
        source: Any = _KilledAt(server, 3, rename=rename)
        target: Any = _KilledAt(server, 0)
    else:
        source, target = _KilledAt(server, 0, rename=rename), _KilledAt(server, 5)
    with pytest.raises(FingerprintError) as caught:
        compare_table(
            source, target, table, at=None, source_dialect=Dialect.MARIADB,
            target_dialect=Dialect.MARIADB, chunk_rows=100,
        )  # fmt: skip
    assert caught.value.side == failing
    assert isinstance(caught.value.__cause__, pymysql.err.OperationalError)
    assert f"fingerprinting the {failing} failed on gone_dst.t" in str(caught.value)
    healthy = target if failing == "source" else source
    assert healthy.statements <= 12, healthy.statements  # of 1,001 for 500 chunks


class _Renamed:
    """A cursor that reads another database under the same table names (one server plays two clusters)."""

    def __init__(self, cur: Any, old: str, new: str) -> None:
        self.cur, self.old, self.new = cur, old, new

    def execute(self, query: str, args: Any = None) -> Any:
        return self.cur.execute(query.replace(self.old, self.new), args)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> Any:
        return self.cur.fetchall()


KEYS = """
CREATE DATABASE {db};
CREATE TABLE {db}.dense (id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL);
CREATE TABLE {db}.sparse (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL);
CREATE TABLE {db}.neg (id SMALLINT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL);
CREATE TABLE {db}.text (code VARCHAR(16) COLLATE utf8mb4_general_ci NOT NULL, v VARCHAR(20) NULL, UNIQUE KEY uk (code));
CREATE TABLE {db}.dated (at DATETIME(6) NOT NULL PRIMARY KEY, v VARCHAR(20) NULL);
CREATE TABLE {db}.pair (a INT NOT NULL, b VARCHAR(4) NOT NULL, v VARCHAR(20) NULL, PRIMARY KEY (a, b));
CREATE TABLE {db}.empty (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL);
"""


def test_the_targets_chunks_and_sums_are_the_walks_on_every_kind_of_key(server: MariaDBInstance) -> None:
    """iter_chunk_sums (a guessed range on integer keys, lead_sql on others, the walk on composite keys)
    gives exactly the chunks and sums of split_chunks + chunk_sum, which the fingerprints recorded after
    backups use: at chunk sizes below, at and above the table's size and dividing it."""
    cur = cursor_of(server)
    for stmt in KEYS.format(db="keyed").split(";"):
        if stmt.strip():
            cur.execute(stmt)
    note = "IF(seq % 7 = 0, NULL, IF(seq % 5 = 0, '', CONCAT('v', seq)))"
    cur.execute(f"INSERT INTO keyed.dense SELECT seq, {note} FROM keyed.seq_1_to_1000")
    cur.execute(f"INSERT INTO keyed.sparse SELECT seq * seq % 100003, {note} FROM keyed.seq_1_to_1000")
    cur.execute(f"INSERT INTO keyed.neg SELECT CAST(seq AS SIGNED) - 500, {note} FROM keyed.seq_1_to_1000")
    cur.execute(
        f"INSERT INTO keyed.text SELECT CONCAT(IF(seq % 2, 'k', 'K'), seq * 37 % 1009), {note} FROM keyed.seq_1_to_1000"
    )
    cur.execute(
        f"INSERT INTO keyed.dated SELECT TIMESTAMP('2026-01-01') + INTERVAL seq * 1001 MICROSECOND, {note} FROM keyed.seq_1_to_1000"
    )
    cur.execute(f"INSERT INTO keyed.pair SELECT seq DIV 3, CHAR(97 + seq % 3), {note} FROM keyed.seq_1_to_1000")
    tables = read_tables(cur, ["keyed"])
    assert len(tables) == 7
    for name, table in tables.items():
        for size in (1, 7, 100, 999, 1000, 1001, 5000):
            walked = split_chunks(cur, table, chunk_rows=size, dialect=Dialect.MARIADB)
            expected = [(c, chunk_sum(cur, table, c, dialect=Dialect.MARIADB)) for c in walked]
            assert list(iter_chunk_sums(cur, table, chunk_rows=size, dialect=Dialect.MARIADB)) == expected, (name, size)
            assert sum(s.rows for _, s in expected) == (0 if name == "keyed.empty" else 1000)


def test_damage_is_found_in_the_same_chunk_by_every_path(server: MariaDBInstance) -> None:
    """A row changed, lost or added on either side, at the ends too: both ways of compare_table name the
    chunks that recorded fingerprints (split_chunks + chunk_sum on both sides) name."""
    cur = cursor_of(server)
    mixed_table(cur, "dmg_src", 3000)
    mixed_table(cur, "dmg_dst", 3000)
    table = read_tables(cur, ["dmg_dst"])["dmg_dst.events"]
    source = _Renamed(cursor_of(server), "`dmg_dst`.", "`dmg_src`.")
    target = cursor_of(server)
    for stmt in (
        "DELETE FROM dmg_dst.events WHERE id IN (1, 3000)",  # lost at both ends of the target
        "INSERT INTO dmg_src.events SELECT 0, 'put', NULL, TIMESTAMP('2026-01-01'), NULL, NULL",  # before the first
        "INSERT INTO dmg_src.events SELECT 9999, 'put', NULL, TIMESTAMP('2026-01-01'), NULL, NULL",  # after the last
        "UPDATE dmg_src.events SET kind = 'get' WHERE id = 1500",
        "UPDATE dmg_dst.events SET flag = NULL WHERE id = 2200 AND flag IS NOT NULL",
        "DELETE FROM dmg_src.events WHERE id = 700",
    ):
        cur.execute(stmt)
    walked = split_chunks(target, table, chunk_rows=500, dialect=Dialect.MARIADB)
    expected = [
        f"{c.describe(table.chunk_key())}: {s.rows}/{t.rows}"
        for c in walked
        if (s := chunk_sum(source, table, c, dialect=Dialect.MARIADB))
        != (t := chunk_sum(target, table, c, dialect=Dialect.MARIADB))
    ]
    assert len(expected) >= 4
    for concurrent in (True, False):
        found = compare_table(
            source, target, table, at=None, source_dialect=Dialect.MARIADB,
            target_dialect=Dialect.MARIADB, chunk_rows=500, concurrent=concurrent,
        )  # fmt: skip
        assert [f"{m.chunk.describe(m.key)}: {m.source.rows}/{m.target.rows}" for m in found.mismatches] == expected
        assert (found.source_rows, found.target_rows) == (3001, 2998)
