from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidbops import tso
from tidbops.catalog.errors import CatalogStateError, ManifestError
from tidbops.catalog.manifest import (
    MANIFEST_NAME,
    MANIFEST_ROW_FIELDS,
    Manifest,
    backup_path,
    build_manifest,
    read_manifest,
    rebuild_catalog,
    verify_backup,
    write_manifest,
)
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
BR_FILES = {
    "backup.lock": b"",
    "backupmeta": b"\x0a\x10meta-protobuf",
    "backupmeta.schema.000000001": b"schema" * 10,
    "store1/1_2_3_abc_434_default.sst": b"d" * 4096,
    "store1/1_2_3_abc_434_write.sst": b"w" * 1000,
    "store4/7_1_1_def_434_write.sst": b"x" * 17,
}


def write_br_backup(storage: LocalStorage, files: dict[str, bytes] = BR_FILES) -> None:
    for path, data in files.items():
        storage.write_bytes(path, data)


def succeeded(
    backup_id: str = "dev-full-20240501t020000z-0badcafe",
    *,
    kind: BackupKind = BackupKind.FULL,
    cluster: str = "dev",
    base: str | None = None,
    hours: int = 0,
    storage_uri: str = "local:///somewhere",
) -> BackupRecord:
    at = T0 + timedelta(hours=hours)
    return BackupRecord(
        id=backup_id,
        cluster=cluster,
        kind=kind,
        status=BackupStatus.SUCCEEDED,
        storage_uri=storage_uri,
        started_at=at - timedelta(minutes=3),
        backup_ts=tso.from_datetime(at),
        backup_time=at,
        base_backup_id=base,
        last_backup_ts=tso.from_datetime(at - timedelta(hours=1)) if base else None,
        total_kv=1234,
        br_duration_s=171.5,
        br_version="v8.5.1",
        encryption_method="aes256-ctr",
        dag_id="backup_full__dev",
        run_id="scheduled__2024-05-01T02:00:00+00:00",
        try_number=2,
        triggered_by="schedule",
        finished_at=at + timedelta(minutes=1),
        verified=True,
        error=None,
    )


@pytest.fixture
def backup_dir(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "root").child(backup_path("dev", BackupKind.FULL, succeeded().id))
    write_br_backup(storage)
    return storage


def test_backup_path() -> None:
    assert backup_path("dev", BackupKind.INCREMENTAL, "dev-incr-x") == "dev/incr/dev-incr-x"
    with pytest.raises(ValueError, match="not a valid backup id"):
        backup_path("dev", BackupKind.FULL, "../escape")


def test_build_manifest_lists_and_hashes_every_file(backup_dir: LocalStorage) -> None:
    backup_dir.write_bytes(MANIFEST_NAME, b"{}")  # an old manifest is never part of itself
    m = build_manifest(succeeded(), backup_dir, clock=lambda: T0 + timedelta(hours=1))
    assert [f.path for f in m.files] == sorted(BR_FILES)
    for f in m.files:
        assert f.size == len(BR_FILES[f.path])
        assert f.sha256 == hashlib.sha256(BR_FILES[f.path]).hexdigest()
    assert m.size_bytes == sum(len(d) for d in BR_FILES.values()) == m.total_bytes
    assert m.created_at == T0 + timedelta(hours=1)
    assert (m.id, m.kind, m.backup_ts, m.encryption_method) == (
        succeeded().id,
        BackupKind.FULL,
        succeeded().backup_ts,
        "aes256-ctr",
    )


def test_build_manifest_keeps_brs_size_and_can_skip_hashing(backup_dir: LocalStorage) -> None:
    m = build_manifest(replace(succeeded(), size_bytes=99), backup_dir, hash_files=False)
    assert m.size_bytes == 99
    assert all(f.sha256 is None for f in m.files)


