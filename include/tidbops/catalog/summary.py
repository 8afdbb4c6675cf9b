"""The fleet summary: per cluster, the rows its fleet row shows, kept in the catalog.

The fleet page, ``/metrics`` and ``tidbops info``-like views need, for every cluster, its newest full and
incremental backup, the newest succeeded and newest verified one, its newest log check, last and last
passed drill, last restore from and into it, its stored bytes and validation failures. Found with one
indexed probe each (``SLOTS``), that is a dozen probes per cluster: cheap on SQLite, but on a
MySQL-family server each probe costs tens of microseconds, so 500 clusters took 300–450 ms at a
million rows (``bench/bench_fleetview.py``).

Fetching those rows (3,000 for 500 clusters) costs as much again through a pure-Python driver. So the
rows themselves (the columns a fleet row reads, ``FACT_COLUMNS``) are kept in ``fleet_summary``, one
JSON document per cluster, versioned:

- **Writers** (every ``Catalog`` method that changes a cluster's backups, drills, restores or log
  checks) call ``touch`` in their transaction: the cluster's ``version`` goes up by one.
- **Readers** (``Catalog.fleet_facts``) use a row whose ``computed_version`` equals its ``version``.
  The others (touched since, or never computed: a catalog filled by an older tidbops, bulk loads) are
  computed again with the probes, in one transaction that reads the versions and the rows from one
  snapshot, and stored only if no writer bumped the version meanwhile (``UPDATE … WHERE version = v``
  reads the committed row). A summary is therefore never newer or older than the version it names.
- Nothing here is needed for correctness: a reader that cannot write (a read-only user) still computes
  the stale clusters and just does not keep them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.engine import Connection

from tidbops.catalog.schema import UTCDateTime, backups, drills, fleet_summary, log_backup_checks, restores

#: One correlated subquery per slot; each walks one index for one row and returns its id (or a figure).
SLOTS: dict[str, str] = {
    "last_full": "SELECT b.id FROM backups b WHERE b.cluster = c.cluster AND b.kind = 'full' "
    "ORDER BY b.started_at DESC LIMIT 1",
    "last_incremental": "SELECT b.id FROM backups b WHERE b.cluster = c.cluster AND b.kind = 'incremental' "
    "ORDER BY b.started_at DESC LIMIT 1",
    "ok_full": "SELECT b.id FROM backups b WHERE b.cluster = c.cluster AND b.kind = 'full' "
    "AND b.status = 'succeeded' ORDER BY b.started_at DESC LIMIT 1",
    "ok_incremental": "SELECT b.id FROM backups b WHERE b.cluster = c.cluster AND b.kind = 'incremental' "
    "AND b.status = 'succeeded' ORDER BY b.started_at DESC LIMIT 1",
    "newest_verified": "SELECT b.id FROM backups b WHERE b.cluster = c.cluster AND b.status = 'succeeded' "
    "AND b.verified = 1 ORDER BY b.backup_ts DESC LIMIT 1",
    "log_check": "SELECT k.id FROM log_backup_checks k WHERE k.cluster = c.cluster "
    "ORDER BY k.checked_at DESC, k.id DESC LIMIT 1",
    "last_drill": "SELECT d.id FROM drills d WHERE d.cluster = c.cluster ORDER BY d.started_at DESC LIMIT 1",
    "passed_drill": "SELECT d.id FROM drills d WHERE d.cluster = c.cluster AND d.status = 'passed' "
    "ORDER BY d.started_at DESC LIMIT 1",
    "restore_from": "SELECT r.id FROM restores r WHERE r.source = c.cluster ORDER BY r.requested_at DESC LIMIT 1",
    "restore_into": "SELECT r.id FROM restores r WHERE r.target = c.cluster ORDER BY r.requested_at DESC LIMIT 1",
    "storage_bytes": "SELECT COALESCE(SUM(b.size_bytes), 0) FROM backups b WHERE b.cluster = c.cluster "
    "AND b.status = 'succeeded'",
    "drill_validation_failures": "SELECT COUNT(*) FROM drills d WHERE d.cluster = c.cluster AND d.status = 'failed' "
    "AND (d.mismatches > 0 OR d.gx_success_ratio < 1)",
    "restore_validation_failures": "SELECT COUNT(*) FROM restores r WHERE r.source = c.cluster AND r.validation_ok = 0",
}
Facts = dict[str, Any]
#: the shape of the kept documents: a summary of another shape (another tidbops) is stale, not misread
FORMAT = 1
_FORMAT_KEY = "format"

#: The columns of each table a fleet row reads (large JSON reports and bookkeeping left out).
FACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "backups": (
        "id", "kind", "status", "backup_ts", "backup_time", "started_at", "finished_at", "scheduled_for",
        "size_bytes", "br_duration_s", "verified", "verified_tier", "base_backup_id", "storage_uri",
        "manifest_uri", "triggered_by", "dag_id", "run_id", "error",
    ),
    "drills": (
        "id", "target", "mode", "status", "started_at", "finished_at", "restore_ts", "restore_seconds",
        "validation_seconds", "tables_checked", "rows_checked", "mismatches", "gx_success_ratio", "data_docs_uri",
        "backups_used", "error", "dag_id", "run_id",
    ),
    "log_backup_checks": (
        "id", "checked_at", "status", "healthy", "task_name", "checkpoint_ts", "lag_seconds", "window_start_ts",
        "window_end_ts", "dag_id", "run_id",
    ),
    "restores": (
        "id", "source", "target", "status", "requested_by", "reason", "requested_at", "finished_at",
        "restore_point", "restore_ts", "mode", "dry_run", "tables", "backups_used", "restore_seconds",
        "validation_ok", "error", "dag_id", "run_id",
    ),
}  # fmt: skip
_TABLES = {t.name: t for t in (backups, drills, log_backup_checks, restores)}
#: which slot's row comes from which table
_SLOT_TABLE = {
    "last_full": "backups", "last_incremental": "backups", "ok_full": "backups", "ok_incremental": "backups",
    "newest_verified": "backups", "log_check": "log_backup_checks", "last_drill": "drills",
    "passed_drill": "drills", "restore_from": "restores", "restore_into": "restores",
}  # fmt: skip
_TIMES = {
    name: frozenset(c for c in cols if isinstance(_TABLES[name].c[c].type, UTCDateTime))
    for name, cols in FACT_COLUMNS.items()
}


def fact_columns(table: Table) -> list[Any]:
    """The columns ``FACT_COLUMNS`` names, plus ``verify_checked`` for backups (a verification ran)."""
    columns: list[Any] = [table.c[name] for name in FACT_COLUMNS[table.name]]
    if table is backups:
        columns.append(backups.c.verified_at.is_not(None).label("verify_checked"))
    return columns


def _cluster_table(dialect: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The clusters as a derived table ``c(cluster)``: a VALUES list on SQLite, a UNION ALL of one-row
    selects on MySQL-family servers (no column names for VALUES there)."""
    params = {f"c{i}": name for i, name in enumerate(names)}
    if dialect == "sqlite":
        rows = ", ".join(f"(:c{i})" for i in range(len(names)))
        return f"(SELECT column1 AS cluster FROM (VALUES {rows}))", params
    arms = " UNION ALL ".join(f"SELECT :c{i} AS cluster" for i in range(len(names)))
    return f"({arms})", params


