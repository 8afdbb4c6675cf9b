from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tidbops.tidb import parse_gc_time, parse_tidb_version, read_cluster_facts, version_tuple

pytestmark = pytest.mark.unit


class FakeCursor:
    def __init__(self, answers: dict[str, list[tuple[Any, ...]]]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        self._last: list[tuple[Any, ...]] = []

    def execute(self, query: str, args: Any = None) -> None:
        self.queries.append(query)
        self._last = next(v for k, v in self.answers.items() if k in query)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last


@pytest.mark.parametrize(
    ("server", "version"),
    [("8.0.11-TiDB-v8.5.1", "v8.5.1"), ("5.7.25-TiDB-v7.5.0-alpha", "v7.5.0-alpha"), ("10.11.19-MariaDB", None)],
)
def test_version(server: str, version: str | None) -> None:
    assert parse_tidb_version(server) == version


def test_version_tuple() -> None:
    assert version_tuple("v7.3.0") < version_tuple("v8.5.1") == (8, 5, 1)


def test_gc_time_formats() -> None:
    assert parse_gc_time("20261122-04:00:00.123 +0800") == datetime(2026, 11, 21, 20, 0, 0, 123000, tzinfo=UTC)
    assert parse_gc_time("20190108-15:30:50 +0000") == datetime(2019, 1, 8, 15, 30, 50, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"expected e\.g\."):
        parse_gc_time("yesterday")


def test_read_facts() -> None:
    cursor = FakeCursor(
        {
            "VERSION()": [("8.0.11-TiDB-v8.5.1",)],
            "mysql.tidb": [("tikv_gc_life_time", "10m0s"), ("tikv_gc_safe_point", "20261122-04:00:00.000 +0000")],
        }
    )
    facts = read_cluster_facts(cursor, now=datetime(2026, 11, 22, 5, tzinfo=UTC))
    assert facts.tidb_version == "v8.5.1"
    assert facts.gc_life_time_seconds == 600.0
    assert facts.gc_safe_point == datetime(2026, 11, 22, 4, tzinfo=UTC)
    assert facts.to_dict()["gc_safe_point"] == "2026-11-22T04:00:00.000Z"


def test_read_facts_without_gc_rows() -> None:
    facts = read_cluster_facts(FakeCursor({"VERSION()": [("10.11.19-MariaDB",)], "mysql.tidb": []}))
    assert facts.tidb_version is None and facts.gc_safe_point is None and facts.gc_life_time_seconds is None