def test_build_manifest_refuses_incomplete_or_unfinished_backups(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_bytes("store1/1.sst", b"x")
    with pytest.raises(ManifestError, match="no backupmeta"):
        build_manifest(succeeded(), storage)
    storage.write_bytes("backupmeta", b"m")
    with pytest.raises(CatalogStateError, match="running; a manifest is written for succeeded backups only"):
        build_manifest(replace(succeeded(), status=BackupStatus.RUNNING), storage)


def test_manifest_json_is_stable_and_round_trips(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir, clock=lambda: T0)
    text = m.to_json()
    assert text == Manifest.from_json(text).to_json()
    assert Manifest.from_json(text) == m
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and list(doc["backup"]) == sorted(doc["backup"])
    assert set(doc["backup"]) == set(MANIFEST_ROW_FIELDS)
    assert doc["format_version"] == 1
    assert doc["backup"]["backup_time"] == "2024-05-01T02:00:00.000000Z"  # to the microsecond: it round-trips
    assert doc["backup"]["kind"] == "full"
    # catalog state that changes after the backup is not in it
    assert not {"status", "verified", "verified_at", "error", "manifest_uri"} & set(doc["backup"])


def test_write_then_read(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir, clock=lambda: T0)
    uri = write_manifest(backup_dir, m)
    assert uri == f"{backup_dir.uri}/{MANIFEST_NAME}"
    assert read_manifest(backup_dir) == m


def test_write_is_once_but_a_retry_is_harmless(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir, clock=lambda: T0)
    write_manifest(backup_dir, m)
    write_manifest(backup_dir, replace(m, created_at=T0 + timedelta(minutes=5)))  # a retried task
    assert read_manifest(backup_dir).created_at == T0
    with pytest.raises(ManifestError, match="describes a different backup"):
        write_manifest(backup_dir, replace(m, backup_ts=m.backup_ts + 1))
    assert read_manifest(backup_dir) == m


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        pytest.param(lambda d: "nope{", "not JSON", id="not-json"),
        pytest.param(lambda d: [], "a JSON object", id="not-object"),
        pytest.param(lambda d: d | {"format_version": 2}, "newer than this code reads", id="newer-format"),
        pytest.param(lambda d: d | {"format_version": "1"}, "not a manifest format version", id="format-type"),
        pytest.param(
            lambda d: d | {"backup": {**d["backup"], "backup_ts": None}}, "backup_ts is missing", id="missing"
        ),
        pytest.param(lambda d: d | {"backup": {**d["backup"], "backup_ts": "1"}}, "must be an integer", id="ts-type"),
        pytest.param(
            lambda d: d | {"backup": {**d["backup"], "started_at": "2024-05-01T02:00:00"}}, "no time zone", id="naive"
        ),
        pytest.param(
            lambda d: d | {"backup": {**d["backup"], "kind": "diff"}},
            "backup.kind: .diff. is not one of full, incremental",
            id="kind",
        ),
        pytest.param(lambda d: d | {"files": [{"path": "a", "size": -1}]}, r"files\[0\]", id="bad-file"),
    ],
)
def test_read_refuses_bad_manifests(backup_dir: LocalStorage, mutate: object, match: str) -> None:
    doc = build_manifest(succeeded(), backup_dir).to_dict()
    changed = mutate(doc)  # type: ignore[operator]
    text = changed if isinstance(changed, str) else json.dumps(changed)
    backup_dir.write_bytes(MANIFEST_NAME, text.encode())
    with pytest.raises(ManifestError, match=match):
        read_manifest(backup_dir)


def test_read_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(LocalStorage(tmp_path))


# ------------------------------------------------------------------------------------------------ verify


def test_verify_ok(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir)
    write_manifest(backup_dir, m)
    result = verify_backup(backup_dir, m, check_hashes=True)
    assert result.ok and result.hashes_checked
    assert result.summary() == f"ok: 6 files, {m.total_bytes} bytes (sizes and sha256 checked)"


