"""Migration 6 (#16): verification tiers, the drill basis column, and backup holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tests.helpers.catalog import Clock, add_backup
from tidbops.catalog import migrations as mig
from tidbops.catalog.schema import metadata
from tidbops.catalog.store import Catalog

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock_start() -> datetime:
    return T0


def test_migration_6_is_rerunnable_and_matches_the_schema(catalog: Catalog) -> None:
    assert mig.MIGRATIONS[5].version == 6
    with catalog.engine.begin() as conn:
        mig.MIGRATIONS[5].apply(conn)  # as after a crash before its version row
        insp = inspect(conn)
        for table in ("backups", "drills", "backup_holds"):
            assert [c["name"] for c in insp.get_columns(table)] == [c.name for c in metadata.tables[table].columns]


def test_a_version_5_catalog_migrates_to_6_keeping_its_rows(tmp_path: Path) -> None:
    old = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert mig.migrate(old.engine, mig.MIGRATIONS[:5]).to_version == 5
    with old.engine.begin() as conn:
        assert "verified_tier" not in [c["name"] for c in inspect(conn).get_columns("backups")]
    old.close()
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/old.db")
    assert cat.migrate().to_version == mig.LATEST_VERSION
    add_backup(cat, "dev-full-1", T0)
    assert cat.get("dev-full-1") is not None and cat.get("dev-full-1").verified_tier is None  # type: ignore[union-attr]


def test_the_tier_is_the_highest_passed_and_a_failure_clears_it(catalog: Catalog) -> None:
    add_backup(catalog, "dev-full-1", T0)
    assert catalog.mark_verified("dev-full-1", True, "files ok", tier=1).verified_tier == 1
    assert catalog.mark_verified("dev-full-1", True, "checksum ok", tier=2).verified_tier == 2
    again = catalog.mark_verified("dev-full-1", True, "files ok", tier=1)
    assert again.verified_tier == 2 and again.verified  # a nightly tier 1 keeps the weekly tier 2
    failed = catalog.mark_verified("dev-full-1", False, "file missing", tier=1)
    assert failed.verified_tier is None and not failed.verified and failed.verify_failed
    assert catalog.mark_verified("dev-full-1", True, "files ok", tier=1).verified_tier == 1
    tiers = [
        e.details["tier"] for e in catalog.list_events(backup_id="dev-full-1") if e.kind.startswith("backup.verif")
    ]
    assert tiers == [1, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="tier is 1, 2 or 3"):
        catalog.mark_verified("dev-full-1", True, "x", tier=4)


def test_holds_replace_per_holder_expire_and_release(catalog: Catalog, clock: Clock) -> None:
    catalog.hold_backups("dev", ["b1", "b2"], "dev-drill-1", ttl=timedelta(hours=2))
    catalog.hold_backups("dev", ["b2"], "dev-restore-1", ttl=timedelta(minutes=30))
    catalog.hold_backups("uat", ["u1"], "uat-drill-1", ttl=timedelta(hours=2))
    assert catalog.held_backups("dev") == {"b1": ["dev-drill-1"], "b2": ["dev-drill-1", "dev-restore-1"]}
    catalog.hold_backups("dev", ["b3"], "dev-drill-1", ttl=timedelta(hours=2))  # a retry replaces its holds
    assert catalog.held_backups("dev") == {"b2": ["dev-restore-1"], "b3": ["dev-drill-1"]}
    clock.now = T0 + timedelta(hours=1)  # the restore's holder died: its hold lapses
    assert catalog.held_backups("dev") == {"b3": ["dev-drill-1"]}
    assert catalog.release_holds("dev-drill-1") == 1
    assert catalog.held_backups("dev") == {}
    assert catalog.held_backups("uat") == {"u1": ["uat-drill-1"]}
    with pytest.raises(ValueError, match="ttl must be positive"):
        catalog.hold_backups("dev", ["b1"], "h", ttl=timedelta(0))
