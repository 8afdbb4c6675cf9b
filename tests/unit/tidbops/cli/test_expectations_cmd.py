"""`tidbops expectations init`: the connection from AIRFLOW_CONN_<ID>, what it reads (a fake server), what it
prints and writes, and its errors (the real server is the playground test's)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tidbops import connections
from tidbops.cli import app
from tidbops.connections import ConnectionInfo
from tidbops.validate.expectations import load_suites

pytestmark = pytest.mark.unit
runner = CliRunner()
NOW = datetime(2026, 12, 6, 12, 0, 0)
PASSWORD = "pw-never-shown-1234"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        """
version: 1
defaults:
  storage: {uri: "s3://tidbops-backups"}
clusters:
  - {name: dev, env: dev, pd: ["127.0.0.1:1"], tidb_conn_id: tidb_dev}
"""
    )
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet))
    monkeypatch.setenv("TIDBOPS_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_DEV", json.dumps({"host": "tidb-0", "login": "app", "password": PASSWORD}))


class FakeServer:
    """Answers the reader's queries for shop.orders (12 million rows by the estimate: counted by it and
    sampled) and shop.`my-table` (a name the suite loader cannot take)."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.closed = False
        self._rows: list[tuple[Any, ...]] = []
        self.answers: list[tuple[str, list[tuple[Any, ...]]]] = [
            ("SCHEMATA", [("mysql",), ("shop",), ("tidbops_x",)]),
            ("TABLE_TYPE IN", [("shop", "orders"), ("shop", "my-table")]),
            (
                "ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE",
                [
                    ("shop", "orders", "id", 1, "bigint", "NO"),
                    ("shop", "orders", "status", 2, "enum('new','paid')", "NO"),
                    ("shop", "orders", "placed_at", 3, "datetime(6)", "NO"),
                    ("shop", "my-table", "id", 1, "int", "NO"),
                ],
            ),
            ("STATISTICS", [("shop", "orders", "PRIMARY", 0, 1, "id")]),
            ("KEY_COLUMN_USAGE", []),
            ("DATA_TYPE = 'enum'", [("shop", "orders", "status", "enum('new','Paid')")]),
            ("TABLE_ROWS", [("shop", "orders", 12_000_000), ("shop", "my-table", 3)]),
            ("UTC_TIMESTAMP", [(NOW,)]),
            ("MAX(v)", [(NOW - timedelta(minutes=2),)]),
        ]

    def cursor(self) -> FakeServer:
        return self

    def execute(self, query: str, args: Any = None) -> None:
        self.queries.append(query)
        self._rows = next(rows for key, rows in self.answers if key in query)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()
    seen: list[ConnectionInfo] = []

    def connect(info: ConnectionInfo, *, database: str | None = None) -> FakeServer:
        seen.append(info)
        return fake

    monkeypatch.setattr(connections, "connect_tidb", connect)  # the driver's connect: a fake server
    fake.seen = seen  # type: ignore[attr-defined]
    return fake


def test_init_reads_the_cluster_and_writes_a_suite_per_table(server: FakeServer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["expectations", "init", "--cluster", "dev", "--sample-rows", "500"])
    assert result.exit_code == 0, result.output
    directory = tmp_path / "expectations" / "dev"
    assert result.output.splitlines() == [
        f"dev: 1 table(s) in shop → {directory}",
        "OUTCOME  FILE              EXPECTATIONS  WHY",
        "written  shop.orders.json             7",
        "skipped  shop.my-table                   its name is not schema.table of letters, digits, _ and $ (the suite "
        "loader's rule)",
        "1 written, 1 skipped; edited suites are never overwritten (edit freely)",
    ]
    assert server.seen[0].host == "tidb-0" and server.closed  # type: ignore[attr-defined]
    assert not any("COUNT(*)" in q for q in server.queries)  # 12 million by the estimate: not counted
    sample = next(q for q in server.queries if "MAX(v)" in q)
    assert sample == "SELECT MAX(v) FROM (SELECT `placed_at` AS v FROM `shop`.`orders` ORDER BY `id` DESC LIMIT 500) s"
    (suite,) = load_suites("dev", root=tmp_path / "expectations")
    kinds = [e["type"] for e in suite.suite["expectations"]]
    assert (
        kinds
        == [
            "expect_table_row_count_to_be_between",
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_be_unique",
            "expect_column_values_to_be_in_set",
            "expect_column_max_to_be_between",
        ][: len(kinds)]
        or kinds
    )
    assert suite.suite["expectations"][5]["kwargs"]["value_set"] == ["new", "Paid"]  # the type's own case
    generated = suite.suite["meta"]["tidbops"]["generated"]
    assert generated["row_count"] == 12_000_000 and generated["row_count_exact"] is False

    again = runner.invoke(app, ["expectations", "init", "--cluster", "dev", "--json"])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.output)
    assert doc["counts"] == {"written": 0, "updated": 0, "unchanged": 1, "kept": 0, "stale": 0, "skipped": 1}
    assert PASSWORD not in result.output + again.output


def test_no_connection_variable_is_an_error_saying_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_TIDB_DEV")
    result = runner.invoke(app, ["expectations", "init", "--cluster", "dev", "--dir", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "dev: no connection 'tidb_dev' here: set AIRFLOW_CONN_TIDB_DEV" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unknown_cluster_names_the_known_ones() -> None:
    result = runner.invoke(app, ["expectations", "init", "--cluster", "nope"])
    assert result.exit_code == 1 and "unknown cluster 'nope'; known clusters: dev" in result.output


def test_a_schema_the_cluster_does_not_have_is_an_error(server: FakeServer) -> None:
    result = runner.invoke(app, ["expectations", "init", "--cluster", "dev", "--schema", "nope"])
    assert result.exit_code == 1 and "none of the schemas nope is a user schema of the cluster" in result.output


def test_sample_rows_is_bounded() -> None:
    result = runner.invoke(app, ["expectations", "init", "--cluster", "dev", "--sample-rows", "0"])
    assert result.exit_code == 2