def test_verify_lists_what_is_missing_or_wrong(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir)
    backup_dir.delete(["store4/7_1_1_def_434_write.sst"])
    backup_dir.write_bytes("store1/1_2_3_abc_434_write.sst", b"short", overwrite=True)
    backup_dir.write_bytes("store1/1_2_3_abc_434_default.sst", b"D" * 4096, overwrite=True)  # same size
    backup_dir.write_bytes("store9/new.sst", b"?")
    sizes_only = verify_backup(backup_dir, m)
    assert not sizes_only.ok
    assert sizes_only.missing == ("store4/7_1_1_def_434_write.sst",)
    assert [(w.path, w.expected, w.actual) for w in sizes_only.wrong_size] == [
        ("store1/1_2_3_abc_434_write.sst", 1000, 5)
    ]
    assert sizes_only.wrong_hash == () and not sizes_only.hashes_checked
    assert sizes_only.unexpected == ("store9/new.sst",)
    assert sizes_only.summary() == (
        "FAILED (sizes checked): 1 missing (store4/7_1_1_def_434_write.sst); "
        "1 wrong size (store1/1_2_3_abc_434_write.sst: 5 bytes, expected 1000)"
    )
    with_hashes = verify_backup(backup_dir, m, check_hashes=True)
    assert with_hashes.wrong_hash == ("store1/1_2_3_abc_434_default.sst",)


def test_verify_needs_backupmeta(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir)
    backup_dir.delete(["backupmeta"])
    result = verify_backup(backup_dir, m)
    assert not result.ok and not result.backupmeta_present
    assert "no backupmeta" in result.summary() and "1 missing (backupmeta)" in result.summary()


def test_verify_a_manifest_without_backupmeta_fails(backup_dir: LocalStorage) -> None:
    m = build_manifest(succeeded(), backup_dir)
    m = replace(m, files=tuple(f for f in m.files if f.path != "backupmeta"))
    assert not verify_backup(backup_dir, m).ok


# ----------------------------------------------------------------------------------------------- rebuild


def record_backup(catalog: Catalog, root: LocalStorage, record: BackupRecord) -> BackupRecord:
    """What the backup pipeline does: start, BR writes, finish, manifest."""
    where = root.child(backup_path(record.cluster, record.kind, record.id))
    catalog.start_backup(
        NewBackup(
            id=record.id,
            cluster=record.cluster,
            kind=record.kind,
            storage_uri=where.uri,
            started_at=record.started_at,
            base_backup_id=record.base_backup_id,
            last_backup_ts=record.last_backup_ts,
            encryption_method=record.encryption_method,
            dag_id=record.dag_id,
            run_id=record.run_id,
            try_number=record.try_number,
            triggered_by=record.triggered_by,
        )
    )
    write_br_backup(where)
    done = catalog.finish_backup(
        record.id,
        backup_ts=record.backup_ts or 0,
        total_kv=record.total_kv,
        br_duration_s=record.br_duration_s,
        br_version=record.br_version,
        finished_at=record.finished_at,
    )
    manifest = build_manifest(done, where)
    uri = write_manifest(where, manifest)
    return catalog.record_manifest(record.id, uri, size_bytes=manifest.size_bytes)


HISTORY = [
    succeeded("dev-full-1"),
    succeeded("dev-incr-2", kind=BackupKind.INCREMENTAL, base="dev-full-1", hours=1),
    succeeded("dev-incr-3", kind=BackupKind.INCREMENTAL, base="dev-incr-2", hours=2),
    succeeded("uat-full-1", cluster="uat", hours=3),
]


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Catalog, LocalStorage]:
    catalog = Catalog.from_url(f"sqlite:///{tmp_path}/first.db")
    catalog.migrate()
    root = LocalStorage(tmp_path / "backups")
    for record in HISTORY:
        record_backup(catalog, root, record)
    root.child("dev/full/dev-full-running").write_bytes("backup.lock", b"")  # no manifest yet
    return catalog, root


def _comparable(r: BackupRecord) -> tuple[object, ...]:
    return tuple(getattr(r, f) for f in (*MANIFEST_ROW_FIELDS, "status", "manifest_uri"))


