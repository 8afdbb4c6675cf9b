from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidbops.catalog.errors import BrokenChainError
from tidbops.catalog.manifest import MANIFEST_ROW_FIELDS
from tidbops.catalog.records import (
    BackupKind,
    BackupRecord,
    BackupStatus,
    NewBackup,
    chain_to,
    index,
    make_backup_id,
    restorable_chain,
    summarise_error,
)
from tidbops.catalog.schema import backups

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_table_holds_exactly_the_record() -> None:
    assert {f.name for f in fields(BackupRecord)} == set(backups.c.keys())
    assert set(MANIFEST_ROW_FIELDS) < set(backups.c.keys())


def test_backup_ids() -> None:
    a = make_backup_id("prod", BackupKind.FULL, T0, dag_id="backup__prod", run_id="scheduled__1")
    assert a == make_backup_id("prod", BackupKind.FULL, T0, dag_id="backup__prod", run_id="scheduled__1")
    assert a.startswith("prod-full-20240102T030405Z-".lower()) and len(a.rsplit("-", 1)[1]) == 8
    assert a != make_backup_id("prod", BackupKind.FULL, T0, dag_id="backup__prod", run_id="scheduled__2")
    other_zone = T0.astimezone(timezone(timedelta(hours=8)))
    assert make_backup_id("prod", BackupKind.INCREMENTAL, other_zone, dag_id="d", run_id="r").startswith(
        "prod-incr-20240102t030405z-"
    )
    manual = {make_backup_id("prod", BackupKind.FULL, T0) for _ in range(5)}
    assert len(manual) == 5  # without a run, random
    with pytest.raises(ValueError, match="no time zone"):
        make_backup_id("prod", BackupKind.FULL, datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        pytest.param({"id": "Bad Id"}, "not a valid backup id", id="id"),
        pytest.param({"kind": BackupKind.INCREMENTAL}, "needs base_backup_id and last_backup_ts", id="incr-no-base"),
        pytest.param({"base_backup_id": "x", "last_backup_ts": 5}, "a full backup has no base", id="full-with-base"),
        pytest.param({"storage_uri": "s3://b/x?secret-access-key=1"}, "must not carry credentials", id="uri-query"),
        pytest.param({"storage_uri": "s3://k:s@b/x"}, "must not carry credentials", id="uri-userinfo"),
        pytest.param({"encryption_method": "deadbeef" * 8}, "is not one of", id="a-key-is-not-a-method"),
        pytest.param({"started_at": datetime(2024, 1, 1)}, "no time zone", id="naive"),
        pytest.param({"try_number": 0}, "at least 1", id="try"),
        pytest.param({"dag_id": "d" * 251}, "at most 250", id="long-dag-id"),
    ],
)
def test_new_backup_validation(changes: dict[str, object], match: str) -> None:
    values: dict[str, object] = {
        "id": "dev-full-1",
        "cluster": "dev",
        "kind": BackupKind.FULL,
        "storage_uri": "s3://b/dev/full/dev-full-1",
        "started_at": T0,
    }
    NewBackup(**values)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        NewBackup(**(values | changes))  # type: ignore[arg-type]


def test_summarise_error_caps_length() -> None:
    assert summarise_error("  boom \n") == "boom"
    long = summarise_error("e" * 10_000)
    assert len(long) == 4000 and long.endswith("… (truncated)")


def rec(
    backup_id: str, base: str | None = None, status: BackupStatus = BackupStatus.SUCCEEDED, **kw: str
) -> BackupRecord:
    return BackupRecord(
        id=backup_id,
        cluster=kw.get("cluster", "dev"),
        kind=BackupKind.INCREMENTAL if base else BackupKind.FULL,
        status=status,
        storage_uri="s3://b/x",
        started_at=T0,
        backup_ts=1 << 40,
        backup_time=T0,
        base_backup_id=base,
    )


def test_chains() -> None:
    rows = index([rec("f"), rec("i1", "f"), rec("i2", "i1"), rec("j", "gone"), rec("u", "f", cluster="uat")])
    assert [b.id for b in chain_to(rows, rows["i2"])] == ["f", "i1", "i2"]
    with pytest.raises(BrokenChainError, match="its base 'gone' is not in the catalog"):
        chain_to(rows, rows["j"])
    with pytest.raises(BrokenChainError, match="belongs to cluster 'dev'"):
        chain_to(rows, rows["u"])
    loop = index([rec("a", "b"), rec("b", "a")])
    with pytest.raises(BrokenChainError, match="loops"):
        chain_to(loop, loop["a"])
    failed_link = index([rec("f"), rec("i1", "f", BackupStatus.FAILED), rec("i2", "i1")])
    assert restorable_chain(failed_link, failed_link["i2"]) is None
    assert restorable_chain(rows, rows["j"]) is None
    assert restorable_chain(rows, rows["i1"]) == [rows["f"], rows["i1"]]
