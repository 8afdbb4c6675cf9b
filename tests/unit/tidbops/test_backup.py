"""The pure parts of ``tidbops.backup`` (the operators' tests cover the steps end to end)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from tidbops.backup import (
    BackupTarget,
    BackupTargetError,
    CatalogLink,
    decode_end_version_argv,
    read_end_version,
    target_for,
)
from tidbops.br.errors import BRRequestError
from tidbops.catalog.planning import Plan
from tidbops.catalog.records import BackupKind
from tidbops.config import BRConfig, ClusterConfig, EncryptionConfig, StorageConfig

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def cluster(**br: object) -> ClusterConfig:
    return ClusterConfig(
        name="uat",
        env="uat",
        pd=("pd:2379",),
        tidb_conn_id="tidb_uat",
        storage=StorageConfig(uri="s3://backups/tidb", endpoint="http://minio:9000", sse="AES256"),
        br=BRConfig(**br),  # type: ignore[arg-type]
    )


def session(c: ClusterConfig, key_file: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(cluster=c, env={}, key_file=key_file, log_file="/tmp/br.log", secrets=())


def test_target_round_trips_through_json_and_lives_where_the_catalog_looks() -> None:
    from tidbops.backup import RunInfo

    run = RunInfo(dag_id="tidb_backup_full__uat", run_id="scheduled__x", try_number=1, started_at=T0)
    target = target_for(cluster(), Plan("uat", BackupKind.FULL, "why"), run)
    assert target.backup_id.startswith("uat-full-20261122t010000z-")
    assert target.storage_uri == f"s3://backups/tidb/uat/full/{target.backup_id}"
    assert BackupTarget.from_dict(target.to_dict()) == target


def test_target_refuses_an_incremental_without_lastbackupts() -> None:
    with pytest.raises(ValueError, match="an incremental has a last_backup_ts"):
        BackupTarget("uat", BackupKind.INCREMENTAL, "uat-incr-x", "s3://b/uat/incr/uat-incr-x", T0, "r")


def test_decode_argv_reads_the_key_from_a_file_and_keeps_s3_options() -> None:
    enc = cluster(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="k"))
    argv = decode_end_version_argv(session(enc, "/run/k"), "s3://backups/tidb/uat/full/x")
    assert argv == [
        "br", "debug", "decode", "--field=end-version", "--storage", "s3://backups/tidb/uat/full/x",
        "--s3.endpoint", "http://minio:9000", "--s3.sse", "AES256",
        "--crypter.method", "aes256-ctr", "--crypter.key-file", "/run/k", "--log-file", "/tmp/br.log",
    ]  # fmt: skip
    with pytest.raises(BRRequestError, match="pass crypter_key_file"):
        decode_end_version_argv(session(enc), "s3://backups/tidb/uat/full/x")
    with pytest.raises(BRRequestError, match="carries credentials"):
        decode_end_version_argv(session(cluster()), "s3://backups/x?secret-access-key=abc")


FAKE_BR = """#!{python}
import sys
print("[2026/11/22 01:00:00.000 +00:00] [INFO] [decode.go:1] [\\"decoding\\"]")
print({out!r})
sys.exit({rc})
"""


@pytest.mark.parametrize(
    ("out", "rc", "expected"),
    [
        pytest.param("470633534829363681", 0, 470633534829363681, id="prints-the-tso-last"),
        pytest.param("field 'end-version' not found", 0, None, id="field-missing"),
        pytest.param("470633534829363681", 1, None, id="br-failed"),
    ],
)
def test_read_end_version(tmp_path: Path, out: str, rc: int, expected: int | None) -> None:
    br = tmp_path / "br"
    br.write_text(FAKE_BR.format(python=sys.executable, out=out, rc=rc))
    br.chmod(0o755)
    s = session(cluster(path=str(br)))
    if expected is None:
        with pytest.raises(BackupTargetError, match="did not give a BackupTS"):
            read_end_version(s, "s3://backups/tidb/uat/full/x")
    else:
        assert read_end_version(s, "s3://backups/tidb/uat/full/x") == expected


class Flaky:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def get(self, _: str) -> None:
        self.calls += 1
        raise self.exc


def test_catalog_link_goes_on_without_the_catalog_after_an_outage() -> None:
    cat = Flaky(OperationalError("SELECT", {}, ConnectionRefusedError(111, "Connection refused")))
    link = CatalogLink(cat)  # type: ignore[arg-type]
    assert link.call("read", lambda c: c.get("x")) is None
    assert link.call("read again", lambda c: c.get("x")) is None
    assert cat.calls == 1 and not link.available
    assert link.notes == ["catalog unavailable (read): ConnectionRefusedError: [Errno 111] Connection refused; "
                          "continuing without it"]  # fmt: skip


def test_catalog_link_does_not_hide_real_errors() -> None:
    link = CatalogLink(Flaky(IntegrityError("INSERT", {}, ValueError("dup"))))  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        link.call("write", lambda c: c.get("x"))


def test_catalog_link_without_a_catalog_says_so() -> None:
    link = CatalogLink(None)
    assert link.call("read", lambda c: c.get("x")) is None
    assert link.notes == ["catalog unavailable: continuing without it"]


def test_plan_fails_first_when_the_storage_does_not_answer(tmp_path: Path) -> None:
    """No plan, no catalog call, when the storage cannot be listed: the error names the storage."""
    from tidbops.backup import RunInfo, plan_backup
    from tidbops.storage import LocalStorage, StorageError

    class Down(LocalStorage):
        def list_dirs(self, prefix: str = "") -> list[str]:
            raise StorageError(f"cannot list {self.uri}/{prefix}: the S3 endpoint http://minio:9000 does not answer")

    catalog = SimpleNamespace()  # any attribute access would fail the test
    run = RunInfo(dag_id="d", run_id="r", try_number=1, started_at=T0, triggered_by="manual")
    with pytest.raises(StorageError, match="does not answer"):
        plan_backup(cluster(), BackupKind.FULL, run, catalog, Down(tmp_path), T0)  # type: ignore[arg-type]
