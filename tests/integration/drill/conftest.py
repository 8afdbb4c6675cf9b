"""Two private MariaDB servers for the drill's integration tests: the source, seeded like a playground
cluster (its history kept by system versioning), and the scratch, holding a copy of the source as of a
restore point taken before the source moved on (what a restore of that point gives)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.servers import free_port
from tidbops import tso
from tidbops.recovery.history import history_time
from tidbops_playground.mariadb import MariaDBInstance
from tidbops_playground.seed import TABLES, seed_cluster


def connect(server: MariaDBInstance, **kw: Any) -> Any:
    conn = server.connect(**kw)
    conn.autocommit(True)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return conn


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MariaDBInstance, MariaDBInstance]]:
    started = []
    try:
        for name in ("source", "scratch"):
            server = MariaDBInstance(tmp_path_factory.mktemp(f"drill-{name}"), free_port(), secrets.token_hex(12))
            server.start()
            started.append(server)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def restored(servers: tuple[MariaDBInstance, MariaDBInstance]) -> int:
    """Seed the source, take a restore point, move the source on, copy it as of the point: the point's TSO."""
    source, scratch = servers
    conn = connect(source, local_infile=True)
    seed_cluster(conn, "dev", rows=3000)
    with conn.cursor() as cur:  # what the writer does: fresh orders and events
        cur.execute(
            "INSERT INTO shop.orders (customer_id, status, total, currency, placed_at) "
            "VALUES (1, 'new', 10, 'EUR', UTC_TIMESTAMP(6))"
        )
        cur.execute(
            "INSERT INTO metrics.events (occurred_at, source, kind, value, amount, payload) "
            "VALUES (UTC_TIMESTAMP(6), 'web', 'click', 1.5, NULL, '{}')"
        )
        time.sleep(0.05)
        point = tso.from_datetime(datetime.now(UTC))
        time.sleep(0.05)
        cur.execute("UPDATE shop.orders SET total = total + 1 WHERE id BETWEEN 100 AND 120")
        cur.execute("DELETE FROM crm.notes WHERE id < 10")
        cur.execute(
            "INSERT INTO shop.customers (email, full_name, country, created_at) "
            "VALUES ('late@x', 'Late', 'DE', UTC_TIMESTAMP(6))"
        )
        at = history_time(point).strftime("%Y-%m-%d %H:%M:%S.%f")
        target = connect(scratch)
        with target.cursor() as out:
            out.execute("SET FOREIGN_KEY_CHECKS = 0")
            for schema in ("shop", "crm", "metrics"):
                out.execute(f"CREATE DATABASE {schema}")
            for table in TABLES:
                cur.execute(f"SHOW CREATE TABLE {table}")
                out.execute(f"USE {table.split('.')[0]}")
                out.execute(cur.fetchone()[1])
                cur.execute(f"SELECT * FROM {table} FOR SYSTEM_TIME AS OF TIMESTAMP '{at}'")
                rows = cur.fetchall()
                marks = ", ".join(["%s"] * len(rows[0]))
                out.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        target.close()
    conn.close()
    return point
