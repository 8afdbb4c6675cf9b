"""Holds: the backups a restore reads stay out of retention's reach until it is recorded. A real SQLite catalog
(``catalog`` and ``clock``: tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.catalog import Clock, add_backup
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig
from tidbops.recovery.holds import HOLD_MARGIN, hold_again, hold_plan, hold_ttl

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


class Plan:
    plan_id = "uat-drill-1"
    backups_used = ("uat-full-1", "uat-incr-1")


@pytest.fixture
def clock_start() -> datetime:
    return T0 + timedelta(hours=3)


@pytest.fixture
def uat(catalog: Catalog, fleet: dict[str, ClusterConfig]) -> ClusterConfig:
    """uat (BR timeout 1 h) with a full backup and an incremental on it in the catalog."""
    add_backup(catalog, "uat-full-1", T0, cluster="uat")
    add_backup(catalog, "uat-incr-1", T0 + timedelta(hours=1), cluster="uat", base="uat-full-1")
    return fleet["uat"].model_copy(update={"br": BRConfig(timeout=3600)})


def test_a_hold_lasts_the_br_timeout_per_step_plus_a_margin() -> None:
    assert hold_ttl(3600, 2) == timedelta(hours=2) + HOLD_MARGIN == timedelta(hours=5)
    assert hold_ttl(3600, 0) == timedelta(hours=1) + HOLD_MARGIN


def test_a_later_step_takes_the_holds_again_and_a_dead_holders_lapse(
    catalog: Catalog, clock: Clock, uat: ClusterConfig
) -> None:
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
