"""Holds: the backups a restore reads stay out of retention's reach until it is recorded. A real SQLite catalog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tidbops.catalog.records import BackupRecord, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig
from tidbops.recovery.holds import HOLD_MARGIN, hold_again, hold_plan, hold_ttl

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Plan:
    plan_id = "uat-drill-1"
    backups_used = ("uat-full-1", "uat-incr-1")


@pytest.fixture
def clock(chain: list[BackupRecord]) -> Clock:
    return Clock(chain[-1].started_at + timedelta(hours=1))


@pytest.fixture
def catalog(tmp_path: Path, clock: Clock, chain: list[BackupRecord]) -> Iterator[Catalog]:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/c.db", clock=clock)
    cat.migrate()
    for b in chain:
        cat.start_backup(NewBackup(id=b.id, cluster=b.cluster, kind=b.kind, storage_uri=b.storage_uri,
                                   started_at=b.started_at, base_backup_id=b.base_backup_id,
                                   last_backup_ts=b.last_backup_ts))  # fmt: skip
        cat.finish_backup(b.id, backup_ts=b.backup_ts)
    yield cat
    cat.close()


def test_a_hold_lasts_the_br_timeout_per_step_plus_a_margin() -> None:
    assert hold_ttl(3600, 2) == timedelta(hours=2) + HOLD_MARGIN == timedelta(hours=5)
    assert hold_ttl(3600, 0) == timedelta(hours=1) + HOLD_MARGIN


def test_a_later_step_takes_the_holds_again_and_a_dead_holders_lapse(
    catalog: Catalog, clock: Clock, fleet: dict[str, ClusterConfig]
) -> None:
    uat = fleet["uat"].model_copy(update={"br": BRConfig(timeout=3600)})
    assert hold_plan(catalog, uat, Plan()) == timedelta(hours=5)
    assert catalog.held_backups("uat") == {b: ["uat-drill-1"] for b in Plan.backups_used}
    clock.now += timedelta(hours=4)
    assert hold_again(catalog, uat, Plan()) == (timedelta(hours=5), [])  # a full ttl from now
    clock.now += timedelta(hours=4)
    assert catalog.held_backups("uat") == {b: ["uat-drill-1"] for b in Plan.backups_used}
    clock.now += timedelta(hours=1, seconds=1)  # the holder died: its holds lapse
    assert catalog.held_backups("uat") == {}


def test_holding_again_without_a_catalog_is_noted_not_fatal(fleet: dict[str, ClusterConfig]) -> None:
    assert hold_again(None, fleet["uat"], Plan()) == (None, ["catalog unavailable: continuing without it"])
