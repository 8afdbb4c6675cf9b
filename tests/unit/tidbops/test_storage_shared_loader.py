"""S3 storages of different boto3 sessions read botocore's data files once (``share_botocore_data``)."""

from __future__ import annotations

import pytest

from tidbops.storage import S3Storage, storage_from_uri

pytestmark = pytest.mark.unit


def test_new_sessions_share_one_data_loader_and_keep_their_own_credentials() -> None:
    import boto3  # type: ignore[import-untyped]

    sessions = [boto3.session.Session(aws_access_key_id=k, aws_secret_access_key=k * 2) for k in ("AKA", "AKB")]
    alone = boto3.session.Session()._session.get_component("data_loader")  # boto3 alone: a loader per session
    assert alone is not sessions[0]._session.get_component("data_loader")
    stores = [storage_from_uri("s3://bucket/x", endpoint="http://127.0.0.1:9", session=s) for s in sessions]
    loaders = {id(s._session.get_component("data_loader")) for s in sessions}
    assert len(loaders) == 1, "the second session reads the first one's model and endpoint rules"
    assert all(isinstance(s, S3Storage) for s in stores)
    keys = [s._client._request_signer._credentials.access_key for s in stores]  # type: ignore[union-attr]
    assert keys == ["AKA", "AKB"]
