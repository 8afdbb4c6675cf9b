"""The SQL the validation runs, and how it reports differences (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidbops.validate.fingerprint import (
    ALGORITHM,
    Chunk,
    ChunkMismatch,
    ChunkSum,
    _range_where,
    fingerprint_sql,
    row_expr,
)
from tidbops.validate.schema import Column, Index, TableDef, compare_tables
from tidbops.validate.sql import Dialect, ValidationError, as_of_clause, quote

pytestmark = pytest.mark.unit

T = datetime(2026, 11, 22, 10, 41, 7, 250000, tzinfo=UTC)
ORDERS = TableDef(
    "shop",
    "orders",
    (
        Column("id", 1, "bigint", False),
        Column("note", 2, "varchar(64)", True),
        Column("total", 3, "decimal(12,2)", False),
    ),
    (Index("PRIMARY", True, ("id",)), Index("idx_note", False, ("note",))),
)
ITEMS = TableDef(
    "shop",
    "order_items",
    (Column("order_id", 1, "bigint", False), Column("line_no", 2, "int", False), Column("qty", 3, "int", True)),
    (Index("PRIMARY", True, ("order_id", "line_no")),),
)


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        ("8.0.11-TiDB-v8.5.1", Dialect.TIDB),
        ("5.7.25-TiDB-v6.5.0", Dialect.TIDB),
        ("10.11.6-MariaDB-0+deb12u1", Dialect.MARIADB),
        ("8.0.36", Dialect.MYSQL),
    ],
)
def test_dialect_from_version(version: str, dialect: Dialect) -> None:
    assert Dialect.from_version(version) is dialect


def test_as_of_per_server_in_utc() -> None:
    local = T.astimezone(timezone(timedelta(hours=8)))
    assert as_of_clause(Dialect.TIDB, local) == " AS OF TIMESTAMP '2026-11-22 10:41:07.250000'"
    assert as_of_clause(Dialect.MARIADB, T) == " FOR SYSTEM_TIME AS OF TIMESTAMP '2026-11-22 10:41:07.250000'"
    assert as_of_clause(Dialect.MYSQL, None) == ""
    with pytest.raises(ValidationError, match="MySQL keeps no history"):
        as_of_clause(Dialect.MYSQL, T)
    with pytest.raises(ValidationError, match="no time zone"):
        as_of_clause(Dialect.TIDB, T.replace(tzinfo=None))


def test_identifiers_are_quoted() -> None:
    assert quote("we`ird") == "`we``ird`"


def test_fingerprint_covers_every_column_and_its_nullness_over_a_key_range() -> None:
    sql, args = fingerprint_sql(ORDERS, Chunk((100,), (200,)), dialect=Dialect.TIDB, at=T)
    assert sql == (
        "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', `id`, `note`, `total`, ISNULL(`note`)))), 0) "
        "FROM `shop`.`orders` AS OF TIMESTAMP '2026-11-22 10:41:07.250000' WHERE (`id`) > (%s) AND (`id`) <= (%s)"
    )
    assert args == [100, 200]
    assert ALGORITHM == 2 and fingerprint_sql(ORDERS, Chunk(None, None), algorithm=1)[0] == (
        "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', `id`, `note`, `total`, "
        "CONCAT('0', ISNULL(`note`), '0')))), 0) FROM `shop`.`orders`"
    )
    with pytest.raises(ValueError, match="unknown fingerprint algorithm 3"):
        fingerprint_sql(ORDERS, Chunk(None, None), algorithm=3)


@pytest.mark.parametrize(
    ("nullable", "marks"),
    [
        ((False, False, False), "'000'"),
        ((True, True, True), "CONCAT(ISNULL(`a`), ISNULL(`b`), ISNULL(`c`))"),
        ((True, False, False), "CONCAT(ISNULL(`a`), '00')"),
        ((False, False, True), "CONCAT('00', ISNULL(`c`))"),
        ((False, True, False), "CONCAT('0', ISNULL(`b`), '0')"),
    ],
    ids=["none", "all", "first", "last", "middle"],
)
def test_algorithm_1_null_marks_are_evaluated_only_where_a_null_can_be(nullable: tuple[bool, ...], marks: str) -> None:
    """NOT NULL columns get the literal '0' ISNULL would return: the same row string, less work per row."""
    table = TableDef(
        "s", "t", tuple(Column(n, i, "int", null) for i, (n, null) in enumerate(zip("abc", nullable, strict=True), 1))
    )
    sql, _ = fingerprint_sql(table, Chunk(None, None), algorithm=1)
    assert sql == f"SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', `a`, `b`, `c`, {marks}))), 0) FROM `s`.`t`"


@pytest.mark.parametrize(
    ("columns", "expr"),
    [
        ([("a", "int(11)", False), ("b", "varchar(8)", False)], "CONCAT_WS(',', `a`, `b`)"),
        (
            [("a", "bigint(20) unsigned", True), ("d", "decimal(12,2)", True), ("t", "datetime(6)", True),
             ("y", "year(4)", True), ("h", "time", True), ("x", "date", True)],
            "CONCAT_WS(',', IFNULL(`a`, 'NULL'), IFNULL(`d`, 'NULL'), IFNULL(`t`, 'NULL'), IFNULL(`y`, 'NULL'), "
            "IFNULL(`h`, 'NULL'), IFNULL(`x`, 'NULL'))",
        ),
        (
            [("id", "int", False), ("s", "varchar(8)", True), ("n", "int", True), ("f", "double", True),
             ("j", "json", True), ("b", "bit(16)", True), ("e", "enum('NULL','x')", True), ("k", "text", False)],
            "CONCAT_WS(',', `id`, `s`, IFNULL(`n`, 'NULL'), `f`, `j`, `b`, `e`, `k`, "
            "ISNULL(`s`) | (ISNULL(`f`) << 1) | (ISNULL(`j`) << 2) | (ISNULL(`b`) << 3) | (ISNULL(`e`) << 4))",
        ),
    ],
    ids=["no-nullable-column", "exact-types-take-ifnull", "string-like-types-take-bits"],
)  # fmt: skip
def test_algorithm_2_marks_nulls_with_ifnull_where_exact_and_one_bitmap_for_the_rest(
    columns: list[tuple[str, str, bool]], expr: str
) -> None:
    """Types whose text can never be the four letters NULL take IFNULL(c, 'NULL'); the others (strings,
    JSON, BIT's bytes and ENUM values can be that text; floats, whose text IFNULL's type may round) keep the
    column and a bit in one integer argument; NOT NULL columns need nothing."""
    table = TableDef("s", "t", tuple(Column(n, i, t, null) for i, (n, t, null) in enumerate(columns, 1)))
    assert row_expr(table) == expr


def test_algorithm_2_puts_63_null_bits_in_an_argument() -> None:
    table = TableDef("s", "t", tuple(Column(f"c{i}", i, "varchar(4)", True) for i in range(130)))
    marks = row_expr(table).removesuffix(")").split(", ")[131:]  # after the separator and the columns
    assert [m.count("ISNULL") for m in marks] == [63, 63, 4]
    assert marks[1].startswith("ISNULL(`c63`) | (ISNULL(`c64`) << 1)") and marks[0].endswith("(ISNULL(`c62`) << 62)")


@pytest.mark.parametrize(
    ("chunk", "where", "args"),
    [
        (Chunk(None, None), "", []),
        (Chunk(None, (5, 2)), " WHERE (`order_id`, `line_no`) <= (%s, %s)", [5, 2]),
        (Chunk((5, 2), None), " WHERE (`order_id`, `line_no`) > (%s, %s)", [5, 2]),
    ],
)
def test_composite_keys_compare_as_row_values(chunk: Chunk, where: str, args: list[int]) -> None:
    assert _range_where(ITEMS.chunk_key(), chunk) == (where, args)


def test_chunk_key_falls_back_to_a_not_null_unique_index_then_to_the_whole_table() -> None:
    cols = (Column("code", 1, "varchar(8)", False), Column("alt", 2, "varchar(8)", True))
    uniq = TableDef("s", "t", cols, (Index("uk_alt", True, ("alt",)), Index("uk_code", True, ("code",))))
    assert uniq.chunk_key() == ("code",)  # uk_alt's column may be NULL
    assert TableDef("s", "t", cols, (Index("k", False, ("code",)),)).chunk_key() == ()
    assert ITEMS.chunk_key() == ("order_id", "line_no")


def test_a_mismatch_names_the_key_range_and_what_differs() -> None:
    m = ChunkMismatch(Chunk((100,), (200,)), ("id",), ChunkSum(100, 7), ChunkSum(99, 8))
    assert str(m) == "(id) in (100, 200]: 100 rows in the source, 99 restored"
    m = ChunkMismatch(Chunk(None, None), ("order_id", "line_no"), ChunkSum(3, 7), ChunkSum(3, 8))
    assert str(m) == "(order_id, line_no) in (-∞, +∞]: 3 rows on both sides, contents differ"


def test_schema_differences_name_table_and_what() -> None:
    changed = TableDef(
        "shop",
        "orders",
        (Column("id", 1, "bigint", False), Column("note", 2, "varchar(32)", True), Column("extra", 3, "int", True)),
        (Index("PRIMARY", True, ("id",)),),
    )
    report = compare_tables({"shop.orders": ORDERS, "shop.order_items": ITEMS}, {"shop.orders": changed})
    assert not report.ok and report.tables == ("shop.orders",)
    assert [str(d) for d in report.diffs] == [
        "shop.order_items: missing table: in the source, not in the restored cluster",
        "shop.orders: columns: missing total; extra extra; note: note varchar(64) vs note varchar(32)",
        "shop.orders: indexes: missing index idx_note",
    ]
    assert compare_tables({"shop.orders": ORDERS}, {"shop.orders": ORDERS}).ok
