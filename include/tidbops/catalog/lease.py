"""Per-cluster BR leases in the catalog database: one BR job per cluster when BR tasks share a fleet pool (#18).

An Airflow task has one pool. With ``fleet.br_concurrency`` set, every task that runs BR is in the pool
``br_fleet`` (that many slots: the fleet-wide cap), so the per-cluster pools ``br_<cluster>`` (1 slot) that
kept two BR jobs off one cluster are gone. The lease takes their place: before BR runs, the task takes
the cluster's lease (a row keyed by the cluster); another task of the same cluster that finds it taken
does not sit on its fleet slot but is rescheduled (the slot goes to a task of another cluster).

A lease is held by one task (``<dag_id>/<run_id>/<task_id>``), heartbeated while the task runs and
released when it ends. A holder that died without releasing it (a killed worker) stops heartbeating, and
its lease lapses ``stale_after`` after the last heartbeat; the same task (its retry) takes its own lease
back at once.

The table is coordination state, not history: like the migrations' lock row it is created on first use
(``CREATE TABLE IF NOT EXISTS``), outside the versioned schema, and holds one row per cluster at most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable

from tidbops.catalog.records import CLUSTER_MAX, utcnow
from tidbops.catalog.schema import UTCDateTime, write_transaction

HOLDER_MAX = 255
DEFAULT_STALE_AFTER = timedelta(seconds=60)

lease_metadata = MetaData()
br_leases = Table(
    "tidbops_br_leases",
    lease_metadata,
    Column("cluster", String(CLUSTER_MAX), primary_key=True),
    Column("holder", String(HOLDER_MAX), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class Lease:
    cluster: str
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class LeaseResult:
    """``granted``: the caller holds ``lease`` now; else ``lease`` is the live holder's."""

    granted: bool
    lease: Lease
    took_over: str | None = None  # the stale holder whose lease lapsed, if any


def _lease(row: object) -> Lease:
    m = row._mapping  # type: ignore[attr-defined]
    return Lease(m["cluster"], m["holder"], m["acquired_at"], m["heartbeat_at"])


class BRLeases:
    """The catalog's BR leases (``engine``: the catalog database's)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._ready = False

    def _table(self, conn: Connection) -> None:
        if not self._ready:
            conn.execute(CreateTable(br_leases, if_not_exists=True))
            self._ready = True

    def acquire(self, cluster: str, holder: str, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> LeaseResult:
        """Take ``cluster``'s lease for ``holder``: granted when free, already ``holder``'s, or stale."""
        holder = holder[:HOLDER_MAX]
        with self.engine.connect() as boot:  # DDL commits on MySQL: not inside the locking transaction
            self._table(boot)
            boot.commit()
        try:
            with write_transaction(self.engine) as conn:
                now = self._clock()
                row = conn.execute(select(br_leases).where(br_leases.c.cluster == cluster).with_for_update()).first()
                if row is None:
                    conn.execute(
                        insert(br_leases).values(cluster=cluster, holder=holder, acquired_at=now, heartbeat_at=now)
                    )
                    return LeaseResult(True, Lease(cluster, holder, now, now))
                current = _lease(row)
                if current.holder != holder and now - current.heartbeat_at < stale_after:
                    return LeaseResult(False, current)
                took_over = current.holder if current.holder != holder else None
                conn.execute(
                    update(br_leases)
                    .where(br_leases.c.cluster == cluster)
                    .values(holder=holder, acquired_at=now, heartbeat_at=now)
                )
                return LeaseResult(True, Lease(cluster, holder, now, now), took_over)
        except IntegrityError:  # another task inserted the row first: it holds the lease
            with self.engine.connect() as conn:
                row = conn.execute(select(br_leases).where(br_leases.c.cluster == cluster)).first()
            if row is None:
                raise
            return LeaseResult(False, _lease(row))

    def heartbeat(self, cluster: str, holder: str) -> bool:
        """Refresh ``holder``'s lease; False when it no longer holds it (it lapsed and was taken)."""
        with self.engine.begin() as conn:
            self._table(conn)
            done = conn.execute(
                update(br_leases)
                .where(br_leases.c.cluster == cluster, br_leases.c.holder == holder[:HOLDER_MAX])
                .values(heartbeat_at=self._clock())
            )
            return bool(done.rowcount)

    def release(self, cluster: str, holder: str) -> bool:
        """Give the lease back (only ``holder``'s own); False when it did not hold it."""
        with self.engine.begin() as conn:
            self._table(conn)
            done = conn.execute(
                delete(br_leases).where(br_leases.c.cluster == cluster, br_leases.c.holder == holder[:HOLDER_MAX])
            )
            return bool(done.rowcount)

    def current(self, cluster: str) -> Lease | None:
        with self.engine.begin() as conn:
            self._table(conn)
            row = conn.execute(select(br_leases).where(br_leases.c.cluster == cluster)).first()
        return _lease(row) if row is not None else None
