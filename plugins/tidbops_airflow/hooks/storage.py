"""StorageHook: a cluster's backup storage (``tidbops.storage``) with the keys of its aws connection.

The connection is the one BR uses (``storage.conn_id``, type aws): login = access key, password = secret
key, extra ``endpoint_url`` (or ``service_config.s3.endpoint_url``), ``region_name`` and
``aws_session_token``. The fleet config's ``storage.endpoint``/``storage.region`` win over the
connection's. Every credential is registered with the secret masker; URIs never carry them.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from tidbops.config import ClusterConfig
from tidbops.storage import Storage, storage_from_uri


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

    def storage_options(self) -> dict[str, Any]:
        """``storage_from_uri`` keyword arguments: endpoint, keys, region (secrets masked)."""
        storage = self.cluster.storage
        if not storage.is_s3 or not storage.conn_id:
            return {"endpoint": storage.endpoint, "region": storage.region}
        conn = self.get_connection(storage.conn_id)
        extra = conn.extra_dejson
        s3_config = (extra.get("service_config") or {}).get("s3") or {}
        session_token = extra.get("aws_session_token") or None
        for secret in (conn.login, conn.password, session_token):
            if secret:
                mask_secret(secret)
        return {
            "endpoint": storage.endpoint or extra.get("endpoint_url") or s3_config.get("endpoint_url"),
            "access_key": conn.login or None,
            "secret_key": conn.password or None,
            "region": storage.region or extra.get("region_name"),
            "session_token": session_token,
        }

    def get_provider_storage(self, uri: str | None = None) -> Storage:
        """``get_storage``, with the S3 client made by the amazon provider's ``S3Hook`` from the same
        connection (its credential chain: static keys, role_arn, profile, web identity); the fleet
        config's ``storage.endpoint`` still wins. Local storage is returned as ``get_storage`` does.
        Retention deletes through this client (batch ``DeleteObjects``, at most 1000 keys a request).
        """
        storage = self.cluster.storage
        if not storage.is_s3 or not storage.conn_id:
            return self.get_storage(uri)
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from tidbops.storage import S3Storage

        target = self._below_root(uri)
        hook = S3Hook(aws_conn_id=storage.conn_id, region_name=storage.region)
        if storage.endpoint:
            hook.conn_config.endpoint_url = storage.endpoint
        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        return S3Storage(bucket, prefix, hook.get_conn())

    def _below_root(self, uri: str | None) -> str:
        root = self.cluster.storage.uri
        target = uri or root
        if target != root and not target.startswith(root.rstrip("/") + "/"):
            raise ValueError(f"{target!r} is not below cluster {self.cluster.name!r}'s storage {root!r}")
        return target

    def get_storage(self, uri: str | None = None) -> Storage:
        """The storage at ``uri`` (default: the cluster's storage root); ``uri`` must lie below that root."""
        return storage_from_uri(self._below_root(uri), **self.storage_options())
