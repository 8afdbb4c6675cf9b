"""TiDBCheckClusterOperator with a patched hook: what it returns, and that a silent cluster fails."""

from __future__ import annotations

from unittest import mock

import pytest

from tidbops.tidb import TiDBUnreachableError
from tidbops_airflow.operators.tidb import TiDBCheckClusterOperator

pytestmark = pytest.mark.operators


def test_execute_returns_facts(tidb_hook: mock.MagicMock) -> None:
    op = TiDBCheckClusterOperator(task_id="check_cluster", cluster="prod", tidb_conn_id="tidb_prod")
    result = op.execute({})  # type: ignore[arg-type]
    tidb_hook.assert_called_once_with(tidb_conn_id="tidb_prod")
    assert result == {
        "cluster": "prod",
        "server_version": "8.0.11-TiDB-v8.5.1",
        "tidb_version": "v8.5.1",
        "gc_safe_point": "2026-11-22T04:00:00.000Z",
        "gc_life_time_seconds": 600.0,
        "checked_at": "2026-11-22T04:05:00.000Z",
    }


def test_unreachable_cluster_fails(tidb_hook: mock.MagicMock) -> None:
    tidb_hook.return_value.cluster_facts.side_effect = TiDBUnreachableError("connection 'tidb_prod' does not answer")
    op = TiDBCheckClusterOperator(task_id="check_cluster", cluster="prod", tidb_conn_id="tidb_prod")
    with pytest.raises(TiDBUnreachableError, match="does not answer"):
        op.execute({})  # type: ignore[arg-type]
