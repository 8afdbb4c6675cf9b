"""Storage and cost (#16): measuring a storage, growth from samples or the catalog, projection, price by class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.catalog.store import Catalog, Event
from tidbops.config import ClusterConfig
from tidbops.cost import (
    GB,
    USAGE_EVENT,
    UsageSample,
    catalog_snapshot_bytes,
    cost_from_catalog,
    cost_report,
    gb_text,
    measure_usage,
)
from tidbops.storage import LocalStorage, StorageError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)


def cluster(uri: str = "s3://backups", *, log_uri: str | None = None, **storage: Any) -> ClusterConfig:
    log: dict[str, Any] = {"enabled": True, "task_name": "pitr-dev"}
    if log_uri:
        log["storage_uri"] = log_uri
    return ClusterConfig.model_validate(
        {
            "name": "dev",
            "env": "dev",
            "pd": ["pd-0:2379"],
            "tidb_conn_id": "tidb_dev",
            "storage": {"uri": uri, **storage},
            "log_backup": log,
        }
    )


def write(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/catalog.db")
    cat.migrate()
    yield cat
    cat.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "backups"
    write(r, "dev/full/dev-full-1/backupmeta", 1000)
    write(r, "dev/full/dev-full-1/1_2_3.sst", 250_000)
    write(r, "dev/incr/dev-incr-1/4_5_6.sst", 4_000)
    write(r, "dev/log/v1/backupmeta/1.meta", 300)
    write(r, "dev/log/v1/20261209/7.log", 70_000)
    write(r, "devx/full/other/a.sst", 999_999)  # another cluster whose name starts the same
    write(r, "uat/full/uat-full-1/a.sst", 123_456)
    return r


def backup(
    backup_id: str,
    at: datetime,
    size: int | None,
    *,
    status: BackupStatus = BackupStatus.SUCCEEDED,
    updated: datetime | None = None,
) -> BackupRecord:
    ts = tso.from_datetime(at)
    return BackupRecord(
        id=backup_id,
        cluster="dev",
        kind=BackupKind.FULL,
        status=status,
        storage_uri=f"s3://backups/dev/full/{backup_id}",
        started_at=at,
        backup_ts=ts,
        backup_time=tso.to_datetime(ts),
        size_bytes=size,
        updated_at=updated,
    )


def sample(days_ago: float, snapshot: int, log: int | None = None, storage_class: str = "STANDARD") -> UsageSample:
    return UsageSample("dev", NOW - timedelta(days=days_ago), snapshot, log, storage_class)


# ------------------------------------------------------------------------------------------ measuring


def test_measure_splits_snapshot_from_log_and_records_one_sample(catalog: Catalog, root: Path) -> None:
    c = cluster(f"local://{root}")
    got = measure_usage(catalog, c, LocalStorage(root), None, now=NOW)
    assert got == UsageSample("dev", NOW, 255_000, 70_300, "STANDARD")
    [event] = catalog.list_events(cluster="dev", kind=USAGE_EVENT)
    assert event.time == NOW
    assert event.details == {"snapshot_bytes": 255_000, "log_bytes": 70_300, "storage_class": "STANDARD"}
    assert event.message == "storage of dev: 0.00026 GB snapshot, 0.00007 GB log (GB = 10^9 bytes)"
    assert UsageSample.from_event(event) == got


def test_measure_a_log_elsewhere_under_the_root_and_outside_it(catalog: Catalog, root: Path, tmp_path: Path) -> None:
    write(root, "logs/dev/v1/9.log", 5_000)
    inside = cluster(f"local://{root}", log_uri=f"local://{root}/logs/dev", storage_class="GLACIER_IR")
    got = measure_usage(catalog, inside, LocalStorage(root), None, now=NOW)
    assert (got.snapshot_bytes, got.log_bytes, got.storage_class) == (325_300, 5_000, "GLACIER_IR")  # dev/log/ too
    elsewhere = tmp_path / "logstore"
    write(elsewhere, "v1/1.log", 777)
    outside = cluster(f"local://{root}", log_uri=f"local://{elsewhere}")
    assert measure_usage(catalog, outside, LocalStorage(root), LocalStorage(elsewhere), now=NOW).log_bytes == 777
    assert measure_usage(catalog, outside, LocalStorage(root), None, now=NOW).log_bytes is None
    gone = LocalStorage(tmp_path / "no-log-yet")
    assert measure_usage(catalog, outside, LocalStorage(root), gone, now=NOW).log_bytes is None
    # a log storage passed for a log inside the root is not listed (the one listing counts it), even when absent
    assert measure_usage(catalog, cluster(f"local://{root}"), LocalStorage(root), gone, now=NOW).log_bytes == 70_300
    assert len(catalog.list_events(cluster="dev", kind=USAGE_EVENT)) == 5


def test_measure_refuses_a_local_root_that_is_not_there(catalog: Catalog, tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    with pytest.raises(StorageError, match="is not a directory here"):
        measure_usage(catalog, cluster(f"local://{missing}"), LocalStorage(missing), None, now=NOW)
    assert catalog.list_events(kind=USAGE_EVENT) == []  # a false 0-byte sample is never recorded


def test_samples_are_read_back_only_from_well_formed_events() -> None:
    def event(details: dict[str, Any] | None, kind: str = USAGE_EVENT) -> Event:
        return Event(1, NOW, "dev", kind, None, "m", details)

    good = {"snapshot_bytes": 5, "log_bytes": None, "storage_class": "STANDARD"}
    assert UsageSample.from_event(event(good)) == UsageSample("dev", NOW, 5, None, "STANDARD")
    for bad in (
        None,
        {**good, "snapshot_bytes": -1},
        {**good, "snapshot_bytes": True},
        {**good, "log_bytes": "9"},
        {**good, "storage_class": None},
    ):
        assert UsageSample.from_event(event(bad)) is None
    assert UsageSample.from_event(event(good, kind="backup.deleted")) is None


# ------------------------------------------------------------------------------------------ reporting


def test_growth_projection_and_cost_from_samples() -> None:
    samples = [sample(30, 100 * GB, 10 * GB), sample(7.2, 160 * GB, 20 * GB), sample(1, 170 * GB, 22 * GB)]
    current = sample(0, 190 * GB, 25 * GB)
    report = cost_report(cluster(), samples, [], now=NOW, current=current)
    assert report.usage.source == "measured" and report.usage.total_bytes == 215 * GB
    g7, g30 = report.growth
    assert (g7.source, g7.since, g7.snapshot_bytes, g7.log_bytes) == ("samples", samples[1].time, 30 * GB, 5 * GB)
    assert (g30.source, g30.snapshot_bytes, g30.log_bytes) == ("samples", 90 * GB, 15 * GB)
    p = report.projection
    assert p is not None and p.at == NOW + timedelta(days=30) and (p.basis_days, p.log_basis_days) == (30, 30)
    assert (p.snapshot_bytes, p.log_bytes, p.total_bytes) == (280 * GB, 40 * GB, 320 * GB)  # linear: +90, +15 a month
    assert report.price_per_gb_month == 0.023
    assert report.monthly_cost == pytest.approx(215 * 0.023) and report.projected_monthly_cost == pytest.approx(7.36)
    assert report.notes == ()
    doc = report.to_dict()
    assert (
        doc["gb_bytes"] == 10**9 and doc["total_bytes"] == 215 * GB and doc["measured_at"] == "2026-12-10T03:00:00.000Z"
    )
    assert doc["projection"]["total_bytes"] == 320 * GB and doc["growth"][0]["since"] == "2026-12-02T22:12:00.000Z"


def test_the_7_day_rate_projects_when_30_days_of_samples_are_missing() -> None:
    report = cost_report(cluster(), [sample(7, 100 * GB, 7 * GB)], [], now=NOW, current=sample(0, 114 * GB, 7 * GB))
    g7, g30 = report.growth
    assert g7.snapshot_bytes == 14 * GB and g30.source == "none"
    p = report.projection
    assert p is not None and p.basis_days == 7 and p.snapshot_bytes == 174 * GB and p.log_bytes == 7 * GB


def test_a_shrinking_store_projects_down_but_never_below_zero() -> None:
    report = cost_report(cluster(), [sample(7, 100 * GB, None)], [], now=NOW, current=sample(0, 30 * GB, None))
    p = report.projection
    assert p is not None and p.snapshot_bytes == 0 and p.log_bytes is None
    assert "log bytes not measured (the log storage was not listed)" in report.notes


def test_price_by_storage_class_and_a_class_without_a_price() -> None:
    prices = {"STANDARD": 0.02, "GLACIER_IR": 0.004}
    cold = cost_report(
        cluster(storage_class="GLACIER_IR", price_per_gb_month=prices), [sample(0, 500 * GB, 0)], [], now=NOW
    )
    assert cold.storage_class == "GLACIER_IR" and cold.monthly_cost == pytest.approx(2.0)
    assert cold.usage.source == "sample"
    assert cold.notes == ("measured when the storage class was STANDARD; priced as GLACIER_IR (the config)",)
    unknown = cost_report(cluster(storage_class="DEEP_ARCHIVE"), [], [backup("dev-full-1", NOW, GB)], now=NOW)
    assert unknown.monthly_cost is None and unknown.projected_monthly_cost is None
    assert any("no price for storage class DEEP_ARCHIVE" in n for n in unknown.notes)
    single = cluster(price_per_gb_month=0.05)  # one number: the price of STANDARD
    assert cost_report(single, [sample(0, 2 * GB, 0)], [], now=NOW).monthly_cost == pytest.approx(0.1)


def test_catalog_fallback_counts_what_was_retained_at_each_time() -> None:
    rows = [
        backup(
            "dev-full-old",
            NOW - timedelta(days=40),
            50 * GB,
            status=BackupStatus.DELETED,
            updated=NOW - timedelta(days=20),
        ),
        backup("dev-full-a", NOW - timedelta(days=20), 60 * GB, status=BackupStatus.EXPIRED),  # files still there
        backup("dev-full-b", NOW - timedelta(days=3), 70 * GB),
        backup("dev-full-unsized", NOW - timedelta(days=1), None),
        backup("dev-full-failed", NOW - timedelta(days=2), 5 * GB, status=BackupStatus.FAILED),
    ]
    assert catalog_snapshot_bytes(rows, NOW) == (130 * GB, 1)
    assert catalog_snapshot_bytes(rows, NOW - timedelta(days=30)) == (50 * GB, 0)
    assert catalog_snapshot_bytes(rows, NOW - timedelta(days=7)) == (60 * GB, 0)
    report = cost_report(cluster(), [], rows, now=NOW)
    assert report.usage.source == "catalog" and report.usage.snapshot_bytes == 130 * GB
    assert report.usage.log_bytes is None
    g7, g30 = report.growth
    assert (g7.source, g7.snapshot_bytes, g7.log_bytes) == ("catalog", 70 * GB, None)
    assert (g30.source, g30.snapshot_bytes) == ("catalog", 80 * GB)
    assert any("snapshot bytes from the catalog's size_bytes" in n for n in report.notes)
    assert any("1 retained backup(s) without a recorded size" in n for n in report.notes)


def test_a_sample_without_an_old_sample_takes_the_growth_from_the_catalog_and_says_so() -> None:
    rows = [backup("dev-full-a", NOW - timedelta(days=20), 60 * GB), backup("dev-full-b", NOW - timedelta(days=3), GB)]
    report = cost_report(cluster(), [sample(2, 100 * GB, 3 * GB)], rows, now=NOW)
    g7, g30 = report.growth
    assert report.usage.source == "sample" and g7.since == NOW - timedelta(days=9)
    assert (g7.source, g7.snapshot_bytes, g30.snapshot_bytes) == ("catalog", GB, 61 * GB)
    assert "no sample about 7 days old: the 7-day growth is the catalog's (snapshot only)" in report.notes


def test_an_empty_catalog_reports_no_backups_rather_than_failing(catalog: Catalog) -> None:
    report = cost_from_catalog(catalog, cluster(), now=NOW)
    assert report.usage.source == "none" and report.growth == () and report.projection is None
    assert report.monthly_cost is None and report.notes == ("no backups recorded and no storage sample",)


def test_cost_from_catalog_reads_the_recorded_samples(catalog: Catalog, root: Path) -> None:
    c = cluster(f"local://{root}")
    measure_usage(catalog, c, LocalStorage(root), None, now=NOW - timedelta(days=7))
    write(root, "dev/full/dev-full-2/big.sst", 1_000_000)
    current = measure_usage(catalog, c, LocalStorage(root), None, now=NOW)
    catalog.add_event(USAGE_EVENT, "garbage", cluster="dev", details={"snapshot_bytes": "a lot"})
    report = cost_from_catalog(catalog, c, now=NOW, current=current)
    assert report.growth[0].source == "samples" and report.growth[0].snapshot_bytes == 1_000_000
    later = cost_from_catalog(catalog, c, now=NOW + timedelta(hours=5))
    assert later.usage.source == "sample" and later.usage.at == NOW


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "-"), (0, "0.00 GB"), (40_000, "0.00004 GB"), (340_000, "0.00034 GB"), (12_345_678_901, "12.35 GB")],
    ids=["unknown", "zero", "tiny", "small", "large"],
)
def test_gb_text_is_decimal_and_never_rounds_a_small_store_to_zero(n: int | None, text: str) -> None:
    assert gb_text(n) == text
