from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from tidbops.config import load_fleet

DAGS = "dags"


@pytest.fixture(scope="session")
def dagbag() -> DagBag:
    from tests.conftest import REPO

    return DagBag(dag_folder=str(REPO / DAGS))


@pytest.fixture(scope="session")
def fleet():  # type: ignore[no-untyped-def]
    return load_fleet()
