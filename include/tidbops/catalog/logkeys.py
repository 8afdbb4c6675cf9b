"""The catalog's ``log_keys`` rows (#17): each owner-key ``br log start``'s wrapped data key and its segment.

Written before BR starts (``add_log_key``), confirmed with the start TS BR chose once it did
(``confirm_log_key``, which closes the segment before it), rewrapped by ``tidbops keys rewrap``
(``rewrap_log_key``). Every change is an ``events`` row. The clear key is never here: only the wrapped one
(``check_wrapped_key``). See ``tidbops.keys.logkeys``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from tidbops.catalog.errors import CatalogStateError
from tidbops.catalog.records import check_wrapped_key, utc
from tidbops.catalog.schema import log_keys
from tidbops.catalog.store import Catalog
from tidbops.keys.logkeys import LogKey, close_segments, restrict_window
from tidbops.pitr import PitrWindow


def _key(row: RowMapping) -> LogKey:
    return LogKey(
        id=row["id"],
        cluster=row["cluster"],
        task_name=row["task_name"],
        storage_uri=row["storage_uri"],
        method=row["method"],
        key_id=row["key_id"],
        wrapped_key=row["wrapped_key"],
        created_at=utc(row["created_at"], "created_at"),
        start_ts=row["start_ts"],
        end_ts=row["end_ts"],
    )


def _values(key: LogKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "cluster": key.cluster,
        "task_name": key.task_name,
        "storage_uri": key.storage_uri,
        "method": key.method,
        "key_id": key.key_id,
        "wrapped_key": key.wrapped_key,
        "created_at": key.created_at,
        "start_ts": key.start_ts,
        "end_ts": key.end_ts,
    }


def _all(conn: Connection, cluster: str) -> list[LogKey]:
    rows = conn.execute(select(log_keys).where(log_keys.c.cluster == cluster).order_by(log_keys.c.created_at))
    return [_key(r) for r in rows.mappings()]


def add_log_key(catalog: Catalog, key: LogKey) -> None:
    """Record a log key before BR starts with it (the same id again changes nothing)."""
    check_wrapped_key(key.key_id, key.wrapped_key)

    def work(conn: Connection) -> None:
        if conn.execute(select(log_keys.c.id).where(log_keys.c.id == key.id)).first() is not None:
            return
        conn.execute(log_keys.insert().values(**_values(key), updated_at=catalog._clock()))
        catalog._event(
            conn,
            "log_backup.key_created",
            f"log key {key.id} for task {key.task_name}: a fresh data key, wrapped to key id {key.key_id}",
            cluster=key.cluster,
            details={"log_key": key.id, "key_id": key.key_id, "storage_uri": key.storage_uri},
        )

    catalog._write(work)


def confirm_log_key(catalog: Catalog, key_id: str, start_ts: int) -> LogKey:
    """BR started the log task with log key ``key_id`` at ``start_ts``: its segment begins there and the
    segment before it (the previous key still open) ends there."""

    def work(conn: Connection) -> LogKey:
        row = conn.execute(select(log_keys).where(log_keys.c.id == key_id).with_for_update()).mappings().first()
        if row is None:
            raise CatalogStateError(f"log key {key_id} is not in the catalog")
        key = replace(_key(row), start_ts=start_ts)
        now = catalog._clock()
        conn.execute(update(log_keys).where(log_keys.c.id == key_id).values(start_ts=start_ts, updated_at=now))
        closed = close_segments(_all(conn, key.cluster), key)
        for old in closed:
            conn.execute(update(log_keys).where(log_keys.c.id == old.id).values(end_ts=old.end_ts, updated_at=now))
        catalog._event(
            conn,
            "log_backup.key_started",
            f"log task {key.task_name} started with log key {key.id} at TS {start_ts}"
            + (f"; log key(s) {', '.join(k.id for k in closed)} end there" if closed else ""),
            cluster=key.cluster,
            details={"log_key": key.id, "start_ts": start_ts, "closed": [k.id for k in closed]},
        )
        return key

    return catalog._write(work)


def list_log_keys(catalog: Catalog, cluster: str) -> list[LogKey]:
    """Every log key of ``cluster``, oldest first."""
    with catalog._reading() as conn:
        return _all(conn, cluster)


def rewrap_log_key(
    catalog: Catalog, log_key_id: str, *, key_id: str, wrapped_key: str, expect_key_id: str, actor: str | None = None
) -> LogKey:
    """The log key's data key wrapped to another public key (``tidbops keys rewrap``), only while it is still
    wrapped to ``expect_key_id``; audited as ``log_backup.key_rewrapped`` with both key ids."""
    check_wrapped_key(key_id, wrapped_key)

    def work(conn: Connection) -> LogKey:
        row = conn.execute(select(log_keys).where(log_keys.c.id == log_key_id).with_for_update()).mappings().first()
        if row is None:
            raise CatalogStateError(f"log key {log_key_id} is not in the catalog")
        old = _key(row)
        if old.key_id != expect_key_id:
            raise CatalogStateError(
                f"log key {log_key_id} is wrapped for key id {old.key_id}, not {expect_key_id}; not rewrapped"
            )
        conn.execute(
            update(log_keys)
            .where(log_keys.c.id == log_key_id)
            .values(key_id=key_id, wrapped_key=wrapped_key, updated_at=catalog._clock())
        )
        catalog._event(
            conn,
            "log_backup.key_rewrapped",
            f"log key {log_key_id} rewrapped from key id {expect_key_id} to {key_id}",
            cluster=old.cluster,
            details={"log_key": log_key_id, "from_key_id": expect_key_id, "to_key_id": key_id},
            actor=actor,
            status="succeeded",
        )
        return replace(old, key_id=key_id, wrapped_key=wrapped_key)

    return catalog._write(work)


def window_within_log_keys(catalog: Catalog | None, window: PitrWindow) -> PitrWindow:
    """``window`` cut to the current log key segment when the cluster's log is encrypted with owner-key log
    keys (``restrict_window``); as it is otherwise, or without a catalog."""
    if catalog is None or not window.exists:
        return window
    return restrict_window(window, list_log_keys(catalog, window.cluster))
