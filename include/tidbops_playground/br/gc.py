"""The GC worker of an emulated cluster (what TiDB's GC leader does every ``tikv_gc_run_interval``).

``run_gc`` computes ``safepoint = min(now - tikv_gc_life_time, live service safepoints)`` (never moving
backwards, raised by the ``gc_safepoint`` fault), stores it in the PD state, mirrors it into
``mysql.tidb`` in TiDB's format (``tikv_gc_safe_point = 20060102-15:04:05.000 -0700``) and purges the
MariaDB history that no read at or after the safepoint can need (``DELETE HISTORY ... BEFORE SYSTEM_TIME``).
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from . import db as dbm
from . import tso
from .common import GC_ROW_COMMENTS, ensure_mysql_tidb, read_tidb_var
from .pd import cluster_by_name, live_service_safepoints

MIN_LIFE_TIME_S = 600.0  # TiDB enforces tikv_gc_life_time >= 10m
PURGE_EVERY_MS = 60_000


def _min_life_time() -> float:
    env = os.environ.get("TIDBOPS_PLAYGROUND_GC_MIN_LIFETIME")
    if env:
        try:
            return float(tso.parse_go_duration(env)) / 1e9 if not env.replace(".", "").isdigit() else float(env)
        except ValueError:
            return MIN_LIFE_TIME_S
    return MIN_LIFE_TIME_S


def run_gc(home: Path, cluster: str, now_ms: int | None = None, purge_history: bool = True) -> int:
    """One GC round for ``cluster``; returns the GC safepoint TSO."""
    cl = cluster_by_name(Path(home), cluster)
    now = tso.now_ms() if now_ms is None else int(now_ms)
    faults = cl.faults()
    conn = dbm.connect(cl.entry)
    try:
        ensure_mysql_tidb(conn)
        life_text = read_tidb_var(conn, "tikv_gc_life_time", "10m0s")
        try:
            life_s = tso.parse_go_duration(life_text) / 1e9
        except ValueError:
            life_s = MIN_LIFE_TIME_S
        life_s = max(life_s, _min_life_time())
        enabled = read_tidb_var(conn, "tikv_gc_enable", "true").lower() == "true"
        with cl.state() as st:
            old = int(st.get("gc_safe_point", 0))
            candidate = tso.compose(max(now - int(life_s * 1000), 0), 0)
            sps = live_service_safepoints(st, now)
            if sps:
                candidate = min(candidate, min(sps.values()))
            new = max(old, candidate) if enabled else old
            fault = faults.get("gc_safepoint")
            if fault and isinstance(fault.get("ts"), int):
                new = max(new, int(fault["ts"]))
            st["gc_safe_point"] = new
            st["gc_last_run_ms"] = now
            purged_to = int(st.get("gc_purged_to", 0))
            do_purge = (
                purge_history
                and new > purged_to
                and (tso.physical(new) - tso.physical(purged_to) >= PURGE_EVERY_MS or fault is not None)
            )
            if do_purge:
                st["gc_purged_to"] = new
        rows = {
            "tikv_gc_leader_uuid": uuid.uuid5(uuid.NAMESPACE_DNS, cl.name).hex[:16],
            "tikv_gc_leader_desc": (
                f"host:{socket.gethostname()}, pid:{os.getpid()}, start at {tso.tidb_gc_time(tso.compose(now, 0))}"
            ),
            "tikv_gc_leader_lease": tso.tidb_gc_time(tso.compose(now + 120_000, 0)),
            "tikv_gc_last_run_time": tso.tidb_gc_time(tso.compose(now, 0)),
            "tikv_gc_safe_point": tso.tidb_gc_time(new),
        }
        values = ",".join(
            f"({dbm.sql_str(k)}, {dbm.sql_str(v)}, {dbm.sql_str(GC_ROW_COMMENTS.get(k, ''))})" for k, v in rows.items()
        )
        dbm.execute(
            conn,
            "INSERT INTO mysql.tidb (VARIABLE_NAME, VARIABLE_VALUE, COMMENT) VALUES "
            + values
            + " ON DUPLICATE KEY UPDATE VARIABLE_VALUE = VALUES(VARIABLE_VALUE)",
        )
        if do_purge and new > 0:
            before = tso.us_to_sql(tso.ts_to_read_us(new))
            for db in dbm.list_user_databases(conn):
                for name, ttype, _c in dbm.list_tables(conn, db):
                    if ttype == "SYSTEM VERSIONED":
                        dbm.execute(
                            conn, f"DELETE HISTORY FROM {dbm.qt(db, name)} BEFORE SYSTEM_TIME TIMESTAMP '{before}'"
                        )
        return new
    finally:
        conn.close()
