"""The seeded workload: schema shape, data variety, determinism, system-versioned history."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pymysql
import pytest

from tidbops_playground import seed

if TYPE_CHECKING:
    from conftest import Playground

pytestmark = pytest.mark.playground


GC_MIN_LIFE_S = 600  # TiDB's (and the emulator's) minimum tikv_gc_life_time: younger history is kept


def _seed_history_kept(conn: pymysql.connections.Connection, seeded_at: object) -> None:  # type: ignore[type-arg]
    """Skip when the GC worker may legitimately have purged the seeded state's history already."""
    age = _one(conn, "SELECT TIMESTAMPDIFF(SECOND, %s, UTC_TIMESTAMP(6))", (seeded_at,))
    if int(age) > GC_MIN_LIFE_S - 60:  # type: ignore[call-overload]
        pytest.skip(f"the seed is {age}s old: GC may have purged its history")


def _one(conn: pymysql.connections.Connection, sql: str, args: tuple[object, ...] = ()) -> object:  # type: ignore[type-arg]
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    assert row is not None
    return row[0]


def _all(conn: pymysql.connections.Connection, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def test_table_counts_sum_to_rows() -> None:
    for rows in (seed.MIN_ROWS, 5000, 100_000, 123_457):
        counts = seed.table_counts(rows)
        assert sum(counts.values()) == rows
        assert list(counts) == list(seed.TABLES)
        assert all(n > 0 for n in counts.values())
        assert counts["shop.order_items"] >= counts["shop.orders"]
    with pytest.raises(ValueError):
        seed.table_counts(seed.MIN_ROWS - 1)


def test_generation_is_deterministic_per_seed_and_cluster() -> None:
    a = seed.generate("dev", 2000, seed=7)
    assert seed.fingerprint(a) == seed.fingerprint(seed.generate("dev", 2000, seed=7))
    assert seed.fingerprint(a) != seed.fingerprint(seed.generate("prod", 2000, seed=7))
    assert seed.fingerprint(a) != seed.fingerprint(seed.generate("dev", 2000, seed=8))
    assert {t: len(lines) for t, lines in a.items()} == seed.table_counts(2000)


def test_seeded_schema_has_keys_indexes_fks_and_system_versioning(playground: Playground) -> None:
    conn = playground.connect("prod")
    try:
        tables = _all(
            conn,
            "SELECT CONCAT(table_schema, '.', table_name), table_type, table_collation "
            "FROM information_schema.tables WHERE table_schema IN ('shop', 'crm', 'metrics')",
        )
        assert sorted(t for t, _, _ in tables) == sorted(seed.TABLES)
        assert {tt for _, tt, _ in tables} == {"SYSTEM VERSIONED"}
        assert {coll for _, _, coll in tables} == {"utf8mb4_bin"}

        pks = _all(
            conn,
            "SELECT CONCAT(table_schema, '.', table_name), GROUP_CONCAT(column_name ORDER BY seq_in_index) "
            "FROM information_schema.statistics WHERE index_name = 'PRIMARY' "
            "AND table_schema IN ('shop', 'crm', 'metrics') GROUP BY 1",
        )
        pk = dict(pks)
        assert set(pk) == set(seed.TABLES)
        assert pk["shop.order_items"] == "order_id,line_no"
        assert pk["shop.customers"] == "id"

        secondary = _all(
            conn,
            "SELECT DISTINCT CONCAT(table_schema, '.', table_name, '.', index_name), non_unique "
            "FROM information_schema.statistics WHERE index_name <> 'PRIMARY' "
            "AND table_schema IN ('shop', 'crm', 'metrics')",
        )
        names = {n: int(nu) for n, nu in secondary}  # type: ignore[call-overload]
        assert names["shop.customers.uk_customers_email"] == 0
        assert names["shop.products.uk_products_sku"] == 0
        assert names["shop.orders.idx_orders_customer_placed"] == 1
        assert names["metrics.events.idx_events_kind_occurred"] == 1

        fks = _all(
            conn,
            "SELECT CONCAT(constraint_schema, '.', table_name), referenced_table_name, delete_rule "
            "FROM information_schema.referential_constraints WHERE constraint_schema IN ('shop', 'crm')",
        )
        assert sorted(fks) == sorted(
            [
                ("shop.orders", "customers", "RESTRICT"),
                ("shop.order_items", "orders", "CASCADE"),
                ("shop.order_items", "products", "RESTRICT"),
                ("crm.notes", "contacts", "CASCADE"),
            ]
        )

        types = _all(
            conn,
            "SELECT CONCAT(table_schema, '.', table_name, '.', column_name), column_type "
            "FROM information_schema.columns WHERE table_schema IN ('shop', 'crm', 'metrics')",
        )
        column_types = {str(t) for _, t in types}
        for wanted in ("decimal(12,2)", "datetime(6)", "blob", "mediumtext", "double", "date", "tinyint(1)"):
            assert wanted in column_types, wanted
        assert any(str(t).startswith("enum(") for t in column_types)
        json_checks = _all(
            conn,
            "SELECT constraint_schema, table_name, check_clause FROM information_schema.check_constraints "
            "WHERE check_clause LIKE 'json_valid%%'",
        )
        assert len(json_checks) >= 5  # customers.profile, products.attributes, contacts.tags, events.payload
    finally:
        conn.close()


def test_seeded_data_has_variety(playground: Playground) -> None:
    conn = playground.connect("dev")
    try:
        assert _one(conn, "SELECT COUNT(*) FROM shop.customers WHERE profile IS NULL") > 0  # type: ignore[operator]
        assert _one(conn, "SELECT COUNT(*) FROM shop.orders WHERE shipped_at IS NULL") > 0  # type: ignore[operator]
        assert _one(conn, "SELECT COUNT(*) FROM shop.products WHERE thumbnail IS NOT NULL") > 0  # type: ignore[operator]
        # 4-byte UTF-8 (emoji) and CJK survive the round trip
        assert _one(conn, "SELECT COUNT(*) FROM crm.notes WHERE body LIKE %s", ("%📦%",)) > 0  # type: ignore[operator]
        assert _one(conn, "SELECT COUNT(*) FROM crm.notes WHERE body LIKE %s", ("%数据保护%",)) > 0  # type: ignore[operator]
        assert _one(conn, "SELECT COUNT(*) FROM crm.notes WHERE body LIKE %s", ("%\t(tab)%",)) > 0  # type: ignore[operator]
        assert _one(conn, "SELECT MAX(LENGTH(full_name) - CHAR_LENGTH(full_name)) FROM shop.customers") > 0  # type: ignore[operator]
        blob = _one(conn, "SELECT attachment FROM crm.notes WHERE attachment IS NOT NULL LIMIT 1")
        assert isinstance(blob, bytes) and len(blob) > 0
        assert _one(conn, "SELECT COUNT(*) FROM shop.customers WHERE JSON_VALID(profile) = 0") == 0
        # the seeded foreign keys hold
        orphans = _one(
            conn,
            "SELECT COUNT(*) FROM shop.order_items i LEFT JOIN shop.orders o ON o.id = i.order_id WHERE o.id IS NULL",
        )
        assert orphans == 0
        # and are enforced
        with pytest.raises(pymysql.err.IntegrityError) as exc:
            _one(conn, "INSERT INTO shop.order_items VALUES (999999999, 1, 1, 1, 1.00, NULL)")
        assert exc.value.args[0] == 1452
    finally:
        conn.close()


def test_every_source_cluster_is_seeded_and_scratch_clusters_are_empty(playground: Playground) -> None:
    for name in playground.sources:
        conn = playground.connect(name)
        try:
            marker = seed.seed_marker(conn)
            assert marker is not None and marker["rows"] == playground.rows and marker["cluster"] == name
            # the seeded state, read back through system versioning at the marker's time, is exactly the seed
            at = marker["seeded_at"]
            _seed_history_kept(conn, at)
            for table, n in seed.table_counts(playground.rows).items():
                got = _one(conn, f"SELECT COUNT(*) FROM {table} FOR SYSTEM_TIME AS OF TIMESTAMP %s", (at,))
                assert got == n, (name, table)
        finally:
            conn.close()
    for name in playground.scratches:
        conn = playground.connect(name)
        try:
            assert seed.seed_marker(conn) is None
            user = _one(
                conn,
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN "
                "('mysql', 'information_schema', 'performance_schema', 'sys')",
            )
            assert user == 0
        finally:
            conn.close()


def test_seeded_content_matches_generator(playground: Playground) -> None:
    """The bytes loaded are the generator's: compare one table's seeded state with a fresh generation."""
    conn = playground.connect("uat")
    try:
        marker = seed.seed_marker(conn)
        assert marker is not None
        _seed_history_kept(conn, marker["seeded_at"])
        rows = _all(
            conn,
            "SELECT id, sku, name, price, HEX(thumbnail) FROM shop.products "
            "FOR SYSTEM_TIME AS OF TIMESTAMP %s ORDER BY id",
            (marker["seeded_at"],),
        )
    finally:
        conn.close()
    generated = seed.generate("uat", playground.rows, marker["seed"])["shop.products"]
    assert len(rows) == len(generated)
    for row, line in zip(rows, generated, strict=True):
        fields = line.split("\t")
        assert str(row[0]) == fields[0] and row[1] == fields[1]
        assert str(row[3]) == fields[4]
        assert (row[4] or "\\N").lower() == fields[7].lower()


def test_history_is_readable_as_of(playground: Playground) -> None:
    with playground.paused("dev"):
        conn = playground.connect("dev")
        try:
            order_id, status = _all(conn, "SELECT id, status FROM shop.orders WHERE status = 'new' LIMIT 1")[0]
            before = _one(conn, "SELECT NOW(6)")
            time.sleep(0.01)
            with conn.cursor() as cur:
                cur.execute("UPDATE shop.orders SET status = 'cancelled' WHERE id = %s", (order_id,))
            middle = _one(conn, "SELECT NOW(6)")
            time.sleep(0.01)
            with conn.cursor() as cur:
                cur.execute("DELETE FROM shop.orders WHERE id = %s", (order_id,))
            assert _all(conn, "SELECT id FROM shop.orders WHERE id = %s", (order_id,)) == []
            as_of = "SELECT status FROM shop.orders FOR SYSTEM_TIME AS OF TIMESTAMP %s WHERE id = %s"
            assert _one(conn, as_of, (before, order_id)) == status
            assert _one(conn, as_of, (middle, order_id)) == "cancelled"
            versions = _one(conn, "SELECT COUNT(*) FROM shop.orders FOR SYSTEM_TIME ALL WHERE id = %s", (order_id,))
            assert versions == 2
            # the cascade removed the order's lines, and their history is there too
            lines_then = _one(
                conn,
                "SELECT COUNT(*) FROM shop.order_items FOR SYSTEM_TIME AS OF TIMESTAMP %s WHERE order_id = %s",
                (middle, order_id),
            )
            assert lines_then > 0  # type: ignore[operator]
            assert _one(conn, "SELECT COUNT(*) FROM shop.order_items WHERE order_id = %s", (order_id,)) == 0
        finally:
            conn.close()