def test_rebuild_recreates_the_catalog_from_storage(populated: tuple[Catalog, LocalStorage], tmp_path: Path) -> None:
    original, root = populated
    fresh = Catalog.from_url(f"sqlite:///{tmp_path}/rebuilt.db")
    fresh.migrate()
    report = rebuild_catalog(fresh, root)
    assert report.ok, report
    assert report.found == 4
    assert sorted(report.inserted) == sorted(r.id for r in HISTORY)
    assert report.without_manifest == ("dev/full/dev-full-running",)
    assert [_comparable(r) for r in fresh.list_backups()] == [_comparable(r) for r in original.list_backups()]
    assert all(not r.verified for r in fresh.list_backups())  # verification is the catalog's, not storage's
    assert [b.id for b in fresh.chain("dev")] == ["dev-full-1", "dev-incr-2", "dev-incr-3"]

    again = rebuild_catalog(fresh, root)
    assert again.ok and again.inserted == () and again.updated == ()
    assert sorted(again.unchanged) == sorted(r.id for r in HISTORY)
    assert len(fresh.list_backups()) == 4


def test_rebuild_one_cluster_and_verify(populated: tuple[Catalog, LocalStorage], tmp_path: Path) -> None:
    _, root = populated
    root.write_bytes("dev/incr/dev-incr-3/store1/1_2_3_abc_434_write.sst", b"torn", overwrite=True)
    fresh = Catalog.from_url(f"sqlite:///{tmp_path}/rebuilt.db")
    fresh.migrate()
    report = rebuild_catalog(fresh, root, "dev", verify=True)
    assert sorted(report.inserted) == ["dev-full-1", "dev-incr-2", "dev-incr-3"]
    assert sorted(report.verified) == ["dev-full-1", "dev-incr-2"]
    assert report.verify_failed == ("dev-incr-3",) and not report.ok
    bad = fresh.get("dev-incr-3")
    assert bad is not None and bad.verify_failed and "wrong size" in (bad.verify_detail or "")
    assert fresh.get("uat-full-1") is None


def test_rebuild_completes_a_row_the_pipeline_left_running(
    populated: tuple[Catalog, LocalStorage], tmp_path: Path
) -> None:
    catalog, root = populated
    # a task wrote the manifest, then died before finish_backup: the row says running
    record = succeeded("dev-full-9", hours=9)
    where = root.child(backup_path("dev", BackupKind.FULL, record.id))
    catalog.start_backup(
        NewBackup(id=record.id, cluster="dev", kind=BackupKind.FULL, storage_uri=where.uri, started_at=T0)
    )
    write_br_backup(where)
    write_manifest(where, build_manifest(record, where))
    report = rebuild_catalog(catalog, root, "dev")
    assert report.updated == ("dev-full-9",)
    row = catalog.get("dev-full-9")
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.backup_ts == record.backup_ts


def test_rebuild_reports_bad_and_misplaced_manifests(populated: tuple[Catalog, LocalStorage]) -> None:
    catalog, root = populated
    root.write_bytes(f"dev/full/dev-full-broken/{MANIFEST_NAME}", b"{not json")
    moved = read_manifest(root.child("dev/full/dev-full-1"))
    root.write_bytes(f"dev/incr/dev-full-1/{MANIFEST_NAME}", moved.to_json().encode())
    report = rebuild_catalog(catalog, root, "dev")
    assert len(report.errors) == 2 and not report.ok
    assert "not JSON" in report.errors[0]
    assert "describes full backup dev-full-1 of cluster 'dev', but lies in dev/incr/dev-full-1" in report.errors[1]
    assert sorted(report.unchanged) == ["dev-full-1", "dev-incr-2", "dev-incr-3"]


def test_rebuild_does_not_read_the_backups_it_is_told_to_skip(
    populated: tuple[Catalog, LocalStorage], tmp_path: Path
) -> None:
    _, root = populated
    fresh = Catalog.from_url(f"sqlite:///{tmp_path}/rebuilt.db")
    fresh.migrate()
    root.write_bytes("dev/full/dev-full-1/tidbops-manifest.json", b"{not json", overwrite=True)  # unread if skipped
    report = rebuild_catalog(fresh, root, "dev", skip={"dev-full-1"})
    assert report.ok, report
    assert sorted(report.inserted) == ["dev-incr-2", "dev-incr-3"] and fresh.get("dev-full-1") is None
    unskipped = rebuild_catalog(fresh, root, "dev")
    assert not unskipped.ok and any("dev-full-1" in e for e in unskipped.errors)


