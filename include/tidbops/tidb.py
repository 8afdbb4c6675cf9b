"""What we read from a TiDB server over SQL: version, GC safepoint, GC life time.

Works on any DB-API connection (pymysql in production). The GC state comes from ``mysql.tidb``, which
TiDB's GC worker maintains (``tikv_gc_safe_point`` in the ``20060102-15:04:05.000 -0700`` format and
``tikv_gc_life_time`` as a Go duration).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tidbops.durations import parse_duration
from tidbops.errors import TiDBOpsError
from tidbops.timefmt import iso_or_none


class TiDBUnreachableError(TiDBOpsError):
    """The cluster's SQL endpoint does not answer, or refuses the login."""


def unreachable_message(conn_id: str, host: str, port: int, code: int | None, text: str) -> str:
    """One line for a failed connection: which connection, where, what the server (or the OS) said."""
    where = f"TiDB of connection {conn_id!r} at {host}:{port}"
    if code == 1045:  # access denied: the connection's login or password is wrong
        return f"{where} refused the login ({text}); check the connection's login and password"
    return f"{where} does not answer ({text}); is the cluster up and the address right?"


class Cursor(Protocol):
    def execute(self, query: str, args: Any = ...) -> Any: ...
    def fetchall(self) -> Any: ...


_VERSION = re.compile(r"TiDB-(v\d+\.\d+\.\d+[\w.-]*)")


def parse_tidb_version(server_version: str) -> str | None:
    """``8.0.11-TiDB-v8.5.1`` → ``v8.5.1``; None when the server is not TiDB."""
    m = _VERSION.search(server_version)
    return m.group(1) if m else None


def version_tuple(version: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a TiDB version: {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_gc_time(text: str) -> datetime:
    """TiDB's ``tikv_gc_safe_point`` / ``tikv_gc_last_run_time`` format: ``20260122-04:00:00.123 +0000``."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f %z", "%Y%m%d-%H:%M:%S %z"):
        try:
            return datetime.strptime(text.strip(), fmt).astimezone(UTC)
        except ValueError:
            continue
    raise ValueError(f"not a TiDB GC time: {text!r} (expected e.g. 20260122-04:00:00.000 +0000)")


@dataclass(frozen=True)
class ClusterFacts:
    server_version: str
    tidb_version: str | None
    gc_safe_point: datetime | None
    gc_life_time_seconds: float | None
    checked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("gc_safe_point", "checked_at"):
            d[key] = iso_or_none(d[key])
        return d


def read_cluster_facts(cursor: Cursor, now: datetime | None = None) -> ClusterFacts:
    cursor.execute("SELECT VERSION()")
    server_version = str(cursor.fetchall()[0][0])
    cursor.execute(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM mysql.tidb "
        "WHERE VARIABLE_NAME IN ('tikv_gc_safe_point', 'tikv_gc_life_time')"
    )
    rows = {str(k): str(v) for k, v in cursor.fetchall()}
    safe_point = parse_gc_time(rows["tikv_gc_safe_point"]) if "tikv_gc_safe_point" in rows else None
    life = parse_duration(rows["tikv_gc_life_time"]) if "tikv_gc_life_time" in rows else None
    return ClusterFacts(
        server_version=server_version,
        tidb_version=parse_tidb_version(server_version),
        gc_safe_point=safe_point,
        gc_life_time_seconds=life,
        checked_at=now or datetime.now(UTC),
    )
