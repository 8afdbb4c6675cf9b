"""``--log.crypter.method`` + ``--log.crypter.key-file`` (BR v8.4+) on ``br log start`` and ``br restore
point`` for owner-key clusters (#17): a key file, never a key in argv; refused where BR takes none."""

from __future__ import annotations

import pytest

from tests.helpers.owner_keys import key_pair, owner_key_cluster
from tidbops.br.command import log_argv, restore_point_argv
from tidbops.br.errors import BRRequestError
from tidbops.config import ClusterConfig

pytestmark = pytest.mark.unit


def test_log_start_and_restore_point_take_the_log_key_file() -> None:
    c = cluster(True)
    start = log_argv(c, "start", log_crypter_key_file="/run/k/log.key")
    i = start.index("--log.crypter.method")
    assert start[i : i + 4] == ["--log.crypter.method", "aes128-ctr", "--log.crypter.key-file", "/run/k/log.key"]
    point = restore_point_argv(
        c, log_storage_uri="s3://bucket/tidb/own/log", full_backup_storage_uri="s3://bucket/tidb/own/full/f1",
        crypter_key_file="/run/k/data.key", log_crypter_key_file="/run/k/log.key",
    )  # fmt: skip
    assert point[point.index("--crypter.key-file") + 1] == "/run/k/data.key"
    assert point[point.index("--log.crypter.key-file") + 1] == "/run/k/log.key"
    assert "--log.crypter.method" not in log_argv(c, "start")  # a log started without a key (before #17)


def test_a_log_key_file_is_refused_where_br_takes_none() -> None:
    with pytest.raises(BRRequestError, match="only applies to 'log start'"):
        log_argv(cluster(True), "status", log_crypter_key_file="/run/k/log.key")
    with pytest.raises(BRRequestError, match="does not encrypt its log backup with owner-held keys"):
        log_argv(cluster(False), "start", log_crypter_key_file="/run/k/log.key")


def cluster(owner_key: bool) -> ClusterConfig:
    return owner_key_cluster(key_pair()[0] if owner_key else None, method="aes128-ctr", conn=None)
