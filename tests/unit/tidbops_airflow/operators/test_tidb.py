from __future__ import annotations

from typing import Any
from unittest import mock

import pymysql
import pytest

from tidbops_airflow.operators.tidb import TiDBCheckClusterOperator

pytestmark = pytest.mark.operators


class Cursor:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, query: str, args: Any = None) -> None:
        if "VERSION()" in query:
            self.rows = [("8.0.11-TiDB-v8.5.1",)]
        else:
            self.rows = [("tikv_gc_life_time", "10m0s"), ("tikv_gc_safe_point", "20261122-04:00:00.000 +0000")]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def hook():  # type: ignore[no-untyped-def]
    with mock.patch("tidbops_airflow.hooks.tidb.TiDBHook") as cls:
        yield cls


def test_execute_returns_facts(hook) -> None:  # type: ignore[no-untyped-def]
    conn = hook.return_value.get_conn.return_value
    conn.cursor.return_value = Cursor()
    op = TiDBCheckClusterOperator(task_id="check_cluster", cluster="prod", tidb_conn_id="tidb_prod")
    result = op.execute({})  # type: ignore[arg-type]
    hook.assert_called_once_with(tidb_conn_id="tidb_prod")
    assert result["cluster"] == "prod"
    assert result["tidb_version"] == "v8.5.1"
    assert result["gc_safe_point"] == "2026-11-22T04:00:00+00:00"
    assert result["gc_life_time_seconds"] == 600.0
    conn.close.assert_called_once()


def test_unreachable_cluster_fails(hook) -> None:  # type: ignore[no-untyped-def]
    hook.return_value.get_conn.side_effect = pymysql.err.OperationalError(2003, "Can't connect")
    op = TiDBCheckClusterOperator(task_id="check_cluster", cluster="prod", tidb_conn_id="tidb_prod")
    with pytest.raises(pymysql.err.OperationalError, match="Can't connect"):
        op.execute({})  # type: ignore[arg-type]
