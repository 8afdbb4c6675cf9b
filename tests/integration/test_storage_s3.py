"""S3Storage against a real S3 endpoint: moto in server mode, path-style, with keys from the environment."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from tests.helpers.servers import free_port
from tidbops import tso
from tidbops.catalog.manifest import backup_path, build_manifest, read_manifest, rebuild_catalog, verify_backup
from tidbops.catalog.manifest import write_manifest as write_manifest_file
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.catalog.store import Catalog
from tidbops.storage import (
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    S3Storage,
    StorageError,
    storage_from_uri,
)
from tidbops_playground.s3server import S3Server

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    """A fresh bucket per test; keys from the environment, as ``tidbops catalog rebuild`` takes them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    name = f"tidbops-{secrets.token_hex(4)}"
    storage = storage_from_uri(f"s3://{name}/backups", endpoint=s3_server.endpoint)
    assert isinstance(storage, S3Storage)
    storage._client.create_bucket(Bucket=name)
    return storage


def test_write_read_exists(bucket: S3Storage) -> None:
    bucket.write_bytes("dev/full/a/backupmeta", b"meta")
    assert bucket.read_bytes("dev/full/a/backupmeta") == b"meta"
    assert bucket.exists("dev/full/a/backupmeta")
    assert not bucket.exists("dev/full/a")
    assert bucket.child("dev/full/a").read_bytes("backupmeta") == b"meta"
    raw = bucket._client.get_object(Bucket=bucket.bucket, Key="backups/dev/full/a/backupmeta")["Body"].read()
    assert raw == b"meta"  # under the prefix, path-style


def test_overwrite_is_refused(bucket: S3Storage) -> None:
    bucket.write_bytes("lock", b"first")
    with pytest.raises(ObjectExistsError, match="refusing to overwrite"):
        bucket.write_bytes("lock", b"second")
    assert bucket.read_bytes("lock") == b"first"
    bucket.write_bytes("lock", b"second", overwrite=True)
    assert bucket.read_bytes("lock") == b"second"


def test_racing_writers_one_wins(bucket: S3Storage) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            bucket.write_bytes("race", str(i).encode())
            outcomes.append("won")
        except ObjectExistsError:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1 and outcomes.count("lost") == 5


def test_listing_paginates_and_deletes_in_batches(bucket: S3Storage) -> None:
    small = S3Storage(bucket.bucket, bucket.prefix, bucket._client, batch_size=25)
    keys = [f"dev/full/a/store1/{i:03d}.sst" for i in range(60)]
    for k in keys:
        bucket._client.put_object(Bucket=bucket.bucket, Key=f"backups/{k}", Body=b"x")
    bucket.write_bytes("dev/full/ab/backupmeta", b"12")
    bucket.write_bytes("dev/incr/b/backupmeta", b"")
    calls: list[str] = []
    for op in ("ListObjectsV2", "DeleteObjects"):
        bucket._client.meta.events.register(f"before-call.s3.{op}", lambda model, **_: calls.append(model.name))
    listed = small.list("dev/full/a/")
    assert [o.path for o in listed] == keys
    assert calls == ["ListObjectsV2"] * 3
    assert small.list("dev/full/ab") == [ObjectInfo("dev/full/ab/backupmeta", 2)]
    assert len(small.list("dev/full/a")) == 61  # a string prefix, as S3 has it
    assert small.list_dirs() == ["dev"]
    assert small.list_dirs("dev") == ["full", "incr"]
    assert small.child("dev").list_dirs("full/") == ["a", "ab"]
    calls.clear()
    assert small.delete([*keys, "dev/full/a/never-there"]) == 61
    assert calls == ["DeleteObjects"] * 3
    assert small.list("dev/full/a/") == []
    assert [o.path for o in bucket.list()] == ["dev/full/ab/backupmeta", "dev/incr/b/backupmeta"]


def test_streaming_read(bucket: S3Storage) -> None:
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    bucket.write_bytes("big.sst", data)
    chunks = []
    with bucket.open_read("big.sst") as fh:
        while chunk := fh.read(256 * 1024):
            chunks.append(chunk)
    assert b"".join(chunks) == data and len(chunks) == 13
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        bucket.open_read("missing")
    with pytest.raises(ObjectNotFoundError):
        bucket.read_bytes("missing")


def test_missing_bucket_is_a_storage_error(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    storage = storage_from_uri("s3://no-such-bucket-here/x", endpoint=s3_server.endpoint)
    with pytest.raises(StorageError, match="NoSuchBucket") as info:
        storage.list()
    assert "testing-secret" not in str(info.value)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.write_bytes("a", b"1")


def test_manifest_verify_and_rebuild_on_s3(bucket: S3Storage, tmp_path: Path) -> None:
    at = datetime(2024, 8, 1, tzinfo=UTC)
    backup_id = "dev-full-20240801t000000z-abcdef01"
    where = bucket.child(backup_path("dev", BackupKind.FULL, backup_id))
    for path, data in {"backupmeta": b"m", "backup.lock": b"", "store1/1_default.sst": b"d" * 5000}.items():
        where.write_bytes(path, data)
    record = BackupRecord(
        id=backup_id,
        cluster="dev",
        kind=BackupKind.FULL,
        status=BackupStatus.SUCCEEDED,
        storage_uri=where.uri,
        started_at=at,
        backup_ts=tso.from_datetime(at),
        backup_time=at,
    )
    manifest = build_manifest(record, where)
    write_manifest_file(where, manifest)
    assert read_manifest(where) == manifest
    assert verify_backup(where, manifest, check_hashes=True).ok
    catalog = Catalog.from_url(f"sqlite:///{tmp_path}/c.db")
    catalog.migrate()
    report = rebuild_catalog(catalog, bucket, verify=True, check_hashes=True)
    assert (report.inserted, report.verified, report.errors) == ((backup_id,), (backup_id,), ())
    row = catalog.get(backup_id)
    assert row is not None and row.storage_uri == f"{bucket.uri}/dev/full/{backup_id}" and row.verified
    where.delete(["store1/1_default.sst"])
    assert verify_backup(where, manifest).missing == ("store1/1_default.sst",)


def test_an_endpoint_that_does_not_answer_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    session = boto3.session.Session(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key=secret)
    storage = storage_from_uri("s3://tidbops-backups/prod", endpoint=endpoint, session=session)
    with pytest.raises(StorageError) as err:
        storage.list("full/")
    message = str(err.value)
    assert message.startswith("cannot list s3://tidbops-backups/prod/full/")
    assert f"the S3 endpoint {endpoint} does not answer (Could not connect to the endpoint URL)" in message
    assert secret not in message
