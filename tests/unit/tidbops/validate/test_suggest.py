"""Suggested expectation suites from constructed schema facts, and the files that never overwrite an edit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops.validate.expectations import load_suites, suite_parameters
from tidbops.validate.schema import Column, Index, TableDef
from tidbops.validate.suggest import (
    FRESHNESS_MARGINS,
    FRESHNESS_UPPER_PARAMETER,
    ForeignKey,
    Outcome,
    TableFacts,
    _enum_values,
    content_hash,
    decide,
    freshness_margin,
    orphan_query,
    recorded_hash,
    row_count_bounds,
    suggest_suite,
    suite_table_name_ok,
    write_suites,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, 0)


def col(name: str, type_: str = "bigint", nullable: bool = False, position: int = 0) -> Column:
    return Column(name, position, type_, nullable)


def orders(**overrides: Any) -> TableFacts:
    definition = TableDef(
        "shop",
        "orders",
        (
            col("id"),
            col("customer_id"),
            col("status", "enum('new','paid')"),
            col("coupon", "varchar(20)", nullable=True),
            col("placed_at", "datetime(6)"),
            col("shipped_at", "timestamp", nullable=True),
            col("due_on", "date", nullable=True),
        ),
        (
            Index("PRIMARY", True, ("id",)),
            Index("uk_coupon", True, ("coupon",)),
            Index("uk_again", True, ("id",)),  # the primary key's columns again: not checked twice
            Index("idx_customer", False, ("customer_id", "placed_at")),
        ),
    )
    facts: dict[str, Any] = {
        "definition": definition,
        "row_count": 12345,
        "observed_at": NOW,
        "foreign_keys": (ForeignKey("fk_orders_customer", ("customer_id",), "shop.customers", ("id",)),),
        "enum_values": {"status": ("new", "paid")},
        "newest": {"placed_at": NOW - timedelta(minutes=3), "shipped_at": NOW - timedelta(days=3)},
    }
    facts.update(overrides)
    return TableFacts(**facts)


def by_type(suite: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["kwargs"] for e in suite["expectations"] if e["type"] == kind]


# ------------------------------------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("count", "bounds"),
    [(0, (0, 1000)), (1, (0, 1100)), (500, (250, 2500)), (2021, (1000, 7100)), (12345, (6100, 39000))],
    ids=["empty", "one", "500", "2021", "12345"],
)
def test_row_count_bounds_are_half_to_three_times_plus_slack_at_two_significant_digits(
    count: int, bounds: tuple[int, int]
) -> None:
    assert row_count_bounds(count) == bounds


@pytest.mark.parametrize(
    ("lag", "margin"),
    [
        (timedelta(0), "1h"),
        (timedelta(minutes=15), "1h"),  # 4 x 15m = 1h
        (timedelta(minutes=16), "6h"),
        (timedelta(hours=1, minutes=30), "6h"),
        (timedelta(hours=2), "1d"),
        (timedelta(hours=7), "7d"),
        (timedelta(days=1), "7d"),
        (timedelta(days=1, seconds=1), None),  # not written in the last day: no freshness check
    ],
    ids=str,
)
def test_freshness_margin_is_four_times_the_lag_at_least_an_hour(lag: timedelta, margin: str | None) -> None:
    assert freshness_margin(lag) == margin


def test_every_parameter_a_suggested_suite_uses_is_one_the_runner_gives() -> None:
    given = suite_parameters(datetime(2026, 1, 1, tzinfo=UTC))
    assert FRESHNESS_UPPER_PARAMETER in given
    assert all(f"restore_point_minus_{name}" in given for name, _ in FRESHNESS_MARGINS)
    assert all(given["restore_point"] - given[f"restore_point_minus_{n}"] == d for n, d in FRESHNESS_MARGINS)


# ------------------------------------------------------------------------------------------ suggesting


def test_a_suite_checks_row_count_not_null_keys_enum_foreign_keys_and_fresh_time_columns() -> None:
    suite = suggest_suite(orders(), "dev")
    assert suite["name"] == "shop.orders" and suite["meta"]["tidbops"]["table"] == "shop.orders"
    assert by_type(suite, "expect_table_row_count_to_be_between") == [{"min_value": 6100, "max_value": 39000}]
    assert [k["column"] for k in by_type(suite, "expect_column_values_to_not_be_null")] == [
        "id",
        "customer_id",
        "status",
        "placed_at",
    ]
    assert [k["column"] for k in by_type(suite, "expect_column_values_to_be_unique")] == ["id", "coupon"]
    assert by_type(suite, "expect_column_values_to_be_in_set") == [{"column": "status", "value_set": ["new", "paid"]}]
    assert by_type(suite, "unexpected_rows_expectation") == [
        {
            "unexpected_rows_query": "SELECT c.`customer_id` FROM {batch} c LEFT JOIN `shop`.`customers` p "
            "ON p.`id` = c.`customer_id` WHERE p.`id` IS NULL"
        }
    ]
    assert by_type(suite, "expect_column_max_to_be_between") == [
        {
            "column": "placed_at",
            "min_value": {"$PARAMETER": "restore_point_minus_1h"},
            "max_value": {"$PARAMETER": "restore_point_plus_5m"},
        }
    ]
    generated = suite["meta"]["tidbops"]["generated"]
    assert generated["row_count"] == 12345 and generated["cluster"] == "dev"
    assert generated["notes"] == [
        "placed_at: newest value 3m old; margin 1h",
        "shipped_at: no freshness check (newest value 3d old)",
    ]  # due_on is a DATE: not a time column
    assert generated["sha256"] == content_hash(suite) == recorded_hash(suite)


def test_a_compound_key_with_a_nullable_column_ignores_rows_with_a_null_as_mysql_does() -> None:
    definition = TableDef(
        "shop",
        "order_items",
        (col("order_id"), col("line_no", "smallint"), col("sku", "varchar(32)", nullable=True)),
        (Index("PRIMARY", True, ("order_id", "line_no")), Index("uk_sku", True, ("order_id", "sku"))),
    )
    suite = suggest_suite(TableFacts(definition, 10, NOW), "dev")
    assert by_type(suite, "expect_compound_columns_to_be_unique") == [
        {"column_list": ["order_id", "line_no"]},
        {"column_list": ["order_id", "sku"], "ignore_row_if": "any_value_is_missing"},
    ]
    assert by_type(suite, "expect_column_values_to_be_unique") == []


def test_a_compound_nullable_foreign_key_joins_every_column_and_exempts_rows_with_a_null() -> None:
    fk = ForeignKey("fk_x", ("a", "b"), "crm.parent", ("pa", "pb"))
    assert orphan_query(fk, nullable={"b"}) == (
        "SELECT c.`a`, c.`b` FROM {batch} c LEFT JOIN `crm`.`parent` p ON p.`pa` = c.`a` AND p.`pb` = c.`b` "
        "WHERE c.`b` IS NOT NULL AND p.`pa` IS NULL"
    )


def test_braces_and_backticks_in_names_survive_gx_formatting_the_query() -> None:
    fk = ForeignKey("fk", ("we{ird`",), "s.p{1}", ("id",))
    query = orphan_query(fk, nullable=())
    assert "`we{{ird``" in query and "`p{{1}}`" in query
    assert query.replace("{batch}", "{{batch}}").format() == query.replace("{{", "{").replace("}}", "}")


@pytest.mark.parametrize(
    ("lag", "note"),
    [
        (-timedelta(hours=8), "ts: no freshness check (its newest value is 8h ahead of the server's clock)"),
        (-timedelta(minutes=4), "ts: newest value 0s old; margin 1h"),  # clock skew within 5m
        (timedelta(hours=30), "ts: no freshness check (newest value 1d old)"),
        (None, "ts: no freshness check (no value read)"),
    ],
    ids=["local-time-ahead", "skew", "stale", "empty"],
)
def test_time_columns_without_a_freshness_check_say_why(lag: timedelta | None, note: str) -> None:
    definition = TableDef("m", "t", (col("ts", "timestamp(3)"),), ())
    newest = {} if lag is None else {"ts": NOW - lag}
    suite = suggest_suite(TableFacts(definition, 5, NOW, newest=newest), "dev")
    assert suite["meta"]["tidbops"]["generated"]["notes"] == [note]
    assert bool(by_type(suite, "expect_column_max_to_be_between")) == note.endswith("margin 1h")


def test_a_sampled_newest_value_says_so() -> None:
    suite = suggest_suite(orders(newest_sampled=frozenset({"placed_at"})), "dev")
    assert suite["meta"]["tidbops"]["generated"]["notes"][0] == (
        "placed_at: newest value 3m old (in a sample of the newest rows); margin 1h"
    )


def test_enum_values_are_read_from_the_column_type() -> None:
    assert _enum_values("enum('a','it''s','B c')") == ("a", "it's", "B c")
    assert _enum_values("varchar(10)") is None


@pytest.mark.parametrize(
    ("table", "ok"), [("shop.orders", True), ("s$1.t_2", True), ("shop.my-table", False), ("café.t", False)]
)
def test_suite_table_names_follow_the_loader(table: str, ok: bool) -> None:
    assert suite_table_name_ok(table) is ok


# ---------------------------------------------------------------------------------------------- hashes


def test_the_content_hash_ignores_key_order_and_the_generated_block_but_not_an_edit() -> None:
    suite = suggest_suite(orders(), "dev")
    shuffled = json.loads(json.dumps(suite, sort_keys=True))
    shuffled["meta"]["tidbops"]["generated"]["at"] = "another time"
    assert content_hash(shuffled) == content_hash(suite)
    shuffled["expectations"][0]["kwargs"]["min_value"] = 1
    assert content_hash(shuffled) != content_hash(suite)


@pytest.mark.parametrize(
    ("existing", "readable", "outcome"),
    [
        (None, True, Outcome.WRITTEN),
        ("same", True, Outcome.UNCHANGED),
        ("older", True, Outcome.UPDATED),
        ("edited", True, Outcome.KEPT),
        ("by-hand", True, Outcome.KEPT),
        (None, False, Outcome.KEPT),
    ],
    ids=["new", "same", "older-suggestion", "edited", "hand-written", "not-json"],
)
def test_decide(existing: str | None, readable: bool, outcome: Outcome) -> None:
    new = suggest_suite(orders(), "dev")
    older = suggest_suite(orders(row_count=10), "dev")
    edited = json.loads(json.dumps(older))
    edited["expectations"].pop()
    docs = {"same": new, "older": older, "edited": edited, "by-hand": {"name": "shop.orders", "expectations": []}}
    assert decide(new, docs.get(existing or ""), readable)[0] is outcome


def test_write_suites_never_overwrites_an_edit_and_reports_every_file(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    first = [suggest_suite(orders(), "dev"), suggest_suite(orders(definition=_renamed("customers")), "dev")]
    reports = write_suites(directory, first, {"shop.my-table": "its name is not schema.table"})
    assert [(r.file, r.outcome) for r in reports] == [
        ("shop.orders.json", Outcome.WRITTEN),
        ("shop.customers.json", Outcome.WRITTEN),
        ("", Outcome.SKIPPED),
    ]
    assert [s.table for s in load_suites("dev", root=tmp_path)] == ["shop.customers", "shop.orders"]

    edited = directory / "shop.orders.json"
    doc = json.loads(edited.read_text())
    doc["expectations"][0]["kwargs"]["max_value"] = 10**9
    edited.write_text(json.dumps(doc))
    before = edited.read_bytes()
    (directory / "shop.gone.json").write_text(json.dumps({"name": "shop.gone", "expectations": []}))
    (directory / "crm.other.json").write_text("{}")  # a schema not read now: not reported
    (directory / "shop.customers_v2.json").write_text(
        json.dumps({"name": "mine", "expectations": [], "meta": {"tidbops": {"table": "shop.items"}}})
    )
    second = [
        suggest_suite(orders(row_count=10), "dev"),
        suggest_suite(orders(definition=_renamed("customers")), "dev"),
        suggest_suite(orders(definition=_renamed("items")), "dev"),
    ]
    reports = write_suites(directory, second, schemas=["shop"])
    assert [(r.file, r.outcome, r.reason) for r in reports] == [
        ("shop.orders.json", Outcome.KEPT, "edited since it was generated; left as it is"),
        ("shop.customers.json", Outcome.UNCHANGED, "the same suggestion"),
        (
            "shop.items.json",
            Outcome.SKIPPED,
            "shop.customers_v2.json already holds a suite of this table (a second one would clash); not written",
        ),
        ("shop.gone.json", Outcome.STALE, "no such table in the cluster now; left"),
    ]
    assert edited.read_bytes() == before and not (directory / "shop.items.json").exists()
    assert reports[0].expectations == len(doc["expectations"])

    (directory / "shop.customers.json").write_text("{not json")
    third = [suggest_suite(orders(definition=_renamed("customers"), row_count=10), "dev")]
    (report,) = (r for r in write_suites(directory, third) if r.table == "shop.customers")
    assert report.outcome is Outcome.KEPT and (directory / "shop.customers.json").read_text() == "{not json"


def test_an_untouched_suite_is_regenerated_when_the_suggestion_changes(tmp_path: Path) -> None:
    write_suites(tmp_path, [suggest_suite(orders(), "dev")])
    (report,) = write_suites(tmp_path, [suggest_suite(orders(row_count=10), "dev")])
    assert report.outcome is Outcome.UPDATED
    written = json.loads((tmp_path / "shop.orders.json").read_text())
    assert written["expectations"][0]["kwargs"] == {"min_value": 5, "max_value": 1100}
    assert recorded_hash(written) == content_hash(written)


def _renamed(name: str) -> TableDef:
    d = orders().definition
    return TableDef(d.schema, name, d.columns, d.indexes)
