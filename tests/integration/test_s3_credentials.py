"""Storage credentials resolved by the amazon provider, against a moto server that enforces IAM.

The server's IAM holds one user whose keys may only call ``sts:AssumeRole`` and one role that may use
S3. After the setup moto checks every request's signature and policy (``/moto-api/reset-auth``), so an
object written with the connection's credentials proves that the role was really assumed through STS,
and that what BR is handed (``br_credentials``) are the role's temporary credentials, not the user's.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tidbops.config import ClusterConfig, StorageConfig
from tidbops_airflow.hooks.storage import StorageHook
from tidbops_playground.s3server import S3Server

pytestmark = pytest.mark.integration

BUCKET = "tidbops-backups"
ROLE = "tidbops-backup"
REGION = "eu-west-1"


@dataclass(frozen=True)
class IAM:
    endpoint: str
    user_key: str
    user_secret: str
    role_arn: str

    def client(self, service: str, **creds: str | None) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **creds)

    def assumed_roles(self) -> list[dict[str, Any]]:
        """What moto's STS handed out: role ARN, session name and the temporary credentials."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as answer:
            return list(json.loads(answer.read())["sts"]["AssumedRole"])


def _policy(action: str, principal: bool = False) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action}
    statement.update({"Principal": {"AWS": "*"}} if principal else {"Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def iam(s3_server: S3Server) -> Iterator[IAM]:
    boot = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
    setup = IAM(s3_server.endpoint, "", "", "")
    client = setup.client("iam", **boot)
    client.create_user(UserName="airflow")
    key = client.create_access_key(UserName="airflow")["AccessKey"]
    client.put_user_policy(UserName="airflow", PolicyName="assume", PolicyDocument=_policy("sts:AssumeRole*"))
    role = client.create_role(RoleName=ROLE, AssumeRolePolicyDocument=_policy("sts:AssumeRole*", principal=True))
    client.put_role_policy(RoleName=ROLE, PolicyName="s3", PolicyDocument=_policy("s3:*"))
    setup.client("s3", **boot).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    enforce_auth(s3_server.endpoint, True)  # from now on every request is authenticated and authorised
    yield IAM(s3_server.endpoint, key["AccessKeyId"], key["SecretAccessKey"], role["Role"]["Arn"])


def enforce_auth(endpoint: str, on: bool) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0" if on else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def unsigned_sts(iam: IAM) -> Iterator[None]:
    """moto answers an (unsigned, as it should be) AssumeRoleWithWebIdentity with a 500 while it enforces auth
    (KeyError 'HTTP_AUTHORIZATION' in moto 5.2.5): for web identity the proof is which keys STS issued."""
    enforce_auth(iam.endpoint, False)
    try:
        yield
    finally:
        enforce_auth(iam.endpoint, True)


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def cluster(conn_id: str | None, **storage: str) -> ClusterConfig:
    return ClusterConfig(
        name="prod",
        env="prod",
        pd=("pd:2379",),
        tidb_conn_id="tidb_prod",
        storage=StorageConfig(uri=f"s3://{BUCKET}", conn_id=conn_id, **storage),
    )


def test_the_users_own_keys_cannot_touch_s3(iam: IAM) -> None:
    """The premise of the tests below: moto enforces IAM, and the user is only allowed to assume the role."""
    s3 = iam.client("s3", aws_access_key_id=iam.user_key, aws_secret_access_key=iam.user_secret)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket=BUCKET, Key="probe", Body=b"x")


def test_role_arn_is_assumed_through_sts_for_the_storage_and_for_br(
    iam: IAM, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_ROLE",
        json.dumps(
            {
                "conn_type": "aws",
                "login": iam.user_key,
                "password": iam.user_secret,
                "extra": {
                    "role_arn": iam.role_arn,
                    "region_name": REGION,
                    "endpoint_url": iam.endpoint,
                    # the provider never sends AssumeRole to endpoint_url: STS needs its own entry
                    "service_config": {"sts": {"endpoint_url": iam.endpoint}},
                },
            }
        ),
    )
    before = len(iam.assumed_roles())
    hook = StorageHook(cluster=cluster("s3_role"))
    storage = hook.get_storage(f"s3://{BUCKET}/prod/full/role-test")
    storage.write_bytes("probe.txt", b"written with the assumed role", overwrite=True)
    assert storage.read_bytes("probe.txt") == b"written with the assumed role"

    env, endpoint, secrets = hook.br_credentials()
    hook.get_storage(f"s3://{BUCKET}/prod/full/role-test").exists("probe.txt")
    assumed = iam.assumed_roles()[before:]
    assert [(a["role_arn"], a["session_name"].lower()) for a in assumed] == [(iam.role_arn, "airflow_s3_role")], (
        "one AssumeRole per hook, for its storage clients and BR"
    )
    issued = {a["access_key_id"]: a for a in assumed}
    assert env["AWS_ACCESS_KEY_ID"] in issued, "BR gets credentials STS issued, not the user's keys"
    role = issued[env["AWS_ACCESS_KEY_ID"]]
    assert (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == (
        role["secret_access_key"],
        role["session_token"],
    )
    assert env["AWS_REGION"] == REGION and endpoint == iam.endpoint
    assert env["AWS_ACCESS_KEY_ID"] != iam.user_key and env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert set(secrets) == {env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]}

    # what BR does with that environment: boto3's environment chain, against the same endpoint
    as_br = iam.client(
        "s3",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    body = as_br.get_object(Bucket=BUCKET, Key="prod/full/role-test/probe.txt")["Body"].read()
    assert body == b"written with the assumed role"
    as_br.put_object(Bucket=BUCKET, Key="prod/full/role-test/by-br.txt", Body=b"x")

    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    for value in (iam.user_secret, env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]):
        assert value not in logged


def test_web_identity_from_the_connection(
    iam: IAM, unsigned_sts: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``assume_role_with_web_identity`` (IRSA's way, with the token file named in the connection): no keys at all."""
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWlyZmxvdyJ9.c2lnbmF0dXJl")
    monkeypatch.setenv(
        "AIRFLOW_CONN_S3_IRSA",
        json.dumps(
            {
                "conn_type": "aws",
                "extra": {
                    "role_arn": iam.role_arn,
                    "assume_role_method": "assume_role_with_web_identity",
                    "assume_role_with_web_identity_federation": "file",
                    "assume_role_with_web_identity_token_file": str(token),
                    "region_name": REGION,
                    "endpoint_url": iam.endpoint,
                    "service_config": {"sts": {"endpoint_url": iam.endpoint}},
                },
            }
        ),
    )
    before = len(iam.assumed_roles())
    hook = StorageHook(cluster=cluster("s3_irsa"))
    storage = hook.get_storage(f"s3://{BUCKET}/prod/full/irsa-test")
    storage.write_bytes("probe.txt", b"irsa", overwrite=True)
    env, _, _ = hook.br_credentials()
    assumed = iam.assumed_roles()[before:]
    issued = {a["access_key_id"] for a in assumed}
    assert {a["role_arn"] for a in assumed} == {iam.role_arn}
    assert env["AWS_ACCESS_KEY_ID"] in issued and "AWS_SESSION_TOKEN" in env
    assert signing_key(storage) in issued


def test_without_a_connection_boto3s_chain_does_irsa_from_the_environment(
    iam: IAM, unsigned_sts: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """EKS with IRSA and no ``storage.conn_id``: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, as the pod gets them;
    the storage works, and BR is handed nothing (it runs the same chain itself)."""
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QifQ.c2ln")
    monkeypatch.setenv("AWS_ROLE_ARN", iam.role_arn)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", iam.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    before = len(iam.assumed_roles())
    hook = StorageHook(cluster=cluster(None, endpoint=iam.endpoint))
    storage = hook.get_storage(f"s3://{BUCKET}/prod/full/env-irsa")
    storage.write_bytes("probe.txt", b"pod", overwrite=True)
    assert signing_key(storage) in {a["access_key_id"] for a in iam.assumed_roles()[before:]}
    assert hook.br_credentials() == ({}, iam.endpoint, [])


def signing_key(storage: object) -> str:
    """The access key the storage's S3 client signs with."""
    return str(storage._client._request_signer._credentials.get_frozen_credentials().access_key)  # type: ignore[attr-defined]
