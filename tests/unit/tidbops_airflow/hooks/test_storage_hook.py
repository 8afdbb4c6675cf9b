from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from tidbops.config import ClusterConfig, StorageConfig
from tidbops.storage import LocalStorage, S3Storage
from tidbops_airflow.hooks.storage import StorageHook

pytestmark = pytest.mark.operators

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def cluster(uri: str, **storage: str) -> ClusterConfig:
    return ClusterConfig(
        name="prod",
        env="prod",
        pd=("pd:2379",),
        tidb_conn_id="tidb_prod",
        storage=StorageConfig(uri=uri, conn_id="s3_prod", **storage),
    )


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_PROD",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAPROD000000000001",
                "password": SECRET,
                "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
            }
        ),
    )


def test_s3_storage_from_the_aws_connection(conn: None) -> None:
    with mock.patch("tidbops_airflow.hooks.storage.mask_secret") as mask:
        hook = StorageHook(cluster=cluster("s3://backups/tidb"))
        options = hook.storage_options()
        storage = hook.get_storage("s3://backups/tidb/prod/full/x")
    assert options == {
        "endpoint": "http://minio:9000",
        "access_key": "AKIAPROD000000000001",
        "secret_key": SECRET,
        "region": "eu-west-1",
        "session_token": None,
    }
    mask.assert_any_call(SECRET)
    assert isinstance(storage, S3Storage) and storage.uri == "s3://backups/tidb/prod/full/x"
    assert SECRET not in repr(storage)


def test_fleet_config_endpoint_and_region_win(conn: None) -> None:
    hook = StorageHook(cluster=cluster("s3://backups", endpoint="https://s3.internal", region="ap-east-1"))
    options = hook.storage_options()
    assert (options["endpoint"], options["region"]) == ("https://s3.internal", "ap-east-1")


def test_local_storage_needs_no_connection(tmp_path: Path) -> None:
    storage = StorageHook(cluster=cluster(f"local://{tmp_path}")).get_storage()
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path


def test_refuses_a_uri_outside_the_clusters_storage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not below"):
        StorageHook(cluster=cluster(f"local://{tmp_path}/a")).get_storage(f"local://{tmp_path}/ab/x")
