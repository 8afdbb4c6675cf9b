"""What tests of the catalog's readers and writers share: a clock moved by hand, and succeeded backups.

The fixtures built on them (``clock_start``, ``clock``, ``catalog``) are in ``tests/conftest.py``; a test
module that wants its clock to start elsewhere overrides ``clock_start``.
"""

from __future__ import annotations

from datetime import datetime

from tidbops import tso
from tidbops.catalog.records import BackupKind, BackupRecord, NewBackup
from tidbops.catalog.store import Catalog


class Clock:
    """A clock the test sets (``clock.now = …``) and the catalog reads (``Catalog(…, clock=clock)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def add_backup(
    catalog: Catalog,
    backup_id: str,
    at: datetime,
    *,
    cluster: str = "dev",
    base: str | None = None,
    storage_uri: str | None = None,
) -> BackupRecord:
    """A succeeded backup taken at ``at`` (its BackupTS), full, or incremental on ``base``; stored at
    ``storage_uri`` (default ``s3://bucket/<cluster>/<full|incr>/<id>``)."""
    kind = BackupKind.INCREMENTAL if base else BackupKind.FULL
    base_record = catalog.get(base) if base else None
    catalog.start_backup(
        NewBackup(
            id=backup_id,
            cluster=cluster,
            kind=kind,
            storage_uri=storage_uri or f"s3://bucket/{cluster}/{kind.short}/{backup_id}",
            started_at=at,
            base_backup_id=base,
            last_backup_ts=base_record.backup_ts if base_record else None,
        )
    )
    return catalog.finish_backup(backup_id, backup_ts=tso.from_datetime(at), backup_time=at)