def _slot_ids(conn: Connection, names: Sequence[str], chunk: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    columns = ", ".join(f"({sql}) AS {slot}" for slot, sql in SLOTS.items())
    for start in range(0, len(names), chunk):
        table, params = _cluster_table(conn.dialect.name, names[start : start + chunk])
        for row in conn.execute(text(f"SELECT c.cluster, {columns} FROM {table} c"), params).mappings():
            out[row["cluster"]] = {slot: row[slot] for slot in SLOTS}
    return out


def _rows(conn: Connection, table: Table, ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    wanted = sorted({i for i in ids if i is not None}, key=str)
    if not wanted:
        return {}
    query = select(*fact_columns(table)).where(table.c.id.in_(bindparam("ids", expanding=True)))
    return {r["id"]: dict(r) for r in conn.execute(query, {"ids": wanted}).mappings()}


def compute(conn: Connection, names: Sequence[str], *, chunk: int = 400) -> dict[str, Facts]:
    """Every cluster's facts, from the tables themselves: per slot its row (``FACT_COLUMNS``, or
    ``None``), ``last_restore`` (the newer of the last restore from and into it), ``storage_bytes`` and
    ``validation_failures``."""
    ids = _slot_ids(conn, names, chunk)
    rows = {
        name: _rows(conn, table, (s[slot] for s in ids.values() for slot, t in _SLOT_TABLE.items() if t == name))
        for name, table in _TABLES.items()
    }
    out: dict[str, Facts] = {}
    for cluster, slot_ids in ids.items():
        facts: Facts = {slot: rows[t].get(slot_ids[slot]) for slot, t in _SLOT_TABLE.items()}
        restores_seen = [r for r in (facts.pop("restore_from"), facts.pop("restore_into")) if r is not None]
        facts["last_restore"] = max(restores_seen, key=lambda r: r["requested_at"], default=None)
        facts["storage_bytes"] = int(slot_ids["storage_bytes"] or 0)
        facts["validation_failures"] = int(slot_ids["drill_validation_failures"] or 0) + int(
            slot_ids["restore_validation_failures"] or 0
        )
        out[cluster] = facts
    return out


def _kept(facts: Facts) -> Facts:
    """As stored: times as ISO-8601 text (JSON has no datetime), a row already kept under an earlier
    slot as ``"@<that slot>"`` (the newest full is often the newest succeeded one too), and the format."""
    kept: Facts = {_FORMAT_KEY: FORMAT}
    seen: dict[tuple[str, Any], str] = {}
    for key, row in facts.items():
        if isinstance(row, dict):
            where = (_SLOT_TABLE.get(key, "restores"), row.get("id"))
            if where in seen:
                kept[key] = f"@{seen[where]}"
                continue
            seen[where] = key
            row = {c: v.isoformat() if isinstance(v, datetime) else v for c, v in row.items()}
        kept[key] = row
    return kept


def _loaded(facts: Mapping[str, Any]) -> Facts:
    """As read back: the times as aware datetimes again, references resolved."""
    out: Facts = {}
    for key, row in facts.items():
        if key == _FORMAT_KEY:
            continue
        if isinstance(row, dict):
            row = dict(row)
            for column in _TIMES[_SLOT_TABLE.get(key, "restores")]:
                value = row.get(column)
                if isinstance(value, str):
                    row[column] = datetime.fromisoformat(value)
        out[key] = row
    for key, row in out.items():  # a second pass: JSON keeps the keys sorted, not in slot order
        if isinstance(row, str) and row.startswith("@"):
            out[key] = out.get(row[1:])
    return out


def read(conn: Connection, names: Sequence[str]) -> tuple[dict[str, Facts], dict[str, int | None]]:
    """The kept facts still current (by cluster), and the version of every cluster that has a row."""
    rows = conn.execute(
        select(
            fleet_summary.c.cluster, fleet_summary.c.version, fleet_summary.c.computed_version, fleet_summary.c.slots
        ).where(fleet_summary.c.cluster.in_(list(names)))
    ).all()
    current = {
        c: _loaded(s)
        for c, v, cv, s in rows
        if cv is not None and cv == v and isinstance(s, Mapping) and s.get(_FORMAT_KEY) == FORMAT
    }
    return current, {c: int(v) for c, v, _cv, _s in rows}


def current_versions(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The version of every cluster whose kept facts are current (computed at its version)."""
    query = select(fleet_summary.c.cluster, fleet_summary.c.version).where(
        fleet_summary.c.cluster.in_(list(names)), fleet_summary.c.computed_version == fleet_summary.c.version
    )
    return {c: int(v) for c, v in conn.execute(query)}


def store(conn: Connection, computed: Mapping[str, Facts], versions: Mapping[str, int | None]) -> None:
    """Keep what ``compute`` found, as of the versions read in the same snapshot: a row whose version a
    writer bumped meanwhile is left stale (``WHERE version = v`` sees the committed row)."""
    for cluster in sorted(computed):
        version = versions.get(cluster)
        if version is None:  # never touched: a new row (a racing writer's insert makes this retry)
            start = first_version()
            conn.execute(
                fleet_summary.insert().values(
                    cluster=cluster, version=start, computed_version=start, slots=_kept(computed[cluster])
                )
            )
            continue
        conn.execute(
            update(fleet_summary)
            .where(fleet_summary.c.cluster == cluster, fleet_summary.c.version == version)
            .values(computed_version=version, slots=_kept(computed[cluster]))
        )


def first_version() -> int:
    """A new row's version: random, so that a catalog rebuilt or restored under the same URL never hands a
    long-lived reader (which holds facts by version) a version it already holds for other facts."""
    return secrets.randbits(40)


def touch(conn: Connection, clusters: Iterable[str | None]) -> None:
    """A write changed these clusters' rows: their summaries are stale from this transaction's commit on."""
    for cluster in sorted({c for c in clusters if c}):
        result = conn.execute(
            update(fleet_summary).where(fleet_summary.c.cluster == cluster).values(version=fleet_summary.c.version + 1)
        )
        if not result.rowcount:
            conn.execute(
                fleet_summary.insert().values(
                    cluster=cluster, version=first_version(), computed_version=None, slots=None
                )
            )
