"""Verification tiers (#16): tier 1 reads every file back, tier 2 runs ``br debug checksum``; coverage."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.helpers.catalog import Clock, add_backup
from tidbops.br import runner
from tidbops.catalog.manifest import backup_path, build_manifest, write_manifest
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.storage import LocalStorage, ObjectInfo, ObjectNotFoundError, Storage, StorageError, storage_from_uri
from tidbops.verification import (
    Coverage,
    VerificationError,
    coverage,
    due_for_br_checksum,
    verify_br_checksum,
    verify_files,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 3, 23, tzinfo=UTC)
FILES = {
    "backupmeta": b"meta" * 10,
    "1/1_2_28_write.sst": bytes(range(256)) * 4,
    "1/1_2_28_default.sst": b"\x00\x01" * 300,
}


@pytest.fixture
def clock_start() -> datetime:
    return T0


@pytest.fixture
def root(tmp_path: Path) -> LocalStorage:
    (tmp_path / "storage").mkdir()
    return LocalStorage(tmp_path / "storage")


def make_backup(
    catalog: Catalog, root: LocalStorage, n: int, *, cluster: str = "dev", hashes: bool = True
) -> tuple[BackupRecord, Path]:
    """A succeeded, catalogued backup with real files and its manifest; returns the row and its directory."""
    backup_id = f"{cluster}-full-2026030{n}t010000z-{n:08x}"
    storage = root.child(backup_path(cluster, BackupKind.FULL, backup_id))
    for path, data in FILES.items():
        storage.write_bytes(path, data)
    started = T0 - timedelta(days=10 - n)
    record = add_backup(catalog, backup_id, started, cluster=cluster, storage_uri=storage.uri)
    write_manifest(storage, build_manifest(record, storage, hash_files=hashes))
    return record, Path(storage.uri.removeprefix("local://"))


def open_local(uri: str) -> Storage:
    return storage_from_uri(uri)


def row(catalog: Catalog, backup_id: str) -> BackupRecord:
    found = catalog.get(backup_id)
    assert found is not None
    return found


# ------------------------------------------------------------------------------------------- tier 1


def test_tier1_passes_a_good_backup_and_records_tier_1(catalog: Catalog, root: LocalStorage) -> None:
    good, _ = make_backup(catalog, root, 1)
    report = verify_files(catalog, "dev", open_local)
    assert report.ok and [c.backup_id for c in report.checks] == [good.id]
    check = report.checks[0]
    assert check.recorded and check.tier == 1
    assert (
        check.detail.startswith("read back: ok: 3 files, 1664 bytes") and "(sizes and sha256 checked)" in check.detail
    )
    stored = row(catalog, good.id)
    assert stored.verified and stored.verified_tier == 1 and stored.verified_at == T0
    event = catalog.list_events(backup_id=good.id, kind="backup.verified")[-1]
    assert event.details is not None and event.details["tier"] == 1


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(lambda d: (d / "1/1_2_28_write.sst").unlink(), "1 missing (1/1_2_28_write.sst)", id="missing"),
        pytest.param(
            lambda d: (d / "1/1_2_28_default.sst").write_bytes(FILES["1/1_2_28_default.sst"] + b"!"),
            "1 wrong size (1/1_2_28_default.sst: 601 bytes, expected 600)",
            id="wrong-size",
        ),
        pytest.param(
            lambda d: (d / "1/1_2_28_write.sst").write_bytes(b"\xff" + FILES["1/1_2_28_write.sst"][1:]),
            "1 wrong sha256 (1/1_2_28_write.sst)",
            id="flipped-byte",
        ),
        pytest.param(
            lambda d: (d / "backupmeta").unlink(), "no backupmeta; 1 missing (backupmeta)", id="no-backupmeta"
        ),
        pytest.param(lambda d: (d / "tidbops-manifest.json").unlink(), "cannot verify:", id="no-manifest"),
        pytest.param(
            lambda d: (d / "tidbops-manifest.json").write_text("{not json"), "cannot verify:", id="bad-manifest"
        ),
    ],
)
def test_tier1_fails_a_damaged_backup_names_what_is_wrong_and_clears_the_tier(
    catalog: Catalog, root: LocalStorage, damage: Callable[[Path], object], expected: str
) -> None:
    good, _ = make_backup(catalog, root, 1)
    bad, where = make_backup(catalog, root, 2)
    catalog.mark_verified(bad.id, True, "BR said so", tier=2)
    damage(where)
    report = verify_files(catalog, "dev", open_local)
    assert not report.ok
    [failure] = report.failures
    assert failure.backup_id == bad.id and failure.recorded
    assert expected in failure.detail
    line = failure.line()
    assert line.startswith(f"backup {bad.id} (cluster dev) failed tier 1: ") and "\n" not in line
    stored = row(catalog, bad.id)
    assert not stored.verified and stored.verified_tier is None and stored.verify_failed
    assert row(catalog, good.id).verified_tier == 1
    assert catalog.list_events(backup_id=bad.id, kind="backup.verify_failed")[-1].details == {
        "ok": False,
        "tier": 1,
        "reason": stored.verify_detail,
    }


def test_tier1_without_recorded_hashes_checks_sizes_by_reading(catalog: Catalog, root: LocalStorage) -> None:
    _, where = make_backup(catalog, root, 1, hashes=False)
    (where / "1/1_2_28_write.sst").write_bytes(b"\xff" + FILES["1/1_2_28_write.sst"][1:])  # same size
    [check] = verify_files(catalog, "dev", open_local).checks
    assert check.ok and "(sizes checked)" in check.detail


@dataclass
class LyingStorage:
    """Lists what the manifest expects, but reads what is really there (or nothing)."""

    inner: LocalStorage
    sizes: dict[str, int]
    vanish: set[str] = field(default_factory=set)
    reads: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return self.inner.uri

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return [ObjectInfo(o.path, self.sizes.get(o.path, o.size)) for o in self.inner.list(prefix)]

    def read_bytes(self, path: str) -> bytes:
        return self.inner.read_bytes(path)

    def open_read(self, path: str) -> BinaryIO:
        self.reads.append(path)
        if path in self.vanish:
            raise ObjectNotFoundError(f"{self.uri}/{path} does not exist")
        return io.BytesIO(self.inner.read_bytes(path))


def test_tier1_reads_the_data_back_not_just_the_listing(catalog: Catalog, root: LocalStorage) -> None:
    _, where = make_backup(catalog, root, 1)
    inner = LocalStorage(where)
    (where / "1/1_2_28_default.sst").write_bytes(b"\x00" * 10)  # truncated; the listing below still says 600
    lying = LyingStorage(inner, {"1/1_2_28_default.sst": 600}, vanish={"1/1_2_28_write.sst"})
    [check] = verify_files(catalog, "dev", lambda uri: lying).checks  # type: ignore[arg-type,return-value]
    assert not check.ok
    assert "1 missing (1/1_2_28_write.sst)" in check.detail
    assert "1/1_2_28_default.sst: 10 bytes, expected 600" in check.detail
    assert sorted(lying.reads) == sorted(FILES)


def test_tier1_skips_what_is_not_retained(catalog: Catalog, root: LocalStorage) -> None:
    kept, _ = make_backup(catalog, root, 1)
    expired, _ = make_backup(catalog, root, 2)
    catalog.set_status(expired.id, BackupStatus.EXPIRED, "retention")
    catalog.start_backup(
        NewBackup(id="dev-full-x-running", cluster="dev", kind=BackupKind.FULL, storage_uri=f"{root.uri}/r",
                  started_at=T0)
    )  # fmt: skip
    catalog.start_backup(
        NewBackup(id="dev-full-x-failed", cluster="dev", kind=BackupKind.FULL, storage_uri=f"{root.uri}/f",
                  started_at=T0)
    )  # fmt: skip
    catalog.fail_backup("dev-full-x-failed", "boom")
    make_backup(catalog, root, 3, cluster="uat")
    report = verify_files(catalog, "dev", open_local)
    assert [c.backup_id for c in report.checks] == [kept.id]
    assert row(catalog, expired.id).verified_at is None


def test_tier1_storage_down_fails_the_check_but_records_nothing(catalog: Catalog, root: LocalStorage) -> None:
    backup, _ = make_backup(catalog, root, 1)
    catalog.mark_verified(backup.id, True, "earlier", tier=2)

    def down(uri: str) -> Storage:
        raise StorageError("s3://backups: could not connect to the endpoint URL")

    [check] = verify_files(catalog, "dev", down).checks
    assert not check.ok and not check.recorded
    assert "storage did not answer" in check.detail and "not recorded" in check.line()
    assert row(catalog, backup.id).verified_tier == 2


def test_a_passed_tier1_keeps_tier_2(catalog: Catalog, root: LocalStorage) -> None:
    backup, _ = make_backup(catalog, root, 1)
    catalog.mark_verified(backup.id, True, "br debug checksum: ok", tier=2)
    assert verify_files(catalog, "dev", open_local).ok
    assert row(catalog, backup.id).verified_tier == 2


# ------------------------------------------------------------------------------------------- tier 2


def cluster_config(root: LocalStorage, **over: Any) -> ClusterConfig:
    raw: dict[str, Any] = {
        "name": "dev",
        "env": "dev",
        "pd": ["127.0.0.1:2379"],
        "tidb_conn_id": "tidb_dev",
        "storage": {"uri": root.uri},
        "br": {"path": "/opt/br", "timeout": 60},
    }
    raw.update(over)
    return ClusterConfig.model_validate(raw)


@dataclass(frozen=True)
class Session:
    cluster: ClusterConfig
    env: dict[str, str]
    key_file: str | None
    log_file: str
    secrets: tuple[str, ...]


MISMATCH = (
    "Error: \nbackup data checksum failed: 1/1_2_28_write.sst may be changed\ncalculated sha256 is {calc},\n"
    "origin sha256 is {orig}: [BR:Backup:ErrBackupChecksumMismatch]backup checksum mismatch"
)


@dataclass
class FakeBR:
    """Answers ``br debug checksum`` the way BR does: the success line, or the mismatch error."""

    bad: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)
    envs: list[Mapping[str, str] | None] = field(default_factory=list)
    timeout_for: set[str] = field(default_factory=set)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        on_line: runner.LineSink | None = None,
        on_start: Callable[[runner.RunningBR], None] | None = None,
    ) -> runner.ProcessResult:
        self.calls.append(list(argv))
        self.envs.append(env)
        uri = argv[argv.index("--storage") + 1]
        Path(argv[argv.index("--log-file") + 1]).write_text("[INFO] br log\n")
        detail = "Detail BR log in /tmp/x.log "
        if any(uri.endswith(b) for b in self.timeout_for):
            raise runner.BRTimeoutError(timeout, detail)
        if any(uri.endswith(b) for b in self.bad):
            calc, orig = hashlib.sha256(b"x").hexdigest(), hashlib.sha256(b"y").hexdigest()
            return runner.ProcessResult(tuple(argv), 1, "", detail + "\n" + MISMATCH.format(calc=calc, orig=orig), 0.2)
        return runner.ProcessResult(tuple(argv), 0, "backup data checksum succeed!", detail, 0.2)


def session(root: LocalStorage, tmp_path: Path, **over: Any) -> Session:
    return Session(cluster_config(root, **over), {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}, None, "", ("s3cr3t",))


def test_tier2_runs_br_on_each_due_backup_and_records_tier_2(
    catalog: Catalog, root: LocalStorage, tmp_path: Path, clock: Clock
) -> None:
    a, _ = make_backup(catalog, root, 1)
    b, _ = make_backup(catalog, root, 2)
    fake = FakeBR(bad={b.id})
    due, skipped = due_for_br_checksum(catalog, "dev", clock.now)
    assert [d.id for d in due] == [a.id, b.id] and skipped == []
    report = verify_br_checksum(catalog, session(root, tmp_path), due, run=fake, log_dir=str(tmp_path / "logs"))
    assert [c.ok for c in report.checks] == [True, False]
    argv = fake.calls[0]
    assert argv[:5] == ["/opt/br", "debug", "checksum", "--storage", a.storage_uri]
    assert "--pd" not in argv and not any("s3cr3t" in x for x in argv)
    assert fake.envs[0] == {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    assert row(catalog, a.id).verified_tier == 2
    failed = row(catalog, b.id)
    assert failed.verify_failed and failed.verified_tier is None
    [failure] = report.failures
    assert "[BR:Backup:ErrBackupChecksumMismatch] 1/1_2_28_write.sst may be changed" in failure.detail
    kept_log = Path(fake.calls[1][fake.calls[1].index("--log-file") + 1])
    assert kept_log.exists() and str(kept_log) in failure.detail  # the evidence stays
    assert not Path(argv[argv.index("--log-file") + 1]).exists()  # a passing run's log goes


def test_tier2_is_due_weekly(catalog: Catalog, root: LocalStorage, tmp_path: Path, clock: Clock) -> None:
    a, _ = make_backup(catalog, root, 1)
    due, _ = due_for_br_checksum(catalog, "dev", clock.now)
    verify_br_checksum(catalog, session(root, tmp_path), due, run=FakeBR(), log_dir=str(tmp_path))
    clock.now = T0 + timedelta(days=1)
    verify_files(catalog, "dev", open_local)  # nightly tier 1 moves verified_at, not the tier-2 date
    due, skipped = due_for_br_checksum(catalog, "dev", clock.now)
    assert due == [] and skipped == [(a.id, "tier ≥ 2 passed within the last 7 day(s)")]
    clock.now = T0 + timedelta(days=7, minutes=1)
    due, _ = due_for_br_checksum(catalog, "dev", clock.now)
    assert [d.id for d in due] == [a.id]


def test_a_drill_pass_counts_and_a_failed_backup_is_not_rechecked(
    catalog: Catalog, root: LocalStorage, clock: Clock
) -> None:
    drilled, _ = make_backup(catalog, root, 1)
    broken, _ = make_backup(catalog, root, 2)
    fresh, _ = make_backup(catalog, root, 3)
    catalog.mark_verified(drilled.id, True, "drill passed", tier=3)
    catalog.mark_verified(broken.id, False, "1 missing (backupmeta)", tier=1)
    due, skipped = due_for_br_checksum(catalog, "dev", clock.now)
    assert [d.id for d in due] == [fresh.id]
    assert dict(skipped)[broken.id].startswith("its last verification failed: 1 missing")


def test_tier2_timeout_records_nothing(catalog: Catalog, root: LocalStorage, tmp_path: Path, clock: Clock) -> None:
    a, _ = make_backup(catalog, root, 1)
    report = verify_br_checksum(
        catalog, session(root, tmp_path), [a], run=FakeBR(timeout_for={a.id}), log_dir=str(tmp_path)
    )
    [check] = report.checks
    assert not check.ok and not check.recorded and "did not finish" in check.detail
    assert row(catalog, a.id).verified_at is None


def test_tier2_refuses_to_run_without_what_it_needs(
    catalog: Catalog, root: LocalStorage, tmp_path: Path, clock: Clock
) -> None:
    a, _ = make_backup(catalog, root, 1)
    encrypted = session(root, tmp_path, br={"encryption": {"method": "aes256-ctr", "key_conn_id": "k"}})
    fake = FakeBR()
    with pytest.raises(VerificationError, match="encrypts its backups"):
        verify_br_checksum(catalog, encrypted, [a], run=fake, log_dir=str(tmp_path))
    with_key = replace(encrypted, key_file=str(tmp_path / "key"))
    verify_br_checksum(catalog, with_key, [a], run=fake, log_dir=str(tmp_path))
    assert fake.calls[0][-4:-2] == ["--crypter.key-file", str(tmp_path / "key")]

    class Down(LocalStorage):
        def list_dirs(self, prefix: str = "") -> list[str]:
            raise StorageError("connection refused")

    before = row(catalog, a.id)
    with pytest.raises(VerificationError, match="does not answer"):
        verify_br_checksum(catalog, with_key, [a], run=fake, root=Down(tmp_path), log_dir=str(tmp_path))
    assert row(catalog, a.id) == before and len(fake.calls) == 1


# ------------------------------------------------------------------------------------------ coverage


def rec(backup_id: str, cluster: str, *, status: BackupStatus = BackupStatus.SUCCEEDED, **over: Any) -> BackupRecord:
    base = BackupRecord(
        id=backup_id,
        cluster=cluster,
        kind=BackupKind.FULL,
        status=status,
        storage_uri=f"s3://b/{cluster}/full/{backup_id}",
        started_at=T0 - timedelta(days=2),
    )
    return replace(base, **over)


def test_coverage_per_cluster_and_fleet() -> None:
    recent = {"verified": True, "verified_tier": 1, "verified_at": T0 - timedelta(hours=3)}
    rows = [
        rec("a1", "a", **recent),
        rec("a2", "a", verified=True, verified_tier=2, verified_at=T0 - timedelta(hours=25)),  # too old
        rec("a3", "a", verified=False, verified_at=T0 - timedelta(hours=1)),  # failed
        rec("a4", "a", status=BackupStatus.EXPIRED, **recent),  # not retained
        rec("a5", "a", status=BackupStatus.FAILED),
        rec("b1", "b", verified=True, verified_tier=2, verified_at=T0 - timedelta(hours=23)),
        rec("b2", "b", verified=True, verified_tier=None, verified_at=T0),  # no tier recorded: not counted
    ]
    report = coverage(rows, T0, clusters=["c", "a"])
    assert report.clusters == {"c": Coverage(0, 0), "a": Coverage(3, 1), "b": Coverage(2, 1)}
    assert report.fleet == Coverage(5, 2)
    assert report.fleet.percent == 40.0 and report.clusters["c"].percent is None
    assert report.clusters["a"].text() == "1/3 (33.3%)" and report.clusters["c"].text() == "0/0 (n/a)"
    assert report.to_dict()["fleet"] == {"retained": 5, "verified": 2, "percent": 40.0}


def test_coverage_reaches_100_after_a_nightly_run(catalog: Catalog, root: LocalStorage, clock: Clock) -> None:
    make_backup(catalog, root, 1)
    make_backup(catalog, root, 2)
    assert coverage(catalog.list_backups(), clock.now).fleet == Coverage(2, 0)
    verify_files(catalog, "dev", open_local)
    assert coverage(catalog.list_backups(), clock.now).fleet.percent == 100.0
    assert coverage(catalog.list_backups(), clock.now + timedelta(hours=25)).fleet.percent == 0.0
