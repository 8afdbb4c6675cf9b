"""Where a task that runs BR gets its turn: its cluster's pool, or the fleet's pool plus its cluster's lease (#18).

* ``fleet.br_concurrency`` unset (the default): the task runs in ``br_<cluster>`` (1 slot), so one BR job
  at a time per cluster, and BR jobs fleet-wide are bounded only by the executor's parallelism.
* ``fleet.br_concurrency: N``: the task runs in ``br_fleet`` (N slots: at most N BR jobs fleet-wide) and,
  before ``execute``, takes its cluster's lease in the catalog (``tidbops.catalog.lease``). A task whose
  cluster's lease another task holds is rescheduled (``up_for_reschedule``, asked again in
  ``RECHECK_S``): it gives its fleet slot back instead of sitting on it. The lease is heartbeated while
  the task runs and released when ``execute`` returns; a task that fails or dies stops heartbeating and
  its lease lapses after ``STALE_AFTER`` (its own retry takes it back at once). No catalog, no lease: the
  task is rescheduled too (never two BR jobs on one cluster is the rule that holds).

An Airflow task has exactly one pool, hence the lease: the pool caps the fleet, the lease the cluster.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tidbops.config import Fleet

if TYPE_CHECKING:
    from tidbops.catalog.lease import BRLeases
    from tidbops.catalog.store import Catalog

FLEET_POOL = "br_fleet"
RECHECK_S = 10
HEARTBEAT_S = 10.0
STALE_AFTER = timedelta(seconds=45)

log = logging.getLogger(__name__)


def cluster_pool(cluster: str) -> str:
    """The Airflow pool (1 slot) of the tasks that run BR against ``cluster`` (no fleet cap)."""
    return f"br_{cluster}"


def br_slot(fleet: Fleet, cluster: str) -> dict[str, Any]:
    """The operator arguments of a task that runs BR against ``cluster``: its pool, and the lease hooks."""
    if fleet.settings.br_concurrency is None:
        return {"pool": cluster_pool(cluster)}
    lease = ClusterLease(cluster, fleet.catalog.conn_id, fleet.catalog.sqlite_path)
    return {"pool": FLEET_POOL, "pre_execute": lease.take, "post_execute": lease.give_back}


class ClusterLease:
    """The cluster's BR lease for one task: taken before ``execute``, heartbeated, given back after it."""

    def __init__(self, cluster: str, catalog_conn_id: str | None, catalog_sqlite_path: str | None) -> None:
        self.cluster = cluster
        self.catalog_conn_id = catalog_conn_id
        self.catalog_sqlite_path = catalog_sqlite_path
        self._held: tuple[Catalog, BRLeases, str, threading.Event] | None = None

    def take(self, context: Any) -> None:
        from airflow.exceptions import AirflowRescheduleException

        from tidbops.catalog.lease import BRLeases
        from tidbops_airflow.hooks.catalog import CatalogHook

        ti = context["ti"]
        holder = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        again = datetime.now(UTC) + timedelta(seconds=RECHECK_S)
        catalog = CatalogHook(
            catalog_conn_id=self.catalog_conn_id, sqlite_path=self.catalog_sqlite_path
        ).get_catalog_or_none()
        if catalog is None:
            log.warning("BR lease of %s: the catalog does not answer; rescheduled in %ss", self.cluster, RECHECK_S)
            raise AirflowRescheduleException(again)
        leases = BRLeases(catalog.engine)
        try:
            got = leases.acquire(self.cluster, holder, stale_after=STALE_AFTER)
        except Exception:
            catalog.close()
            raise
        if not got.granted:
            catalog.close()
            log.info(
                "cluster %s is busy: %s holds its BR lease (heartbeat %s); this task gives its %s slot back and "
                "is rescheduled in %ss",
                self.cluster,
                got.lease.holder,
                got.lease.heartbeat_at.isoformat(),
                FLEET_POOL,
                RECHECK_S,
            )
            raise AirflowRescheduleException(again)
        if got.took_over:
            log.warning("BR lease of %s: %s stopped heartbeating; its lease lapsed", self.cluster, got.took_over)
        log.info("BR lease of %s taken by %s", self.cluster, holder)
        stop = threading.Event()
        self._held = (catalog, leases, holder, stop)
        threading.Thread(target=self._beat, args=(leases, holder, stop), daemon=True).start()

    def _beat(self, leases: BRLeases, holder: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                if not leases.heartbeat(self.cluster, holder):
                    log.error("BR lease of %s: %s no longer holds it", self.cluster, holder)
                    return
            except Exception as exc:  # a catalog blip: the next beat tries again (the lease lapses only later)
                log.warning("BR lease of %s: heartbeat failed: %s", self.cluster, exc)

    def give_back(self, context: Any, result: Any = None) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        catalog, leases, holder, stop = held
        stop.set()
        try:
            leases.release(self.cluster, holder)
            log.info("BR lease of %s released by %s", self.cluster, holder)
        finally:
            catalog.close()
