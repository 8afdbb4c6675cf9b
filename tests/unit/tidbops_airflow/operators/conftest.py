"""Fixtures the operator tests share: the TiDB hook patched where operators build it, and a catalog behind a
patched catalog hook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tidbops.catalog.store import Catalog
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


@pytest.fixture
def hook_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """A migrated SQLite catalog, with ``CatalogHook`` patched so that each task opens its own ``Catalog`` on it
    (as a real task does; the operator closes that one) while the test reads this one."""
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()

    class Hook:
        def __init__(self, **_: Any) -> None:
            pass

        def get_catalog(self) -> Catalog:
            return Catalog.from_url(str(catalog.engine.url))

    monkeypatch.setattr("tidbops_airflow.hooks.catalog.CatalogHook", Hook)
    yield catalog
    catalog.close()
