from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tidbops.storage import (
    LocalStorage,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    S3Storage,
    Storage,
    StorageError,
    clean_path,
    storage_from_uri,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    s = LocalStorage(tmp_path / "root")
    for path, data in {
        "dev/full/a/backupmeta": b"meta",
        "dev/full/a/store1/1.sst": b"x" * 10,
        "dev/full/ab/backupmeta": b"m2",
        "dev/incr/b/backupmeta": b"",
        "uat/full/c/backupmeta": b"u",
    }.items():
        s.write_bytes(path, data)
    return s


def test_is_a_storage(store: LocalStorage) -> None:
    assert isinstance(store, Storage)
    assert store.uri == f"local://{store.root}"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        pytest.param(
            "",
            [
                "dev/full/a/backupmeta",
                "dev/full/a/store1/1.sst",
                "dev/full/ab/backupmeta",
                "dev/incr/b/backupmeta",
                "uat/full/c/backupmeta",
            ],
            id="everything",
        ),
        pytest.param("dev/full/a/", ["dev/full/a/backupmeta", "dev/full/a/store1/1.sst"], id="directory"),
        pytest.param(
            "dev/full/a",
            ["dev/full/a/backupmeta", "dev/full/a/store1/1.sst", "dev/full/ab/backupmeta"],
            id="string-prefix-like-s3",
        ),
        pytest.param("dev/full/a/back", ["dev/full/a/backupmeta"], id="partial-name"),
        pytest.param("nope/", [], id="missing"),
    ],
)
def test_list_by_prefix(store: LocalStorage, prefix: str, expected: list[str]) -> None:
    assert [o.path for o in store.list(prefix)] == expected


def test_list_reports_sizes(store: LocalStorage) -> None:
    assert store.list("dev/full/a/store1") == [ObjectInfo("dev/full/a/store1/1.sst", 10)]


def test_list_dirs(store: LocalStorage) -> None:
    assert store.list_dirs("") == ["dev", "uat"]
    assert store.list_dirs("dev/full") == ["a", "ab"]
    assert store.list_dirs("dev/full/") == ["a", "ab"]
    assert store.list_dirs("dev/log") == []


def test_child_is_rooted_below(store: LocalStorage) -> None:
    child = store.child("dev/full/a")
    assert child.uri == f"local://{store.root}/dev/full/a"
    assert [o.path for o in child.list()] == ["backupmeta", "store1/1.sst"]
    assert child.read_bytes("backupmeta") == b"meta"


def test_write_refuses_overwrite_unless_asked(store: LocalStorage) -> None:
    with pytest.raises(ObjectExistsError, match="refusing to overwrite"):
        store.write_bytes("dev/full/a/backupmeta", b"other")
    assert store.read_bytes("dev/full/a/backupmeta") == b"meta"
    store.write_bytes("dev/full/a/backupmeta", b"other", overwrite=True)
    assert store.read_bytes("dev/full/a/backupmeta") == b"other"


def test_write_leaves_no_temporary_files(store: LocalStorage) -> None:
    with pytest.raises(ObjectExistsError):
        store.write_bytes("dev/full/a/backupmeta", b"other")
    store.write_bytes("new/file", b"1")
    names = sorted(p.name for p in store.root.rglob("*") if p.is_file())
    assert not [n for n in names if "tmp" in n]


def test_concurrent_writers_one_wins(store: LocalStorage) -> None:
    results: list[str] = []

    def write(i: int) -> None:
        try:
            store.write_bytes("race/lock", str(i).encode())
            results.append("won")
        except ObjectExistsError:
            results.append("lost")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]
    assert store.read_bytes("race/lock") in {str(i).encode() for i in range(8)}


def test_read_missing(store: LocalStorage) -> None:
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        store.read_bytes("dev/nothing")
    with pytest.raises(ObjectNotFoundError):
        store.open_read("dev/nothing")


def test_open_read_streams(store: LocalStorage) -> None:
    store.write_bytes("big", bytes(range(256)) * 4096)
    with store.open_read("big") as fh:
        first = fh.read(1000)
        rest = fh.read()
    assert first + rest == bytes(range(256)) * 4096 and len(first) == 1000


def test_exists(store: LocalStorage) -> None:
    assert store.exists("dev/full/a/backupmeta")
    assert not store.exists("dev/full/a")  # a directory is not an object
    assert not store.exists("dev/full/zzz")


