"""StorageHook: the storage connection resolved by the amazon provider (no field read by hand), for the
storage client and for BR's environment; the fleet config's endpoint and region win."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tidbops.config import ClusterConfig, StorageConfig
from tidbops.storage import LocalStorage, S3Storage, StorageError
from tidbops_airflow.hooks.storage import StorageHook

pytestmark = pytest.mark.operators

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token-0123456789"


def cluster(uri: str, conn_id: str | None = "s3_prod", **storage: str) -> ClusterConfig:
    return ClusterConfig(
        name="prod",
        env="prod",
        pd=("pd:2379",),
        tidb_conn_id="tidb_prod",
        storage=StorageConfig(uri=uri, conn_id=conn_id, **storage),
    )


def set_conn(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_S3_PROD", json.dumps({"conn_type": "aws", **conn}))


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from this machine's AWS setup leaks in: empty config files, no keys, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def client_credentials(storage: object) -> tuple[str, str, str | None]:
    assert isinstance(storage, S3Storage)
    creds = storage._client._request_signer._credentials.get_frozen_credentials()
    return creds.access_key, creds.secret_key, creds.token


def test_static_keys_reach_the_client_and_br(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        login="AKIAPROD000000000001",
        password=SECRET,
        extra={"endpoint_url": "http://minio:9000", "region_name": "eu-west-1", "aws_session_token": TOKEN},
    )
    hook = StorageHook(cluster=cluster("s3://backups/tidb"))
    storage = hook.get_storage("s3://backups/tidb/prod/full/x")
    assert isinstance(storage, S3Storage) and storage.uri == "s3://backups/tidb/prod/full/x"
    assert client_credentials(storage) == ("AKIAPROD000000000001", SECRET, TOKEN)
    assert (storage._client.meta.endpoint_url, storage._client.meta.region_name) == ("http://minio:9000", "eu-west-1")
    assert SECRET not in repr(storage)
    with mock.patch("tidbops_airflow.hooks.storage.mask_secret") as mask:
        env, endpoint, secrets = StorageHook(cluster=cluster("s3://backups/tidb")).br_credentials()
    assert env == {
        "AWS_ACCESS_KEY_ID": "AKIAPROD000000000001",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_REGION": "eu-west-1",
    }
    assert endpoint == "http://minio:9000"
    assert sorted(secrets) == sorted(["AKIAPROD000000000001", SECRET, TOKEN])
    assert sorted(c.args[0] for c in mask.call_args_list) == sorted(secrets), "every value is masked"


def test_a_profile_from_the_aws_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile tidbops-backup]\n"
        "aws_access_key_id = AKIAPROFILE000000001\n"
        f"aws_secret_access_key = {SECRET}\n"
        "region = ap-southeast-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    set_conn(monkeypatch, extra={"profile_name": "tidbops-backup", "endpoint_url": "http://minio:9000"})
    hook = StorageHook(cluster=cluster("s3://backups"))
    storage = hook.get_storage()
    assert client_credentials(storage) == ("AKIAPROFILE000000001", SECRET, None)
    assert storage._client.meta.region_name == "ap-southeast-1"  # type: ignore[attr-defined]  # the profile's
    env, _, _ = hook.br_credentials()
    assert env == {"AWS_ACCESS_KEY_ID": "AKIAPROFILE000000001", "AWS_SECRET_ACCESS_KEY": SECRET}


@pytest.mark.parametrize(
    ("fleet", "extra", "expected"),
    [
        pytest.param({}, {"endpoint_url": "http://conn:9000"}, "http://conn:9000", id="connection-endpoint_url"),
        pytest.param(
            {},
            {"endpoint_url": "http://conn:9000", "service_config": {"s3": {"endpoint_url": "http://s3-only:9000"}}},
            "http://s3-only:9000",
            id="service_config-s3-over-endpoint_url",
        ),
        pytest.param(
            {"endpoint": "https://s3.internal"},
            {"endpoint_url": "http://conn:9000", "service_config": {"s3": {"endpoint_url": "http://s3-only:9000"}}},
            "https://s3.internal",
            id="fleet-config-wins",
        ),
        pytest.param({}, {}, None, id="none-aws-default"),
    ],
)
def test_endpoint_precedence(
    monkeypatch: pytest.MonkeyPatch, fleet: dict[str, str], extra: dict[str, Any], expected: str | None
) -> None:
    set_conn(monkeypatch, login="AKIAPROD000000000001", password=SECRET, extra=extra)
    hook = StorageHook(cluster=cluster("s3://backups", **fleet))
    storage = hook.get_storage()
    assert hook.br_credentials()[1] == expected
    default = "https://s3.amazonaws.com"
    assert storage._client.meta.endpoint_url == (expected or default)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [pytest.param({}, "eu-west-1", id="connection"), pytest.param({"region": "ap-east-1"}, "ap-east-1", id="fleet")],
)
def test_region_precedence(monkeypatch: pytest.MonkeyPatch, fleet: dict[str, str], expected: str) -> None:
    set_conn(monkeypatch, login="AKIAPROD000000000001", password=SECRET, extra={"region_name": "eu-west-1"})
    hook = StorageHook(cluster=cluster("s3://backups", **fleet))
    assert hook.get_storage()._client.meta.region_name == expected  # type: ignore[attr-defined]
    assert hook.br_credentials()[0]["AWS_REGION"] == expected


def test_the_connections_botocore_config_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        login="AKIAPROD000000000001",
        password=SECRET,
        extra={"config_kwargs": {"connect_timeout": 3, "s3": {"addressing_style": "virtual"}}, "verify": False},
    )
    storage = StorageHook(cluster=cluster("s3://backups")).get_storage()
    config = storage._client.meta.config  # type: ignore[attr-defined]
    assert (config.connect_timeout, config.s3["addressing_style"]) == (3, "virtual")  # the connection's
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}  # ours, the connection names none
    assert storage._client._endpoint.http_session._verify is False  # type: ignore[attr-defined]


def test_a_connection_that_yields_no_credentials_is_refused_before_br(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, extra={"endpoint_url": "http://minio:9000"})
    with pytest.raises(StorageError, match="connection 's3_prod' gives no AWS credentials"):
        StorageHook(cluster=cluster("s3://backups")).br_credentials()


def test_without_a_connection_br_uses_its_own_chain_and_the_client_boto3s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    hook = StorageHook(cluster=cluster("s3://backups", conn_id=None, endpoint="http://minio:9000"))
    assert hook.br_credentials() == ({}, "http://minio:9000", [])
    assert client_credentials(hook.get_storage()) == ("AKIAENV0000000000001", SECRET, None)


def test_local_storage_needs_no_connection(tmp_path: Path) -> None:
    storage = StorageHook(cluster=cluster(f"local://{tmp_path}")).get_storage()
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path


def test_refuses_a_uri_outside_the_clusters_storage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not below"):
        StorageHook(cluster=cluster(f"local://{tmp_path}/a")).get_storage(f"local://{tmp_path}/ab/x")


def test_an_sts_that_does_not_answer_is_a_storage_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.servers import free_port

    sts = f"http://127.0.0.1:{free_port()}"  # nobody listens: the AssumeRole is refused
    set_conn(
        monkeypatch,
        login="AKIAPROD000000000001",
        password=SECRET,
        extra={
            "role_arn": "arn:aws:iam::123456789012:role/backup",
            "region_name": "us-east-1",
            "service_config": {"sts": {"endpoint_url": sts}, "s3": {"endpoint_url": "http://minio:9000"}},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
        },
    )
    hook = StorageHook(cluster=cluster("s3://backups/prod"))
    with pytest.raises(StorageError) as err:
        hook.get_storage()
    assert str(err.value) == (
        f"connection 's3_prod': the STS endpoint {sts} does not answer (Could not connect to the endpoint URL)"
    )
    assert SECRET not in str(err.value)
