"""Shared test setup: every test runs against a private Airflow home, never the user's; the catalog's fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parent.parent

_airflow_home = Path(tempfile.mkdtemp(prefix="tidbops-test-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_airflow_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.pop("TIDBOPS_FLEET_CONFIG", None)

if TYPE_CHECKING:
    from tests.helpers.catalog import Clock
    from tidbops.catalog.store import Catalog

TIERS = ("unit", "operators", "dags", "playground", "integration", "e2e", "faults")

# Property and fuzz tests (hypothesis): no example database in the tree, and in CI the same examples
# every run (a clean clone must pass or fail for the change, not for the draw); locally each run draws anew.
# Tests set their own bounds (max_examples, deadline) so `make test` stays bounded.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(_airflow_home / "hypothesis"))  # not in the tree
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("tidbops", database=None, derandomize=bool(os.environ.get("CI")))
_hypothesis_settings.load_profile("tidbops")


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Every test belongs to a tier (a marker), so `-m` selects whole tiers and nothing is left out."""
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if untiered:
        raise RuntimeError(f"tests without a tier marker ({', '.join(TIERS)}): {untiered[:10]}")


# The catalog's tests share these (tests/helpers/catalog.py): a clock moved by hand, from ``clock_start``
# (a module overrides that fixture to start elsewhere), and a migrated SQLite catalog that reads it.
@pytest.fixture
def clock_start() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock(clock_start: datetime) -> Clock:
    from tests.helpers.catalog import Clock

    return Clock(clock_start)


@pytest.fixture
def catalog(tmp_path: Path, clock: Clock) -> Iterator[Catalog]:
    from tidbops.catalog.store import Catalog

    cat = Catalog.from_url(f"sqlite:///{tmp_path}/catalog.db", clock=clock)
    cat.migrate()
    yield cat
    cat.close()


# The fake Kubernetes API (tests/helpers/fake_kube.py) and its connection, for the runners' and scratch clusters' tests.
from tests.helpers.kube_fixtures import fake_kube, kube_conn_id, tidb_operator_crds  # noqa: E402, F401
