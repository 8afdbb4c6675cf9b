"""The workload writer and the daemon that runs it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql
import pytest

from tidbops_playground import daemon, manager, seed

if TYPE_CHECKING:
    from conftest import Playground

pytestmark = pytest.mark.playground


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _writer_stats(home: Path, cluster: str) -> dict[str, Any]:
    status = daemon.read_status(home) or {}
    stats: dict[str, Any] = status.get("writers", {}).get(cluster, {})
    return stats


def _one(conn: pymysql.connections.Connection, sql: str, args: tuple[object, ...] = ()) -> Any:  # type: ignore[type-arg]
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    assert row is not None
    return row[0]


def test_writer_inserts_updates_and_deletes(playground: Playground) -> None:
    home = playground.home
    kinds = ("new_order", "order_status", "delete_order")
    _wait_for(
        lambda: (
            all(_writer_stats(home, "prod").get("by_kind", {}).get(k, 0) > 0 for k in kinds)
            and all(_writer_stats(home, "prod")[k] > 0 for k in ("inserts", "updates", "deletes"))
        ),
        30,
        "the prod writer to insert, update and delete orders",
    )
    counts = seed.table_counts(playground.rows)
    conn = playground.connect("prod")
    try:
        # inserts: ids past the seeded range
        assert _one(conn, "SELECT COUNT(*) FROM shop.orders WHERE id > %s", (counts["shop.orders"],)) > 0
        # updates: rows with an old version that still exist
        updated = _one(
            conn,
            "SELECT COUNT(DISTINCT h.id) FROM shop.orders FOR SYSTEM_TIME ALL h "
            "JOIN shop.orders c ON c.id = h.id WHERE h.row_end < TIMESTAMP'2038-01-01 00:00:00'",
        )
        assert updated > 0
        # deletes: ids in history that are gone now (the cascade took their lines along)
        deleted = _one(
            conn,
            "SELECT COUNT(DISTINCT h.id) FROM shop.orders FOR SYSTEM_TIME ALL h "
            "LEFT JOIN shop.orders c ON c.id = h.id WHERE c.id IS NULL",
        )
        assert deleted > 0
        orphans = _one(
            conn,
            "SELECT COUNT(*) FROM shop.order_items i LEFT JOIN shop.orders o ON o.id = i.order_id WHERE o.id IS NULL",
        )
        assert orphans == 0
        bad_customers = _one(
            conn,
            "SELECT COUNT(*) FROM shop.orders o LEFT JOIN shop.customers c ON c.id = o.customer_id WHERE c.id IS NULL",
        )
        assert bad_customers == 0
    finally:
        conn.close()
    stats = _writer_stats(home, "prod")
    assert stats["errors"] == 0, stats["last_error"]
    assert stats["tps"] == playground.tps  # TIDBOPS_PLAYGROUND_WRITER_TPS reached the daemon
    assert (daemon.read_status(home) or {})["writer_tps"] == playground.tps


def _latest_change(conn: pymysql.connections.Connection) -> Any:  # type: ignore[type-arg]
    return _one(
        conn,
        "SELECT GREATEST("
        "(SELECT MAX(row_start) FROM shop.orders FOR SYSTEM_TIME ALL),"
        "(SELECT MAX(row_start) FROM shop.customers FOR SYSTEM_TIME ALL),"
        "(SELECT MAX(row_start) FROM metrics.events FOR SYSTEM_TIME ALL),"
        "(SELECT MAX(row_start) FROM crm.notes FOR SYSTEM_TIME ALL),"
        "(SELECT COALESCE(MAX(row_end), 0) FROM shop.orders FOR SYSTEM_TIME ALL "
        " WHERE row_end < TIMESTAMP'2038-01-01 00:00:00'))",
    )


def test_pause_freezes_writes_and_resume_restarts_them(playground: Playground) -> None:
    home = playground.home
    _wait_for(lambda: _writer_stats(home, "uat").get("transactions", 0) > 0, 20, "the uat writer")
    conn = playground.connect("uat")
    try:
        with playground.paused("uat"):
            frozen = _latest_change(conn)
            time.sleep(1.5)  # the daemon's status file is rewritten every second
            assert _latest_change(conn) == frozen
            tx = _writer_stats(home, "uat")["transactions"]
            assert manager.status(home, counts=False)["clusters"]["uat"]["writer"]["state"] == "paused"
            # other clusters keep writing
            dev_tx = _writer_stats(home, "dev")["transactions"]
            _wait_for(lambda: _writer_stats(home, "dev")["transactions"] > dev_tx, 10, "dev to keep writing")
            assert _writer_stats(home, "uat")["transactions"] == tx
        _wait_for(lambda: _latest_change(conn) != frozen, 10, "uat writes after resume")
    finally:
        conn.close()


def test_global_pause_covers_every_writer(playground: Playground) -> None:
    home = playground.home
    with playground.paused():
        time.sleep(1.2)  # the daemon's status file is rewritten every second
        before = {c: _writer_stats(home, c)["transactions"] for c in playground.sources}
        time.sleep(1.2)
        assert {c: _writer_stats(home, c)["transactions"] for c in playground.sources} == before
    for c in playground.sources:
        _wait_for(lambda c=c: _writer_stats(home, c)["transactions"] > before[c], 10, f"{c} after resume")


def test_daemon_survives_a_cluster_going_down(playground: Playground) -> None:
    home = playground.home
    pid = manager.daemon_pid(home)
    assert pid is not None
    inst = playground.instance("uat")
    inst.stop()
    try:
        _wait_for(
            lambda: manager.status(home, counts=False)["clusters"]["uat"]["writer"]["state"] == "failing",
            15,
            "the uat writer to notice its server is gone",
        )
        assert manager.daemon_pid(home) == pid
        dev_tx = _writer_stats(home, "dev")["transactions"]
        _wait_for(lambda: _writer_stats(home, "dev")["transactions"] > dev_tx, 10, "dev to keep writing")
    finally:
        playground.up()
    assert manager.daemon_pid(home) == pid  # `up` reused the daemon
    tx = _writer_stats(home, "uat")["transactions"]
    _wait_for(lambda: _writer_stats(home, "uat")["transactions"] > tx, 15, "the uat writer to reconnect")
    assert "writer uat: OperationalError" in (home / daemon.LOG_FILE).read_text()


def test_br_task_tolerates_a_missing_module(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "registry.json").write_text(json.dumps({"version": 1, "clusters": {}, "s3": None}))
    task = daemon._BrTask(daemon._RegistryView(tmp_path), "tidbops_playground.no_such_module", "advance", 0.1)
    stop = threading.Event()
    thread = threading.Thread(target=task.run, args=(stop,))
    with caplog.at_level("WARNING", logger="tidbops_playground.daemon"):
        thread.start()
        time.sleep(0.35)
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert task.available is False and task.runs == 0
    warnings = [r for r in caplog.records if "not available" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not every round


def test_br_task_calls_the_function_per_cluster_and_survives_errors(tmp_path: Path) -> None:
    import sys
    import types

    calls: list[str] = []

    def advance(home: Path, cluster: str, now_ms: int | None = None) -> int:
        calls.append(cluster)
        if cluster == "bad":
            raise RuntimeError("boom")
        return 42

    module = types.ModuleType("tidbops_playground_test_fake_br")
    module.advance = advance  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        entry = {
            "kind": "source", "pd": "127.0.0.1:1", "sql_host": "127.0.0.1", "sql_port": 1, "sql_user": "root",
            "sql_password": "x", "cluster_id": 1, "tidb_version": "v8.5.1",
        }  # fmt: skip
        clusters = {n: {**entry, "name": n, "pd": f"127.0.0.1:{i}"} for i, n in enumerate(("bad", "good"))}
        (tmp_path / "registry.json").write_text(json.dumps({"version": 1, "clusters": clusters, "s3": None}))
        task = daemon._BrTask(daemon._RegistryView(tmp_path), module.__name__, "advance", 0.1)
        stop = threading.Event()
        thread = threading.Thread(target=task.run, args=(stop,))
        thread.start()
        _wait_for(lambda: task.runs >= 2, 5, "two rounds")
        stop.set()
        thread.join(timeout=5)
    finally:
        del sys.modules[module.__name__]
    assert task.available and task.errors >= 2
    assert task.to_json()["results"] == {"bad": "error: RuntimeError", "good": 42}
    assert calls[:2] == ["bad", "good"]
