"""One retention run (#16): reconcile, refusals, the report, the delete order, resuming, holds, truncation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.catalog import Clock, add_backup
from tidbops import tso
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.records import BackupKind, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, LogBackupConfig, RetentionConfig, StorageConfig
from tidbops.pitr import LogRange
from tidbops.retention import RetentionError, apply, plan_cluster, reconcile, survey_storage
from tidbops.storage import LocalStorage, StorageError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def clock_start() -> datetime:
    return T0


@pytest.fixture
def root(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


def config(*, keep_days: float = 2, log: bool = False, env: str = "dev", dry_run: bool | None = None) -> ClusterConfig:
    return ClusterConfig(
        name="dev",
        env=env,
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri="local:///unused"),
        retention=RetentionConfig(keep_days=keep_days, keep_full=1, dry_run=dry_run),
        log_backup=LogBackupConfig(enabled=log, task_name="dev-log" if log else None),
    )


def backup(
    catalog: Catalog,
    root: LocalStorage,
    clock: Clock,
    backup_id: str,
    day: float,
    base: str | None = None,
    *,
    verified: bool | None = True,
) -> None:
    at = T0 + timedelta(days=day)
    clock.now = at
    kind = BackupKind.INCREMENTAL if base else BackupKind.FULL
    add_backup(catalog, backup_id, at, base=base, storage_uri=f"{root.uri}/{backup_path('dev', kind, backup_id)}")
    where = root.child(backup_path("dev", kind, backup_id))
    for name in ("backupmeta", "1/a.sst", "1/b.sst", MANIFEST_NAME):
        where.write_bytes(name, b"data")
    if verified is not None:
        catalog.mark_verified(backup_id, verified, "ok" if verified else "2 missing (1/a.sst, backupmeta)")


def history(catalog: Catalog, root: LocalStorage, clock: Clock) -> None:
    backup(catalog, root, clock, "f1", 0)
    backup(catalog, root, clock, "i1", 1, "f1")
    backup(catalog, root, clock, "f2", 5)
    backup(catalog, root, clock, "i2", 6, "f2")
    backup(catalog, root, clock, "f3", 10)


def run(catalog: Catalog, root: LocalStorage, cfg: ClusterConfig, now: datetime, **kw: object):  # type: ignore[no-untyped-def]
    report = plan_cluster(
        cfg, catalog.list_backups("dev"), survey_storage(root, "dev"), now, held=catalog.held_backups("dev"), **kw
    )
    return report, apply(report, catalog, root)


def test_a_run_expires_the_old_chain_deletes_its_prefix_and_marks_rows(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    history(catalog, root, clock)
    now = T0 + timedelta(days=11)
    report, result = run(catalog, root, config(), now)
    assert report.expire_ids == ["f1", "i1"] and report.refused is None
    assert sorted(result.deleted) == ["f1", "i1"] and result.objects_deleted == 8
    assert {b.id: b.status for b in catalog.list_backups("dev")} == {
        "f1": BackupStatus.DELETED,
        "i1": BackupStatus.DELETED,
        "f2": BackupStatus.SUCCEEDED,  # the chain of the restore point at the window's start
        "i2": BackupStatus.SUCCEEDED,
        "f3": BackupStatus.SUCCEEDED,
    }
    assert set(survey_storage(root, "dev")) == {"f2", "i2", "f3"}
    kinds = [e.kind for e in catalog.list_events(backup_id="f1")]
    assert kinds[-2:] == ["backup.expired", "backup.deleted"]
    assert any("retention" in e.message for e in catalog.list_events(backup_id="f1", kind="backup.expired"))
    keep = {d.backup.id: d.reason for d in report.keep}
    assert "newest restore point before the 2-day window" in keep["i2"]
    # the report carries every decision; the note is short Markdown without tags
    lines = "\n".join(report.lines())
    assert "expire  f1:" in lines and "keep    f3:" in lines
    assert "<" not in report.note_markdown() and "`f1`" in report.note_markdown()
    # a repeated run changes nothing more
    again, result2 = run(catalog, root, config(), now)
    assert again.expire_ids == [] and again.resume == () and result2.deleted == []


def test_dry_run_is_the_production_default_and_deletes_nothing(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    history(catalog, root, clock)
    report, result = run(catalog, root, config(env="prod"), T0 + timedelta(days=11))
    assert report.dry_run and report.expire_ids == ["f1", "i1"] and not report.will_delete
    assert result.deleted == [] and set(survey_storage(root, "dev")) == {"f1", "i1", "f2", "i2", "f3"}
    assert "DRY RUN" in report.lines()[0]
    assert not config(env="prod", dry_run=False).retention_dry_run and config(dry_run=True).retention_dry_run


def test_a_backup_deleted_behind_our_back_refuses_the_run(catalog: Catalog, root: LocalStorage, clock: Clock) -> None:
    history(catalog, root, clock)
    gone = root.child(backup_path("dev", BackupKind.FULL, "f3"))
    gone.delete([o.path for o in gone.list("")])
    stray = root.child("dev/full/dev-stray")
    stray.write_bytes(MANIFEST_NAME, b"{}")
    report, result = run(catalog, root, config(), T0 + timedelta(days=11))
    assert report.refused and "disagree about 2 backup(s)" in report.refused
    assert [str(d) for d in report.differences] == [
        "f3: catalogued as succeeded but its directory full/f3 is gone",
        f"dev-stray: full/dev-stray/{MANIFEST_NAME} is in storage with no catalog row",
    ]
    assert result.deleted == [] and {"f1", "i1"} <= set(survey_storage(root, "dev"))
    assert catalog.get("f1").status is BackupStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_failed_verification_of_the_newest_full_stops_all_expiry(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    history(catalog, root, clock)
    catalog.mark_verified("f3", False, "1 wrong size (1/a.sst)")
    report, result = run(catalog, root, config(), T0 + timedelta(days=11))
    assert report.refused and "f3 failed verification" in report.refused and result.deleted == []


class FlakyStorage(LocalStorage):
    """Local storage whose deletes below ``fail_under`` fail, as when S3 goes away mid-run."""

    fail_under: str | None = None

    def child(self, prefix: str) -> FlakyStorage:
        sub = FlakyStorage(self._abs(prefix))
        sub.fail_under = self.fail_under
        return sub

    def delete(self, paths: Iterable[str]) -> int:
        if self.fail_under and self.fail_under in str(self.root):
            raise StorageError(f"cannot delete objects in {self.uri}: the S3 endpoint does not answer")
        return super().delete(paths)


def test_storage_failing_mid_delete_leaves_expired_rows_and_a_retry_finishes(
    catalog: Catalog, clock: Clock, tmp_path: Path
) -> None:
    root = FlakyStorage(tmp_path / "store")
    history(catalog, root, clock)
    now = T0 + timedelta(days=11)
    root.fail_under = "incr/i1"
    with pytest.raises(RetentionError, match=r"i1.*rows say expired"):
        run(catalog, root, config(), now)
    statuses = {b.id: b.status for b in catalog.list_backups("dev")}
    assert statuses["f1"] is BackupStatus.DELETED and statuses["i1"] is BackupStatus.EXPIRED
    # the row says expired while its files are still there; nothing blocks the next run
    assert "i1" in survey_storage(root, "dev")
    assert reconcile(catalog.list_backups("dev"), survey_storage(root, "dev")) == []
    root.fail_under = None
    report, result = run(catalog, root, config(), now)
    assert report.resume == ("i1",) and result.deleted == ["i1"]
    assert catalog.get("i1").status is BackupStatus.DELETED  # type: ignore[union-attr]
    assert "i1" not in survey_storage(root, "dev")


def test_a_hold_keeps_a_backup_and_a_hold_taken_after_the_plan_keeps_its_files(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    history(catalog, root, clock)
    now = T0 + timedelta(days=11)
    clock.now = now
    catalog.hold_backups("dev", ["f1"], "dev-drill-1", ttl=timedelta(hours=2))
    report = plan_cluster(
        config(), catalog.list_backups("dev"), survey_storage(root, "dev"), now, held=catalog.held_backups("dev")
    )
    assert report.expire_ids == ["i1"] and "held by dev-drill-1" in {d.backup.id: d.reason for d in report.keep}["f1"]
    catalog.release_holds("dev-drill-1")
    report = plan_cluster(config(), catalog.list_backups("dev"), survey_storage(root, "dev"), now, held={})
    catalog.hold_backups("dev", ["f1"], "dev-restore-9", ttl=timedelta(hours=2))  # a restore starts meanwhile
    result = apply(report, catalog, root)
    assert result.skipped_held == ["f1"] and result.deleted == ["i1"]
    assert catalog.get("f1").status is BackupStatus.EXPIRED and "f1" in survey_storage(root, "dev")  # type: ignore[union-attr]


def test_the_log_is_truncated_to_the_earliest_retained_full_inside_it_and_never_past_it(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    history(catalog, root, clock)
    now = T0 + timedelta(days=11)
    log = LogRange(tso.from_datetime(T0 + timedelta(hours=1)), tso.from_datetime(now))
    report, _ = run(catalog, root, config(log=True), now, log_range=log)
    assert report.truncate_until == tso.from_datetime(T0 + timedelta(days=5))  # f2: the PITR seed of the window
    assert "f2" in report.truncate_reason
    # the log already starting there: nothing more to truncate
    log2 = LogRange(report.truncate_until, log.max_ts)  # type: ignore[arg-type]
    again, _ = run(catalog, root, config(log=True), now, log_range=log2)
    assert again.truncate_until is None and "already starts" in again.truncate_reason
    # the range unknown: every full kept, nothing truncated
    unknown, _ = run(catalog, root, config(log=True), now, log_range=None)
    assert unknown.truncate_until is None and any("range is unknown" in n for n in unknown.notes)
    # never past the checkpoint
    lagging = LogRange(tso.from_datetime(T0), tso.from_datetime(T0 + timedelta(days=3)))
    clipped, _ = run(catalog, root, config(log=True, keep_days=20), now, log_range=lagging)
    assert clipped.truncate_until is None or clipped.truncate_until <= lagging.max_ts


def test_an_unreadable_storage_refuses(catalog: Catalog, root: LocalStorage, clock: Clock) -> None:
    history(catalog, root, clock)
    report = plan_cluster(config(), catalog.list_backups("dev"), None, T0 + timedelta(days=11))
    assert report.refused and "could not be listed" in report.refused
    assert apply(report, catalog, root).deleted == []


def test_keep_days_takes_durations() -> None:
    assert RetentionConfig(keep_days="10m").window == timedelta(minutes=10)
    assert RetentionConfig(keep_days=14).window_text == "14-day"
    with pytest.raises(ValueError, match=r"out of range|out of bounds"):
        RetentionConfig(keep_days="5s")
    with pytest.raises(ValueError):
        RetentionConfig(keep_days=0)
