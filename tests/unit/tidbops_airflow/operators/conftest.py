"""Fixtures the operator tests share: the TiDB hook patched where operators build it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from unittest import mock

import pytest

from tidbops.tidb import ClusterFacts


@pytest.fixture
def tidb_hook() -> Iterator[mock.MagicMock]:
    """``TiDBHook`` patched (operators import it when they run): every hook's ``cluster_facts()`` answers a
    TiDB v8.5.1 whose GC safepoint is 2026-11-22 04:00 UTC and whose GC life time is 10 minutes."""
    facts = ClusterFacts(
        server_version="8.0.11-TiDB-v8.5.1",
        tidb_version="v8.5.1",
        gc_safe_point=datetime(2026, 11, 22, 4, tzinfo=UTC),
        gc_life_time_seconds=600.0,
        checked_at=datetime(2026, 11, 22, 4, 5, tzinfo=UTC),
    )
    with mock.patch("tidbops_airflow.hooks.tidb.TiDBHook") as cls:
        cls.return_value.cluster_facts.return_value = facts
        yield cls
