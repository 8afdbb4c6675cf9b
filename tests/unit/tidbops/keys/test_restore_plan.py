"""An on-demand restore's plan of an owner-key source (#17): one key file per backup in the command lines,
and a note naming the key id and the connection the restore task needs; never a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyrage import x25519

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus
from tidbops.config import ClusterConfig
from tidbops.keys import owner
from tidbops.restore import RestoreRequest, check_request, parse_restore_point, plan_restore, render_plan, resolve_point

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def cluster(name: str, **kw: object) -> ClusterConfig:
    base = {"name": name, "env": "dev", "pd": [f"pd-{name}:2379"], "tidb_conn_id": f"tidb_{name}",
            "storage": {"uri": "s3://backups"}}  # fmt: skip
    return ClusterConfig.model_validate({**base, **kw})


def test_the_plan_names_the_key_id_and_connection_and_one_key_file_per_backup() -> None:
    pub = str(x25519.Identity.generate().to_public())
    fleet = {
        "own": cluster(
            "own",
            br={"encryption": {"method": "aes256-ctr", "mode": "owner-key", "owner_public_key": pub}},
            restore={"allowed_targets": ["scratch1"], "owner_key_conn_id": "owner_key_own"},
        ),
        "scratch1": cluster("scratch1", env="scratch", scratch=True),
    }
    rows = []
    for i, (backup_id, kind) in enumerate((("own-full-1", BackupKind.FULL), ("own-incr-1", BackupKind.INCREMENTAL))):
        at = T0 + timedelta(minutes=30 * i)
        rows.append(
            BackupRecord(
                id=backup_id, cluster="own", kind=kind, status=BackupStatus.SUCCEEDED, verified=True,
                verified_at=at, storage_uri=f"s3://backups/own/{backup_id}", started_at=at,
                backup_ts=tso.from_datetime(at), backup_time=at,
                base_backup_id=rows[-1].id if rows else None, last_backup_ts=rows[-1].backup_ts if rows else None,
            )
        )  # fmt: skip
    checked = check_request(RestoreRequest(source="own", target="scratch1", reason="e2e"), fleet)
    resolved = resolve_point(parse_restore_point("latest"), checked.source, rows, None)
    plan = plan_restore(checked, restore_id="r", resolved=resolved, wipe=(), now=T0)
    assert len(plan.commands) == 2
    for command, backup_id in zip(plan.commands, ("own-full-1", "own-incr-1"), strict=True):
        assert f"--crypter.key-file '<data key file of {backup_id}>'" in command
    text = render_plan(plan)
    assert f"owner-held keys (key id {owner.key_id(pub)})" in text and "connection owner_key_own" in text