# ------------------------------------------------------------------------------------ hostile manifests
OUT_OF_RANGE = [
    pytest.param("backup", "backup_ts", 2**64, "backup.backup_ts", id="tso-past-uint64"),
    pytest.param("backup", "backup_ts", -1, "backup.backup_ts", id="negative-tso"),
    pytest.param("backup", "size_bytes", 10**30, "backup.size_bytes", id="size-past-int64"),
    pytest.param("backup", "total_kv", -7, "backup.total_kv", id="negative-count"),
    pytest.param("backup", "try_number", 0, "backup.try_number", id="try-zero"),
    pytest.param("backup", "br_duration_s", float("nan"), "backup.br_duration_s", id="nan-duration"),
    pytest.param("backup", "br_duration_s", float("inf"), "backup.br_duration_s", id="inf-duration"),
    pytest.param("backup", "backup_time", "9999-12-31T23:59:59-01:00", "backup.backup_time", id="year-10000"),
    pytest.param("backup", "started_at", "0001-01-01T00:00:00+01:00", "backup.started_at", id="year-0"),
    pytest.param("backup", "finished_at", "2026-11-22T10:00:00", "backup.finished_at", id="no-zone"),
    pytest.param("backup", "storage_uri", "s3://b/" + "x" * 5000, "backup.storage_uri", id="uri-too-long"),
    pytest.param("backup", "br_version", "v8\x00\x1b[2J", "backup.br_version", id="control-characters"),
    pytest.param("files", 0, {"path": "a.sst", "size": 10**30, "sha256": None}, "files[0]", id="file-size"),
    pytest.param("files", 0, {"path": "../../etc/passwd", "size": 1, "sha256": None}, "files[0]", id="path-escape"),
    pytest.param("", "created_at", "99999-01-01T00:00:00Z", "created_at", id="created-at"),
]


@pytest.mark.parametrize(("section", "key", "value", "named"), OUT_OF_RANGE)
def test_a_bad_manifest_is_reported_by_key_and_the_rest_still_cataloged(
    populated: tuple[Catalog, LocalStorage], tmp_path: Path, section: str, key: str | int, value: object, named: str
) -> None:
    _, root = populated
    doc = read_manifest(root.child("dev/full/dev-full-1")).to_dict()
    doc["backup"]["id"] = "dev-full-0bad"  # sorts before every good backup
    if section == "files":
        doc["files"][int(key)] = value
    elif section:
        doc[section][key] = value
    else:
        doc[str(key)] = value
    root.write_bytes(f"dev/full/dev-full-0bad/{MANIFEST_NAME}", json.dumps(doc).encode())
    fresh = Catalog.from_url(f"sqlite:///{tmp_path}/rebuilt.db")
    fresh.migrate()
    report = rebuild_catalog(fresh, root, "dev")
    assert len(report.errors) == 1 and not report.ok, report
    assert f"dev/full/dev-full-0bad/{MANIFEST_NAME}: {named}" in report.errors[0]
    assert "\x1b" not in report.errors[0] and "\x00" not in report.errors[0]
    assert sorted(report.inserted) == ["dev-full-1", "dev-incr-2", "dev-incr-3"]
    assert fresh.get("dev-full-0bad") is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b'{"format_version": 1e999}', id="huge-float"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b'{"format_version": 1, "backup": {}, "files": []}' + b" " * 10, id="empty-backup"),
        pytest.param(b'{"format_version": 1, "backup": [], "files": {}}', id="wrong-types"),
    ],
)
def test_unreadable_manifest_text_is_one_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError) as info:
        Manifest.from_json(data, source="m.json")
    assert str(info.value).startswith("m.json: ") and "\n" not in str(info.value)
