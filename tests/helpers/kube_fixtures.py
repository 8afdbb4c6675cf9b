"""Pytest fixtures for the fake Kubernetes API (tests/helpers/fake_kube.py), registered in tests/conftest.py.

``fake_kube``: a started fake, stopped after the test. ``kube_conn_id``: an Airflow ``kubernetes`` connection to
it (``AIRFLOW_CONN_<ID>``, ``kube_config`` in its extra), so ``KubernetesHook(conn_id=...)`` and
``AsyncKubernetesHook(conn_id=...)`` reach the fake exactly as they would a cluster. ``tidb_operator_crds``: the
fake also serves and validates TiDB Operator v1.6.6's Backup, Restore and TidbCluster (skips, saying where it
looked, when the reference CRDs are absent).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.fake_kube import FakeKube
from tests.helpers.k8s_schemas import crd_dir, crd_schema, load_crd, missing_reason

KUBE_CONN_ID = "kubernetes_fake"
KUBE_NAMESPACE = "tidb-backup"
V1_CRD_FILES = ("pingcap.com_backups.yaml", "pingcap.com_restores.yaml", "pingcap.com_tidbclusters.yaml")


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    fake = FakeKube().start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.script_errors == [], "scripted states the schemas refuse"


@pytest.fixture
def kube_conn_id(fake_kube: FakeKube, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{KUBE_CONN_ID.upper()}", fake_kube.connection_uri_json(namespace=KUBE_NAMESPACE))
    return KUBE_CONN_ID


@pytest.fixture
def tidb_operator_crds(fake_kube: FakeKube) -> FakeKube:
    if crd_dir() is None:
        pytest.skip(missing_reason())
    for filename in V1_CRD_FILES:
        fake_kube.add_crd(load_crd(filename), schema=crd_schema(filename))
    return fake_kube


def first_trigger_event(trigger: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Run a trigger (as the triggerer would, in an event loop) until its first event; that event's payload."""
    import asyncio

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))
