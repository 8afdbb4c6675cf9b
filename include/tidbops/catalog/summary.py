"""The fleet summary: per cluster, the ids of the rows its fleet row shows, kept in the catalog.

The fleet page, ``/metrics`` and ``tidbops info``-like views need, for every cluster, its newest full and
incremental backup, the newest succeeded and newest verified one, its newest log check, last and last
passed drill, last restore from and into it, its stored bytes and validation failures. Found with one
indexed probe each (``SLOTS``), that is a dozen probes per cluster: cheap on SQLite, but on a
MySQL-family server each probe costs tens of microseconds, so 500 clusters took 300–450 ms at a
million rows (``bench/bench_fleetview.py``).

So the answers are kept in ``fleet_summary``, one row per cluster, versioned:

- **Writers** (every ``Catalog`` method that changes a cluster's backups, drills, restores or log
  checks) call ``touch`` in their transaction: the cluster's ``version`` goes up by one.
- **Readers** (``Catalog.fleet_slots``) use a row whose ``computed_version`` equals its ``version``.
  The others (touched since, or never computed: a catalog filled by an older tidbops, bulk loads) are
  computed again with the probes, in one transaction that reads the versions and the rows from one
  snapshot, and stored only if no writer bumped the version meanwhile (``UPDATE … WHERE version = v``
  reads the committed row). A summary is therefore never newer or older than the version it names.
- Nothing here is needed for correctness: a reader that cannot write (a read-only user) still computes
  the stale clusters and just does not keep them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from tidbops.catalog.schema import fleet_summary

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
_FIGURES = ("storage_bytes", "drill_validation_failures", "restore_validation_failures")

Slots = dict[str, Any]


def _cluster_table(dialect: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The clusters as a derived table ``c(cluster)``: a VALUES list on SQLite, a UNION ALL of one-row
    selects on MySQL-family servers (no column names for VALUES there)."""
    params = {f"c{i}": name for i, name in enumerate(names)}
    if dialect == "sqlite":
        rows = ", ".join(f"(:c{i})" for i in range(len(names)))
        return f"(SELECT column1 AS cluster FROM (VALUES {rows}))", params
    arms = " UNION ALL ".join(f"SELECT :c{i} AS cluster" for i in range(len(names)))
    return f"({arms})", params


def compute(conn: Connection, names: Sequence[str], *, chunk: int = 400) -> dict[str, Slots]:
    """Every slot of ``names``, from the tables themselves (one statement per ``chunk`` clusters)."""
    out: dict[str, Slots] = {}
    columns = ", ".join(f"({sql}) AS {slot}" for slot, sql in SLOTS.items())
    for start in range(0, len(names), chunk):
        table, params = _cluster_table(conn.dialect.name, names[start : start + chunk])
        for row in conn.execute(text(f"SELECT c.cluster, {columns} FROM {table} c"), params).mappings():
            slots = {slot: row[slot] for slot in SLOTS}
            for figure in _FIGURES:
                slots[figure] = int(slots[figure] or 0)
            out[row["cluster"]] = slots
    return out


def read(conn: Connection, names: Sequence[str]) -> tuple[dict[str, Slots], dict[str, int | None]]:
    """The kept summaries still current (by cluster), and the version of every cluster that has a row."""
    rows = conn.execute(
        select(
            fleet_summary.c.cluster, fleet_summary.c.version, fleet_summary.c.computed_version, fleet_summary.c.slots
        ).where(fleet_summary.c.cluster.in_(list(names)))
    ).all()
    current = {c: dict(s) for c, v, cv, s in rows if cv is not None and cv == v and isinstance(s, Mapping)}
    return current, {c: int(v) for c, v, _cv, _s in rows}


def store(conn: Connection, computed: Mapping[str, Slots], versions: Mapping[str, int | None]) -> None:
    """Keep what ``compute`` found, as of the versions read in the same snapshot: a row whose version a
    writer bumped meanwhile is left stale (``WHERE version = v`` sees the committed row)."""
    for cluster in sorted(computed):
        version = versions.get(cluster)
        if version is None:  # never touched: a row at version 0 (a racing writer's insert makes this retry)
            conn.execute(
                fleet_summary.insert().values(cluster=cluster, version=0, computed_version=0, slots=computed[cluster])
            )
            continue
        conn.execute(
            update(fleet_summary)
            .where(fleet_summary.c.cluster == cluster, fleet_summary.c.version == version)
            .values(computed_version=version, slots=computed[cluster])
        )


def touch(conn: Connection, clusters: Iterable[str | None]) -> None:
    """A write changed these clusters' rows: their summaries are stale from this transaction's commit on."""
    for cluster in sorted({c for c in clusters if c}):
        result = conn.execute(
            update(fleet_summary).where(fleet_summary.c.cluster == cluster).values(version=fleet_summary.c.version + 1)
        )
        if not result.rowcount:
            conn.execute(fleet_summary.insert().values(cluster=cluster, version=1, computed_version=None, slots=None))