def test_delete_prunes_empty_directories(store: LocalStorage) -> None:
    assert store.delete(["dev/full/a/backupmeta", "dev/full/a/store1/1.sst", "dev/full/a/never-there"]) == 3
    assert not (store.root / "dev/full/a").exists()
    assert (store.root / "dev/full/ab/backupmeta").exists()
    assert store.root.is_dir()


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs", "a/../b", "a//b", "./a", "a\\b", ""])
def test_unsafe_paths_refused(store: LocalStorage, bad: str) -> None:
    with pytest.raises(StorageError):
        store.read_bytes(bad)
    with pytest.raises(StorageError):
        store.write_bytes(bad, b"x")
    with pytest.raises(StorageError):
        store.delete([bad])


def test_clean_path() -> None:
    assert clean_path("a/b.sst") == "a/b.sst"
    assert clean_path("", allow_empty=True) == ""


def test_relative_root_refused() -> None:
    with pytest.raises(StorageError, match="absolute"):
        LocalStorage(Path("relative"))


def test_storage_from_uri_local(tmp_path: Path) -> None:
    s = storage_from_uri(f"local://{tmp_path}/backups/")
    assert isinstance(s, LocalStorage) and s.root == tmp_path / "backups"


def test_storage_from_uri_s3_builds_path_style_client() -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id="AK", aws_secret_access_key="SK-SECRET")
    s = storage_from_uri("s3://tidbops-backups/prod/x", endpoint="http://127.0.0.1:1", session=session)
    assert isinstance(s, S3Storage)
    assert (s.bucket, s.prefix, s.uri) == ("tidbops-backups", "prod/x", "s3://tidbops-backups/prod/x")
    assert s.child("dev/full").uri == "s3://tidbops-backups/prod/x/dev/full"
    assert s._client.meta.config.s3["addressing_style"] == "path"
    assert s._client.meta.region_name == "us-east-1"
    assert s._client._request_signer._credentials.secret_key == "SK-SECRET"  # the session's credentials
    assert "SK-SECRET" not in repr(s)


def test_storage_from_uri_a_given_botocore_config_wins_over_the_defaults() -> None:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="AK", aws_secret_access_key="SK", region_name="eu-west-1")
    s = storage_from_uri(
        "s3://tidbops-backups", session=session, config=Config(s3={"addressing_style": "virtual"}, read_timeout=7)
    )
    assert isinstance(s, S3Storage)
    config = s._client.meta.config
    assert (config.s3["addressing_style"], config.read_timeout, config.retries["total_max_attempts"]) == ("virtual", 7, 6)
    assert s._client.meta.region_name == "eu-west-1"  # the session's region when none is given


def test_storage_from_uri_without_a_session_uses_the_standard_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's way: boto3's environment chain, session token included."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SKENV")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "TOKENENV")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-east-1")
    s = storage_from_uri("s3://tidbops-backups/prod", endpoint="http://127.0.0.1:1")
    assert isinstance(s, S3Storage)
    creds = s._client._request_signer._credentials.get_frozen_credentials()
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKENV", "SKENV", "TOKENENV")
    assert s._client.meta.region_name == "ap-east-1"


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("s3://bucket/p?access-key=AK&secret-access-key=SECRET", "no query parameters"),
        ("s3://AK:SECRET@bucket/p", "no user or password"),
        ("local://relative/path", "local:///absolute"),
        ("gcs://bucket/x", "not a storage URI"),
        ("s3://B/x", "not a storage URI"),
    ],
)
def test_storage_from_uri_refuses(uri: str, match: str) -> None:
    with pytest.raises(StorageError, match=match) as info:
        storage_from_uri(uri)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://ak:s3cr3t-Zq9x@minio:9000", "carries a user or password"),
        ("http://[::1", "is not a URL"),
        ("minio:9000", "is not an endpoint URL"),
        ("http://minio:9000\n", "control character"),
        ("http://minio:0", "port 0"),
    ],
)
def test_an_s3_endpoint_is_checked_before_boto3_sees_it(endpoint: str, why: str) -> None:
    from tidbops.storage import StorageError, check_endpoint, storage_from_uri

    for call in (lambda: check_endpoint(endpoint), lambda: storage_from_uri("s3://bkt/x", endpoint=endpoint)):
        with pytest.raises(StorageError, match=why) as info:
            call()
        assert "s3cr3t-Zq9x" not in str(info.value)
    assert check_endpoint("https://s3.us-east-1.amazonaws.com") == "https://s3.us-east-1.amazonaws.com"
    assert check_endpoint("http://[::1]:9000/minio") == "http://[::1]:9000/minio"
