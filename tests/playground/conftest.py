"""Fixtures for tests against the playground: one small playground per test session.

``playground`` brings up the default fleet (dev, uat, prod as seeded source clusters; scratch1, scratch2
empty) with ``PLAYGROUND_TEST_ROWS`` rows per source cluster, on free ports in a temporary home, with
the daemon running (writer at ``PLAYGROUND_TEST_TPS`` transactions per second per cluster), and purges it
at the end of the session. Tests that need a quiet cluster freeze the writer with
``playground.paused()``; tests that break things must leave the playground as they found it (calling
``playground.up()`` restores it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.helpers.env import environment
from tidbops_playground import manager
from tidbops_playground.mariadb import MariaDBInstance
from tidbops_playground.registry import Registry, load_registry

PLAYGROUND_TEST_ROWS = 5000
PLAYGROUND_TEST_TPS = 25.0  # not the default (20), so the knob is exercised


@dataclass
class Playground:
    home: Path
    rows: int
    clusters: tuple[manager.ClusterSpec, ...]
    tps: float = PLAYGROUND_TEST_TPS
    up_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clusters if c.kind == "source")

    @property
    def scratches(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clusters if c.kind == "scratch")

    @property
    def registry(self) -> Registry:
        return load_registry(self.home)

    @property
    def env(self) -> dict[str, str]:
        """``playground_env``: AIRFLOW_CONN_*, TIDBOPS_PLAYGROUND_HOME, TIDBOPS_BR_PATH, PATH."""
        return manager.playground_env(self.home)

    def instance(self, cluster: str) -> MariaDBInstance:
        return manager.instance(self.home, cluster)

    def connect(self, cluster: str, database: str | None = None, **kwargs: Any) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return self.instance(cluster).connect(database=database, **kwargs)

    def up(self, **overrides: Any) -> Registry:
        """Bring the playground (back) up with the session's settings."""
        with environment(TIDBOPS_PLAYGROUND_WRITER_TPS=str(self.tps)):  # the daemon `up` spawns inherits it
            return manager.up(self.home, **{**self.up_kwargs, **overrides})

    @contextlib.contextmanager
    def paused(self, cluster: str | None = None) -> Iterator[None]:
        """No writer transaction commits inside the block."""
        manager.pause_writer(self.home, cluster)
        try:
            yield
        finally:
            manager.resume_writer(self.home, cluster)


@pytest.fixture(scope="package")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    home = tmp_path_factory.mktemp("playground")
    clusters = manager.default_clusters(sql_port_base=None)
    pg = Playground(
        home=home,
        rows=PLAYGROUND_TEST_ROWS,
        clusters=clusters,
        up_kwargs={"rows": PLAYGROUND_TEST_ROWS, "clusters": clusters, "s3_port": None, "start_daemon": True},
    )
    try:
        pg.up()
        yield pg
    finally:
        manager.down(home, purge=True)
