"""StorageHook: a cluster's backup storage (``tidbops.storage``), credentials from the amazon provider.

The connection is the one BR uses (``storage.conn_id``, type aws). We read none of its fields: the
provider's ``S3Hook`` resolves it (static keys, ``aws_session_token``, ``role_arn`` assume-role,
``profile_name``, web identity/IRSA, ``config_kwargs``, ``verify``) into a boto3 session, and its
``endpoint_url`` (``service_config.s3.endpoint_url`` first) into the S3 endpoint. The fleet config's
``storage.endpoint``/``storage.region`` win over the connection's. Without ``storage.conn_id`` boto3's
default chain is used (environment, instance role). BR gets the resolved, possibly short-lived,
credentials in its environment (``br_credentials``). Every credential value is registered with the
secret masker; URIs never carry them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from tidbops.br.command import br_env
from tidbops.config import ClusterConfig
from tidbops.storage import Storage, StorageError, storage_from_uri

if TYPE_CHECKING:
    import boto3
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class StorageHook(BaseHook):
    """Backup storage of one cluster.

    :param cluster: the cluster (from the fleet config) whose ``storage`` settings and connection are used.
    """

    conn_name_attr = "aws_conn_id"
    conn_type = "aws"
    hook_name = "tidbops backup storage"

    def __init__(self, *, cluster: ClusterConfig) -> None:
        super().__init__()
        self.cluster = cluster

    @cached_property
    def aws(self) -> S3Hook:
        """The provider's hook for ``storage.conn_id`` (None: boto3's default chain), region from the fleet
        config when it names one."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        storage = self.cluster.storage
        return S3Hook(aws_conn_id=storage.conn_id, region_name=storage.region)

    @cached_property
    def session(self) -> boto3.session.Session:
        """The provider's boto3 session for the connection, made once per hook (with ``role_arn`` that is
        one AssumeRole; its credentials refresh themselves in the client).

        The provider assumes a ``role_arn`` at once, outside any storage call: an STS that does not answer
        or refuses is a ``StorageError`` naming the connection and the STS endpoint, never the keys."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.aws.get_session(region_name=self.region)
        except (BotoCoreError, ClientError) as exc:
            raise self._credentials_error(exc) from None

    def _credentials_error(self, exc: Exception) -> StorageError:
        conn_id = self.cluster.storage.conn_id
        sts = self.aws.conn_config.get_service_endpoint_url("sts") or "(AWS default)"
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code:
            return StorageError(f"connection {conn_id!r}: STS at {sts} refused to give credentials: {code}")
        names = {c.__name__ for c in type(exc).__mro__}
        reason = str(exc).split(":", 1)[0]  # botocore's text names the endpoint URL, never the keys
        if names & {"ConnectionError", "HTTPClientError"}:
            return StorageError(f"connection {conn_id!r}: the STS endpoint {sts} does not answer ({reason})")
        return StorageError(f"connection {conn_id!r}: cannot get credentials ({type(exc).__name__}: {reason})")

    @property
    def endpoint(self) -> str | None:
        """``storage.endpoint``, else the connection's S3 endpoint as the provider resolves it."""
        storage = self.cluster.storage
        if storage.endpoint or not storage.is_s3:
            return storage.endpoint
        return self.aws.conn_config.get_service_endpoint_url("s3")

    @property
    def region(self) -> str | None:
        """``storage.region``, else the connection's ``region_name``."""
        storage = self.cluster.storage
        return storage.region if not storage.is_s3 else self.aws.conn_config.region_name

    def get_storage(self, uri: str | None = None) -> Storage:
        """The storage at ``uri`` (default: the cluster's storage root); ``uri`` must lie below that root.

        For S3 the client comes from the provider's boto3 session (its credential chain); the
        connection's ``config_kwargs`` and ``verify`` apply. Local storage needs no connection.
        """
        target = self._below_root(uri)
        if not self.cluster.storage.is_s3:
            return storage_from_uri(target)
        conn = self.aws.conn_config
        return storage_from_uri(
            target,
            endpoint=self.endpoint,
            region=self.region,
            session=self.session,
            config=conn.botocore_config,
            verify=conn.verify,
        )

    def br_credentials(self) -> tuple[dict[str, str], str | None, list[str]]:
        """(environment for BR, S3 endpoint, secret values to redact).

        The environment holds the credentials the provider resolved, frozen at this moment:
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` when there is one (an
        assumed role's are temporary), and ``AWS_REGION``. Without ``storage.conn_id`` (or for local
        storage) BR is given none and uses its own chain. Every value is masked.
        """
        storage = self.cluster.storage
        if not storage.is_s3 or not storage.conn_id:
            return {}, storage.endpoint, []
        region = self.region
        # what AwsBaseHook.get_credentials does, without its AttributeError when the chain finds nothing
        resolved = self.session.get_credentials()
        creds = resolved.get_frozen_credentials() if resolved is not None else None
        if creds is None or not creds.access_key or not creds.secret_key:
            raise StorageError(
                f"connection {storage.conn_id!r} gives no AWS credentials: set login/password (access key, "
                "secret key), or role_arn, profile_name or web identity in its extra"
            )
        secrets = [s for s in (creds.access_key, creds.secret_key, creds.token) if s]
        for secret in secrets:
            mask_secret(secret)
        env = br_env(creds.access_key, creds.secret_key, creds.token or None)
        if region:
            env["AWS_REGION"] = region
        return env, self.endpoint, secrets

    def _below_root(self, uri: str | None) -> str:
        root = self.cluster.storage.uri
        target = uri or root
        if target != root and not target.startswith(root.rstrip("/") + "/"):
            raise ValueError(f"{target!r} is not below cluster {self.cluster.name!r}'s storage {root!r}")
        return target
