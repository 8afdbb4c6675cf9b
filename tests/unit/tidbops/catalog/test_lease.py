"""Per-cluster BR leases (#18): one holder per cluster, lapsing when the holder stops heartbeating."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidbops.catalog.lease import BRLeases
from tidbops.catalog.store import Catalog

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    c.migrate()
    return c


def test_one_holder_per_cluster_until_released(catalog: Catalog) -> None:
    clock = Clock()
    leases = BRLeases(catalog.engine, clock=clock)
    first = leases.acquire("prod", "backup/run1/run_br_backup")
    assert first.granted and first.took_over is None
    busy = leases.acquire("prod", "log/run2/repair_log_backup")
    assert not busy.granted and busy.lease.holder == "backup/run1/run_br_backup"
    assert leases.acquire("uat", "log/run2/repair_log_backup").granted  # another cluster: its own lease
    again = leases.acquire("prod", "backup/run1/run_br_backup")  # the same task (a retry) takes it back
    assert again.granted and again.took_over is None
    assert not leases.release("prod", "someone/else/task") and leases.current("prod") is not None
    assert leases.release("prod", "backup/run1/run_br_backup") and leases.current("prod") is None
    assert leases.acquire("prod", "log/run2/repair_log_backup").granted


def test_a_lease_lapses_when_its_holder_stops_heartbeating(catalog: Catalog) -> None:
    clock = Clock()
    leases = BRLeases(catalog.engine, clock=clock)
    assert leases.acquire("prod", "dead/worker/task").granted
    clock.now = T0 + timedelta(seconds=40)
    assert leases.heartbeat("prod", "dead/worker/task")  # alive at 40 s
    clock.now = T0 + timedelta(seconds=80)
    assert not leases.acquire("prod", "other/run/task", stale_after=timedelta(seconds=45)).granted
    clock.now = T0 + timedelta(seconds=86)  # 46 s without a heartbeat
    took = leases.acquire("prod", "other/run/task", stale_after=timedelta(seconds=45))
    assert took.granted and took.took_over == "dead/worker/task"
    assert not leases.heartbeat("prod", "dead/worker/task")  # the old holder learns it lost it


def test_concurrent_takers_never_hold_one_cluster_twice_and_the_pool_caps_the_fleet(tmp_path: Path) -> None:
    """Airflow's fleet pool as a semaphore of 3 slots, 12 tasks over 4 clusters on threads: a task whose
    cluster is leased gives its slot back and tries later (the reschedule). The journal of "BR running"
    intervals never shows more than 3 at once, nor 2 on one cluster, and every task ran once."""
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    cap, clusters = 3, ["c0", "c1", "c2", "c3"]
    pool = threading.BoundedSemaphore(cap)
    lock = threading.Lock()
    running: dict[str, int] = {}
    most = {"fleet": 0, "cluster": 0}
    done: list[str] = []
    errors: list[BaseException] = []

    def task(i: int) -> None:
        cluster = clusters[i % len(clusters)]
        leases = BRLeases(Catalog.from_url(str(catalog.engine.url)).engine)
        holder = f"dag{i}/run/task"
        try:
            while True:
                with pool:  # the task holds a fleet slot only while it runs
                    if not leases.acquire(cluster, holder).granted:
                        pass  # rescheduled: the slot goes back below, the task asks again later
                    else:
                        with lock:
                            running[cluster] = running.get(cluster, 0) + 1
                            most["fleet"] = max(most["fleet"], sum(running.values()))
                            most["cluster"] = max(most["cluster"], running[cluster])
                        time.sleep(random.uniform(0.01, 0.05))  # BR
                        with lock:
                            running[cluster] -= 1
                        leases.release(cluster, holder)
                        done.append(holder)
                        return
                time.sleep(0.01)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(done) == sorted(f"dag{i}/run/task" for i in range(12))
    assert most["cluster"] == 1 and 1 < most["fleet"] <= cap, most
